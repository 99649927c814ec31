#!/usr/bin/env python3
# /// script
# requires-python = ">=3.11"
# dependencies = [
#     "pandas>=1.5",
#     "numpy>=1.24",
#     "matplotlib>=3.6",
# ]
# ///
"""Turn ivshmem-bench results into statistics, plots and a readable report.

The benchmark (host_writer with guest_reader in a QEMU guest) leaves CSV files
in a results directory, one per workload it ran: latency_results.csv with one
row per measured round trip, bandwidth_results.csv with one row per frame
transfer, stream_results.csv with one row per stream point (direction and
message size), size_latency_results.csv with one row per message size,
rate_results.csv with one row per offered rate and interference set (latency
under load, open loop) beside rate_histograms.csv with each such point's
latency histogram; and run.json describing the run (mode, accel, guest,
versions, pinning, its status and the rows it wrote). This script reads them
and writes, into the output directory:

    performance_report.txt   everything below as text (also printed)
    summary.json             the same figures, machine-readable (times in ns)
    latency_histogram.png    latency distribution, linear and log scales
    latency_over_time.png    latency of each round trip in measurement order
    latency_percentiles.png  percentile curve with p50/p90/p99/p99.9 marked
    bandwidth_analysis.png   distribution, scaling, duration, success rate
    stream_throughput.png    msgs/s and GB/s against message size, log-log,
                             one curve per direction
    size_latency.png         round-trip p50/p99/p99.9 against message size
    rate_latency_vs_load.png p50/p99/p99.9 against offered rate (the hockey
                             stick), a panel per interference set, knees marked
    rate_percentile_spectrum.png
                             each rate point's percentiles from p0 to the max
                             on a "nines" axis (1 / (1 - p), log), quiet and
                             interference side by side per rate

Any combination of the files works: only the parts with data are produced
(the rate histograms go with the rate rows). A stream point, message size or
rate point whose messages failed their check (errors > 0) is flagged at the
top of the report and on its row, and the exit status is then 1, after
everything is written. The rate histograms must agree with their rows (the
same number of latencies, the min and max in the end buckets, percentiles
within the histogram's 1/256), and run.json's knees with the rows'.

Partial results are refused unless --allow-partial is given: a run.json whose
status is not "complete" (the run died, is still going, or ended in error), a
CSV that run.json's "files" does not list (another run wrote it; it is left
out), a CSV with fewer rows than listed (truncated or replaced) or with more
than listed once the run ended, and a last row cut short by a killed writer
(never read as data). With --allow-partial, what there is gets analysed and
every output says PARTIAL and why.

With --compare DIR1 DIR2 ... (or simply several directories) the runs are put
side by side instead: comparison.txt, comparison.json and comparison.png,
with every figure also given as a ratio against the first directory; runs
with stream or size-latency results get comparison_stream.png and
comparison_size_latency.png, their curves overlaid (e.g. host-only and VM);
runs with rate results get comparison_rate.png, their latency-vs-load curves
overlaid, and the table compares each rate point and each set's knee.

Percentiles use linear interpolation between order statistics (numpy's
default method, Hyndman & Fan type 7) over every row, the same definition as
the C harness, so p50/p99 here agree with what host_writer prints. Plots of
long runs draw a reduced picture (bins, histograms); the figures are always
computed from all rows.

Run it with any of:

    uv run analyze_results.py                # dependencies from the header
    /usr/bin/python3 analyze_results.py      # Debian: python3-pandas python3-matplotlib
    make analyze

Every value is checked against what host_writer can write (see Column and
SCHEMAS): nothing negative, integers (counts, sizes, rates) at most 2^53 - 1
so that they stay exact as doubles and never wrap as int64 (tighter where an
option sets the limit: a message at most 64 MiB, a rate at most 100M/s),
everything finite; and each row's figures must agree with one another as
host_writer computes them (stream: bytes = messages x message_bytes,
msgs_per_s = messages / seconds, gbps = bytes / seconds; frames and rate
points likewise), or the row is refused, never plotted. Any numpy
floating-point error or RuntimeWarning behind these checks stops the
analysis with one line (exit 1) instead of passing silently.

Exit status: 0 success, 1 bad or unusable data (one line on stderr naming
the file and the problem, for a bad value also its line, column and the
range accepted; also, after the outputs are written, a run whose every
frame transfer failed or whose messages failed their check), 2 bad
command-line usage, 3 partial or mixed results refused (see --allow-partial).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import math
import os
import re
import stat
import sys
import textwrap
import warnings
from array import array
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

PROG = "analyze_results.py"

EXIT_OK = 0
EXIT_BAD_DATA = 1
EXIT_USAGE = 2  # argparse's own status for usage errors
EXIT_PARTIAL = 3

try:
    import numpy as np
    import pandas as pd

    # matplotlib is imported by the first plot (it costs a tenth of a second
    # that --no-plots and bad input need not pay); here only looked for.
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(name="matplotlib")
except ImportError as _missing:  # pragma: no cover - depends on the interpreter
    sys.stderr.write(
        f"{PROG}: {_missing.name or _missing} is not installed for {sys.executable}; "
        "install python3-pandas python3-matplotlib (Debian) and run "
        "/usr/bin/python3 analyze_results.py, or use: uv run analyze_results.py\n"
    )
    sys.exit(EXIT_BAD_DATA)

RUN_JSON = "run.json"

PERCENTILE_NOTE = (
    "Percentiles: linear interpolation between order statistics (numpy's\n"
    "default 'linear' method, Hyndman & Fan type 7), the same definition the\n"
    "C harness uses. Std dev is the sample standard deviation (n-1)."
)

# Limits on what a results file can hold. They turn absurd input into one
# clear error instead of a traceback, an infinite mean or an exhausted memory.
MAX_LINE = 64 * 1024          # bytes in one CSV line; a real row is under 300
MAX_VALUE = 2.0 ** 64         # a 64-bit nanosecond counter (584 years), bytes
# Every integer column is read as a double (numpy, pandas) and then used as
# one or as an int64. Below 2^53 every integer is exact as a double; at 2^53
# and above, the text "9007199254740993" already reads as ...992, and from
# 2^63 an int64 wraps (2^63 messages became -9,223,372,036,854,775,808). So
# no integer column accepts more than 2^53 - 1: 9e15 messages, 104 days in
# ns. No run counts that far (a stream point lasts at most 10 minutes; at a
# billion messages a second that is 6e11), so a larger count is a corrupt or
# forged figure (a peer's ring index wrapped round), never a measurement.
MAX_COUNT = 2 ** 53 - 1
MAX_ITERATION = MAX_COUNT     # iterations: the same
# What the C side can write, from its option limits (see each column).
MAX_MESSAGE = 64 << 20        # workloads/sizes.h IVB_MAX_MESSAGE: a message's bytes
MAX_SLOTS = 1 << 20           # --slots, --batch, --rate-slots: at most 2^20
MAX_RATE = 100_000_000        # workloads/rate.c RATE_MAX: offered messages/s
RATE_MIN_SIZE, RATE_MAX_SIZE = 16, 1 << 20   # --rate-size: 16 B .. 1 MiB
MAX_FRAME_SIDE = 65536        # --frames WxH: 1..65536 each, 3 bytes a pixel
MAX_ERROR_CODE = 2 ** 32 - 1  # error_code: a uint32_t (enum ivb_error)
# A rate computed from other figures of its row (msgs_per_s, gbps, achieved)
# must agree with them within the rounding of what host_writer prints, and
# a part in 10^4 more: room for a writer that rounds otherwise, far too
# little for a forged or wrapped count, which is off by orders of magnitude.
AGREE = 1e-4
MAX_RUN_JSON = 1 << 20        # host_writer's run.json is a few KiB
MAX_JSON_DEPTH = 32           # run.json nests two levels
SCAN_CHUNK = 1 << 24          # bytes per step of the line scan (bounded memory)

KEY_PERCENTILES = (50, 90, 99, 99.9)
DPI = 110


class DataError(Exception):
    """Unusable input: reported as one line on stderr, exit status 1."""


class PartialError(Exception):
    """Partial or mixed results without --allow-partial: one line, exit 3."""


class UsageError(Exception):
    """Bad command line: reported with the usage, exit status 2."""


# --------------------------------------------------------------------------
# Reading files: bytes first, checked before anything parses them
# --------------------------------------------------------------------------


def present(path: Path) -> bool:
    """True when something is at path, even a dangling or looping symlink
    (Path.exists() says False for those; reading then names the problem)."""
    return path.is_symlink() or path.exists()


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The whole file, or DataError saying why not. Only regular files are
    opened: a FIFO would block, a device could be endless."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise DataError(f"{path}: dangling symbolic link") from None
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path}: is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a FIFO, socket or device)")
    if limit is not None and st.st_size > limit:
        raise DataError(f"{path}: {st.st_size:,} bytes, more than the {limit:,} "
                        "such a file can have")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None


def line_at(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def check_text(path: Path, data: bytes) -> None:
    """Reject NUL bytes (pandas would silently split a number there) and
    bytes that are not UTF-8, naming the line."""
    nul = data.find(b"\0")
    if nul >= 0:
        raise DataError(f"{path}: line {line_at(data, nul)}: NUL byte: not a text file "
                        "(binary data or a disk fault)")
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: line {line_at(data, e.start)}: byte "
                            f"0x{data[e.start]:02x} is not UTF-8 text") from None


def shown(text: str, width: int = 40) -> str:
    """repr() of a value for an error message, shortened: a bad field can be
    megabytes long."""
    return repr(text) if len(text) <= width else repr(text[:width]) + "..."


def fmt_number(value: float) -> str:
    """A parsed number as its reader would have written it: 5, -3, 0.5, 1e+308."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(float(value))


# --------------------------------------------------------------------------
# CSV tables: a fast path for what host_writer writes, a careful path for the rest
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """What one CSV column may hold. Every number host_writer writes is
    unsigned (%llu, %u) or a non-negative double, so the smallest value
    allowed is 0 unless said otherwise; the largest is MAX_COUNT for an
    integer column and MAX_VALUE for the others unless said otherwise."""

    numeric: bool = True            # parsed as a float; else text, stripped
    required: bool = False          # the header must have it
    allow_empty: bool = False       # an empty cell is allowed (NaN / "")
    integer: bool = False           # whole numbers only
    minimum: float = 0              # smallest value allowed
    maximum: float | None = None    # largest value allowed (None: by the kind)
    why: str = ""                   # where the range comes from, for the message

    @property
    def top(self) -> float:
        """The largest value allowed."""
        if self.maximum is not None:
            return self.maximum
        return MAX_COUNT if self.integer else MAX_VALUE

    @property
    def accepted(self) -> str:
        """The accepted range as an error message gives it: '0..2^53-1 (an
        integer exact as a double)', '0..2^64'."""
        why = self.why or ("an integer exact as a double" if self.integer else "")
        span = f"{limit_text(self.minimum)}..{limit_text(self.top)}"
        return f"{span} ({why})" if why else span


NON_NEGATIVE = Column()                                  # a time, rate or share
OPTIONAL = Column(allow_empty=True)                      # the same, may be left empty
COUNT = Column(integer=True)                             # doorbells, sleeps, messages
TEXT = Column(numeric=False)
MESSAGE_BYTES = Column(required=True, integer=True, minimum=1, maximum=MAX_MESSAGE,
                       why="IVB_MAX_MESSAGE, 64 MiB")
OFFERED = Column(required=True, integer=True, minimum=1, maximum=MAX_RATE,
                 why="host_writer --rate: at most RATE_MAX, 100M/s")


@dataclass(frozen=True)
class Schema:
    """One workload's results file as host_writer writes it. The column lists
    are spelled here once, in the writer's order, and tests compare them
    with `host_writer --schema`, so the two cannot drift apart."""

    workload: str                 # host_writer's name for it (--test NAME)
    file: str                     # the file in the results directory
    columns: dict[str, Column]    # every column the writer writes, in order


LATENCY = Schema("latency", "latency_results.csv", dict(
    iteration=Column(required=True, integer=True, maximum=MAX_ITERATION),
    latency_ns=Column(required=True),
    latency_us=NON_NEGATIVE,
    received_ns=OPTIONAL,
    received_us=OPTIONAL,
))

BANDWIDTH_INT_COLUMNS = ("width", "height", "iteration", "error_code")
BANDWIDTH_TIME_COLUMNS = (
    "copy_ns", "handoff_ns", "verify_ns", "guest_read_ns", "guest_hash_ns",
)
BANDWIDTH_RATE_COLUMNS = ("transfer_gbps", "bandwidth_gbps")
BANDWIDTH = Schema("frames", "bandwidth_results.csv", dict(
    frame=Column(numeric=False, required=True),
    width=Column(allow_empty=True, integer=True, minimum=1, maximum=MAX_FRAME_SIDE,
                 why="--frames WxH"),
    height=Column(allow_empty=True, integer=True, minimum=1, maximum=MAX_FRAME_SIDE,
                  why="--frames WxH"),
    bytes=Column(required=True, integer=True, minimum=1, maximum=3 * MAX_FRAME_SIDE ** 2,
                 why="--frames WxH: 3 bytes a pixel"),
    iteration=Column(allow_empty=True, integer=True, maximum=MAX_ITERATION),
    success=Column(numeric=False, required=True),
    error_code=Column(allow_empty=True, integer=True, maximum=MAX_ERROR_CODE,
                      why="a uint32_t enum ivb_error"),
    error_name=Column(numeric=False, allow_empty=True),
    copy_ns=OPTIONAL,
    handoff_ns=OPTIONAL,
    verify_ns=OPTIONAL,
    total_ns=Column(required=True, allow_empty=True),
    guest_read_ns=OPTIONAL,
    guest_hash_ns=OPTIONAL,
    transfer_gbps=OPTIONAL,
    bandwidth_gbps=OPTIONAL,
))

# Stream: one row per point (direction and message size). The columns the
# report's table carries are required; the rest may be left out.
STREAM_DIRECTIONS = ("h2g", "g2h", "bidir")
STREAM = Schema("stream", "stream_results.csv", dict(
    direction=Column(numeric=False, required=True),
    message_bytes=MESSAGE_BYTES,
    slots=Column(integer=True, minimum=1, maximum=MAX_SLOTS, why="--slots, a power of two"),
    batch=Column(integer=True, minimum=1, maximum=MAX_SLOTS, why="--batch"),
    verify=TEXT,
    wait=TEXT,
    messages=Column(required=True, integer=True),
    bytes=COUNT,
    seconds=Column(required=True),
    msgs_per_s=Column(required=True),
    gbps=Column(required=True),
    errors=Column(required=True, integer=True),
    host_cpu_us_per_msg=Column(required=True),
    guest_cpu_us_per_msg=Column(required=True),
    vcpu_cpu_us_per_msg=OPTIONAL,  # only with --watch-thread
    host_cpu_percent=NON_NEGATIVE,
    guest_cpu_percent=NON_NEGATIVE,
    doorbells_per_msg=Column(required=True),
    host_doorbells=COUNT,
    guest_doorbells=COUNT,
    host_sleeps=COUNT,
    guest_sleeps=COUNT,
))

# Size latency: one row per message size, percentiles computed by
# host_writer over every round trip (the same definition as here).
SIZELAT_TIMES = ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns")
SIZELAT = Schema("sizelat", "size_latency_results.csv", dict(
    message_bytes=MESSAGE_BYTES,
    verify=TEXT,
    wait=TEXT,
    count=Column(required=True, integer=True, minimum=1),
    **{name: Column(required=True) for name in SIZELAT_TIMES},
    errors=Column(required=True, integer=True),
))

# Rate (latency under load): one row per offered rate and interference set
# ("none" is the quiet run), figures computed by host_writer over every
# measured message (or, past its sample limit, from the histogram).
RATE_TIMES = ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns",
              "max_ns")
RATE_ARRIVALS = ("constant", "poisson", "closed")
RATE_PERCENTILES = ("exact", "histogram")
CORUNNERS = ("cpu", "membw", "cache")   # host_writer --interference, in its order
QUIET = "none"                          # the interference set of the quiet run
RATE = Schema("rate", "rate_results.csv", dict(
    interference=Column(numeric=False, required=True),
    arrivals=TEXT,
    offered_per_s=OFFERED,
    achieved_per_s=Column(required=True),
    message_bytes=Column(integer=True, minimum=RATE_MIN_SIZE, maximum=RATE_MAX_SIZE,
                         why="--rate-size"),
    verify=TEXT,
    wait=TEXT,
    duration_s=NON_NEGATIVE,
    messages=Column(required=True, integer=True),
    sent=Column(required=True, integer=True),
    received=Column(required=True, integer=True),
    unsent=Column(required=True, integer=True),
    late=Column(required=True, integer=True),
    sender_lag_p99_ns=NON_NEGATIVE,
    sender_lag_max_ns=NON_NEGATIVE,
    percentiles=Column(numeric=False, required=True),
    **{name: Column(required=True) for name in RATE_TIMES},
    errors=Column(required=True, integer=True),
    p99_bound_ns=COUNT,
    sustained=Column(required=True, integer=True, maximum=1, why="a yes or no"),
    p50_ratio=NON_NEGATIVE,
    p99_ratio=NON_NEGATIVE,
    p999_ratio=NON_NEGATIVE,
))

# Each rate point's latency histogram (common/hist.h): one row per non-empty
# bucket, in bucket order, keyed by the point's interference and rate.
HIST_SUB_BITS = 7                        # 2^7 linear buckets per octave
HIST_MAX_NS = (1 << 37) - 1              # the largest value binned exactly
HIST_REL_ERROR = 1 / 256                 # a percentile's stated error bound
RATE_HIST = Schema("rate", "rate_histograms.csv", dict(
    interference=Column(numeric=False, required=True),
    offered_per_s=OFFERED,
    bucket_low_ns=Column(required=True, integer=True, maximum=HIST_MAX_NS,
                         why="hist.h IVB_HIST_MAX_NS"),
    bucket_high_ns=Column(required=True, integer=True, maximum=HIST_MAX_NS,
                          why="hist.h IVB_HIST_MAX_NS"),
    count=Column(required=True, integer=True, minimum=1),
    cumulative_count=Column(required=True, integer=True, minimum=1),
    percentile=Column(required=True, maximum=100, why="a percentile"),
))

SCHEMAS = (LATENCY, BANDWIDTH, STREAM, SIZELAT, RATE, RATE_HIST)
LATENCY_CSV, BANDWIDTH_CSV = LATENCY.file, BANDWIDTH.file
STREAM_CSV, SIZELAT_CSV = STREAM.file, SIZELAT.file
RATE_CSV, RATE_HIST_CSV = RATE.file, RATE_HIST.file
RESULT_FILES = tuple(s.file for s in SCHEMAS)

# A number as host_writer or a spreadsheet writes it; Python's float() also
# takes "1_000", "nan" and non-ASCII digits, which are no results.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                    r"|[+-]?inf(?:inity)?", re.IGNORECASE)


@dataclass
class Table:
    """A CSV file read and checked: one array per known column, plus where
    each row came from."""

    path: Path
    header: list[str]
    columns: dict[str, np.ndarray]  # float arrays (NaN = empty) or object arrays
    rows: int                       # complete data rows
    lines: np.ndarray | None        # line of each row; None: row i is on line i + 2
    cut: str | None = None          # the unfinished last line, described, left out

    def line(self, i: int) -> int:
        return int(self.lines[i]) if self.lines is not None else i + 2


def read_table(path: Path, spec: dict[str, Column]) -> Table:
    """Read a results CSV into checked columns, or raise DataError naming the
    first problem (line, column, value).

    A last line without an end of line is what a killed writer leaves: it is
    not data; Table.cut describes it. A cut line longer or wider than a row
    can be is an error instead.
    """
    data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte-order mark from an editor
    if not data or data.isspace():
        raise DataError(f"{path}: file is empty")
    check_text(path, data)
    end = data.rfind(b"\n") + 1  # bytes of the complete lines
    if end == 0:
        raise DataError(f"{path}: no complete line (no end of line in "
                        f"{len(data):,} bytes)")
    first = data.find(b"\n")
    if first > MAX_LINE:
        raise DataError(f"{path}: line 1: {first:,} bytes long, not a CSV header")
    header_fields = next(csv.reader([data[:first].decode("utf-8").rstrip("\r")]), [""])
    header = [f.strip() for f in header_fields]
    check_header(path, header, spec)
    cut = describe_cut(path, data, end, len(header))
    quoted = b'"' in data
    count, bad = scan_lines(data, end, None if quoted else len(header))
    table = None
    if bad is not None:
        number, fields, length = bad
        if length > MAX_LINE:
            raise DataError(f"{path}: line {number}: {length:,} bytes long, longer than "
                            f"any results row can be ({MAX_LINE:,})")
        if not blank_line(data, number):
            raise DataError(f"{path}: line {number}: {fields} fields, the header has "
                            f"{len(header)}")
    elif not quoted:
        table = fast_table(path, data, header, count - 1, spec)
    if table is None:
        table = careful_table(path, data, end, spec)
    table.cut = cut
    validate(table, spec, data)
    return table


def check_header(path: Path, header: list[str], spec: dict[str, Column]) -> None:
    """Reject a first line that is not this file's header: empty or repeated
    names, a data row, or required columns missing."""
    text = ",".join(header)
    text = text if len(text) <= 80 else text[:77] + "..."
    missing = [c for c, col in spec.items() if col.required and c not in header]
    if missing and all(NUMBER.fullmatch(name) for name in header):
        raise DataError(f"{path}: line 1 is data, not a header (expected columns "
                        f"{', '.join(missing)}; got: {text})")
    seen: set[str] = set()
    for name in header:
        if not name:
            raise DataError(f"{path}: header has an empty column name")
        if name in seen:
            raise DataError(f"{path}: column {shown(name)} appears twice in the header")
        seen.add(name)
    if not missing:
        return
    plural = "s" if len(missing) > 1 else ""
    raise DataError(f"{path}: missing column{plural} {', '.join(missing)} "
                    f"(header is: {text})")


def describe_cut(path: Path, data: bytes, end: int, fields: int) -> str | None:
    """The unfinished last line, described for the report; None if the file
    ends with an end of line. A 'cut' line that no writer could have left
    half-way (too long, too many fields) is an error."""
    if end == len(data):
        return None
    tail = data[end:]
    number = line_at(data, end)
    if len(tail) > MAX_LINE:
        raise DataError(f"{path}: line {number}: {len(tail):,} bytes without an end of "
                        "line: not a results row")
    if tail.isspace():
        return None
    text = tail.decode("utf-8")
    found = len(next(csv.reader([text]), []))
    if found > fields:
        raise DataError(f"{path}: line {number}: {found} fields, the header has {fields}")
    return (f"line {number} is cut short (no end of line: {found} of {fields} fields, "
            f"{shown(text.strip(), 30)}): a row the writer did not finish, left out")


def scan_lines(data: bytes, end: int, fields: int | None) -> tuple[int, tuple | None]:
    """Count the complete lines and find the first that is too long or (when
    fields is given) has another number of fields than the header.

    Works through numpy in fixed chunks, so a 10-million-line file costs a
    second and a few tens of MB. Returns (lines, None) or (lines, (line
    number, fields, length)) for the first bad line.
    """
    raw = np.frombuffer(data, dtype=np.uint8, count=end)
    lines = 0       # complete lines before the current chunk
    carry = 0       # commas of the line running into the current chunk
    start = 0       # offset where that line starts
    for base in range(0, end, SCAN_CHUNK):
        chunk = raw[base:base + SCAN_CHUNK]
        newlines = np.flatnonzero(chunk == 0x0A)
        commas = np.flatnonzero(chunk == 0x2C) if fields is not None else newlines[:0]
        if newlines.size == 0:
            carry += commas.size
            continue  # a line longer than MAX_LINE is found where it ends
        before = np.searchsorted(commas, newlines)
        per_line = np.diff(before, prepend=0)
        per_line[0] += carry
        starts = np.concatenate(([start], base + newlines[:-1] + 1))
        lengths = base + newlines - starts
        bad = lengths > MAX_LINE
        if fields is not None:
            bad |= per_line != fields - 1
        if bad.any():
            k = int(np.argmax(bad))
            return lines + newlines.size, (lines + k + 1, int(per_line[k]) + 1,
                                           int(lengths[k]))
        lines += newlines.size
        carry = commas.size - int(before[-1])
        start = base + int(newlines[-1]) + 1
    return lines, None


def blank_line(data: bytes, number: int) -> bool:
    """True when line number (1-based) holds only white space."""
    offset = 0
    for _ in range(number - 1):
        offset = data.index(b"\n", offset) + 1
    return data[offset:data.find(b"\n", offset)].isspace() or data[offset:offset + 1] == b"\n"


def fast_table(path: Path, data: bytes, header: list[str], rows: int,
               spec: dict[str, Column]) -> Table | None:
    """pandas' C parser, numeric columns straight to float64: what host_writer
    writes (no quotes, no blank lines, every line as wide as the header; the
    line scan has made sure). None when a value does not parse: the careful
    reader then finds and names it."""
    wanted = [i for i, name in enumerate(header) if name in spec]
    dtypes = {i: (np.float64 if spec[header[i]].numeric else object) for i in wanted}
    try:
        frame = pd.read_csv(io.BytesIO(data), header=None, skiprows=1, nrows=rows,
                            usecols=wanted, dtype=dtypes, keep_default_na=False,
                            na_values={i: [""] for i in wanted if spec[header[i]].numeric},
                            index_col=False, engine="c", encoding="utf-8")
    except (ValueError, OverflowError, pd.errors.ParserError):
        return None
    if len(frame) != rows:
        return None
    columns = {}
    for i in wanted:
        values = frame[i].to_numpy()
        if not spec[header[i]].numeric:
            values = np.array([str(v).strip() for v in values], dtype=object)
        columns[header[i]] = values
    return Table(path, header, columns, rows, None)


def careful_table(path: Path, data: bytes, end: int, spec: dict[str, Column]) -> Table:
    """The csv module, row by row, for quoted fields and blank lines, and to
    name the exact line and value the fast path could not read. Values go
    straight into compact arrays, so even a long file fits in memory."""
    stream = io.TextIOWrapper(io.BytesIO(memoryview(data)[:end]), encoding="utf-8",
                              newline="")
    reader = csv.reader(stream)
    header: list[str] | None = None
    wanted: list[tuple[str, int, Column]] = []
    numbers: dict[str, array] = {}
    texts: dict[str, list[str]] = {}
    lines = array("q")
    csv.field_size_limit(MAX_LINE)
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line
            stripped = [f.strip() for f in fields]
            if header is None:
                header = stripped
                wanted = [(n, i, spec[n]) for i, n in enumerate(header) if n in spec]
                numbers = {n: array("d") for n, _, c in wanted if c.numeric}
                texts = {n: [] for n, _, c in wanted if not c.numeric}
                continue
            line = reader.line_num
            if stripped == header:
                raise DataError(f"{path}: line {line} repeats the header "
                                "(two files joined into one?)")
            if len(fields) != len(header):
                raise DataError(f"{path}: line {line}: {len(fields)} fields, the header "
                                f"has {len(header)}")
            for name, i, column in wanted:
                value = stripped[i]
                if not column.numeric:
                    texts[name].append(value)
                elif value == "":
                    numbers[name].append(math.nan)
                elif NUMBER.fullmatch(value):
                    number = float(value)
                    if not math.isfinite(number):
                        raise DataError(f"{path}: line {line}: column {name}: not a finite "
                                        f"number: {shown(value)}")
                    numbers[name].append(number)
                else:
                    raise DataError(f"{path}: line {line}: column {name}: non-numeric "
                                    f"value {shown(value)}")
            lines.append(line)
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({e})") from None
    assert header is not None  # read_table has seen the header line
    columns: dict[str, np.ndarray] = {n: np.frombuffer(a, dtype=np.float64)
                                      for n, a in numbers.items()}
    columns.update({n: np.array(t, dtype=object) for n, t in texts.items()})
    return Table(path, header, columns, len(lines), np.frombuffer(lines, dtype=np.int64))


def validate(table: Table, spec: dict[str, Column], data: bytes) -> None:
    """Check every cell of every known column against its Column rule; the
    first bad cell of a column raises DataError with its line, the value as
    written (data is the file) and the range accepted."""
    for name, values in table.columns.items():
        column = spec[name]
        if not column.numeric:
            if not column.allow_empty:
                first_bad(table, name, values == "", lambda _: "empty value")
            continue

        def written(i: int, name=name, values=values) -> str:
            # The cell as written: a double misstates a large number (the C
            # parser reads 2^63 as 9.223372036854778e+18).
            text = cell_text(data, table.header, table.line(i), name, values[i])
            return text if text is not None else fmt_number(values[i])

        empty = np.isnan(values)
        if not column.allow_empty:
            first_bad(table, name, empty, lambda _: "empty value")
        first_bad(table, name, np.isinf(values),
                  lambda i: f"not a finite number: {shown(written(i))}", by_row=True)
        # NaN (an empty cell) compares False: only numbers are judged here.
        with np.errstate(invalid="ignore"):
            first_bad(table, name, values > column.top,
                      lambda i: f"{written(i)} is out of range (more than "
                                f"{limit_text(column.top)}): accepted {column.accepted}",
                      by_row=True)
            first_bad(table, name, values < column.minimum,
                      lambda i: f"value {written(i)} is below "
                                f"{limit_text(column.minimum)}: accepted {column.accepted}",
                      by_row=True)
            if column.integer:
                first_bad(table, name, ~empty & (values % 1 != 0),
                          lambda i: f"expected an integer, got {written(i)}", by_row=True)


def cell_text(data: bytes, header: list[str], line: int, name: str,
              value: float) -> str | None:
    """The cell of column name on line (1-based) as written, stripped and
    cut to 40 characters; None unless it is a number that reads as value
    (give or take the parser's last bits): a quoted field over several
    lines, say, leaves the line numbers of the file and the reader apart."""
    offset = 0
    for _ in range(line - 1):
        offset = data.find(b"\n", offset) + 1
        if offset == 0:
            return None
    end = data.find(b"\n", offset)
    text = data[offset:end if end >= 0 else len(data)].decode("utf-8", "replace")
    fields = next(csv.reader([text.rstrip("\r")]), [])
    index = header.index(name)
    if len(fields) != len(header) or not NUMBER.fullmatch(fields[index].strip()):
        return None
    text = fields[index].strip()
    if float(text) != value and not math.isclose(float(text), value, rel_tol=1e-12):
        return None
    return text if len(text) <= 40 else text[:40] + "..."


def limit_text(limit: float) -> str:
    """A column's smallest or largest value as its message gives it: 2^64
    or 2^53-1 for the counter limits, 100 or 67,108,864 for the others."""
    if limit != int(limit):
        return fmt_number(limit)
    n = int(limit)
    if n >= 1 << 32 and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    if n >= 1 << 32 and n & (n + 1) == 0:
        return f"2^{n.bit_length()}-1"
    return f"{n:,}"


def impossible(table: Table, name: str, bad: np.ndarray, problem) -> None:
    """first_bad by row for a figure that disagrees with the others of its
    row (each as host_writer rounds it): no measurement gives such a row (a
    corrupt file, or counts a forged ring index made up), so it is refused,
    never plotted. problem(i) says what it should have been."""
    first_bad(table, name, bad, lambda i: f"{problem(i)}: a row no measurement can give",
              by_row=True)


def first_bad(table: Table, name: str, bad: np.ndarray, problem, by_row: bool = False) -> None:
    """Raise DataError for the first row where bad is true, if any; problem
    turns the value (or, by_row, the row's index) into the message."""
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{table.path}: line {table.line(i)}: column {name}: "
                        + problem(i if by_row else table.columns[name][i]))


# --------------------------------------------------------------------------
# The two results files
# --------------------------------------------------------------------------


@dataclass
class Loaded:
    """One results CSV: its rows as a DataFrame (None without data rows)."""

    path: Path
    frame: pd.DataFrame | None
    rows: int
    cut: str | None


def load_latency(path: Path) -> Loaded:
    """Load latency_results.csv into iteration, latency_ns[, received_ns]."""
    table = read_table(path, LATENCY.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    df = pd.DataFrame({
        "iteration": table.columns["iteration"].astype(np.int64),
        "latency_ns": table.columns["latency_ns"],
    })
    received = table.columns.get("received_ns")
    if received is not None and not np.isnan(received).all():
        df["received_ns"] = received
    check_unique(table, df["iteration"].to_numpy(), "iteration")
    return Loaded(path, df, table.rows, table.cut)


def check_unique(table: Table, keys: np.ndarray, what: str) -> None:
    """Each measurement once: a repeated key means two runs' rows in one file
    (or a writer bug), and its figures would count twice."""
    if keys.size < 2 or (keys.dtype.kind in "iuf" and (np.diff(keys) > 0).all()):
        return  # host_writer's order: strictly increasing, nothing repeated
    repeated = pd.Series(keys).duplicated().to_numpy()
    if repeated.any():
        i = int(np.argmax(repeated))
        first = int(np.argmax(keys == keys[i]))
        raise DataError(f"{table.path}: line {table.line(i)}: {what} {keys[i]} appears "
                        f"twice (first on line {table.line(first)})")


def load_bandwidth(path: Path) -> Loaded:
    """Load bandwidth_results.csv, one row per transfer, gaps computed."""
    table = read_table(path, BANDWIDTH.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    first_bad(table, "success", ~np.isin(cols["success"], ["0", "1"]),
              lambda v: f"expected 0 or 1, got {shown(v)}")
    ok = cols["success"] == "1"
    df = pd.DataFrame({"frame": cols["frame"], "bytes": cols["bytes"], "success": ok})
    names = cols.get("error_name", np.full(table.rows, "", dtype=object))
    df["error_name"] = np.where(names != "", names, np.where(ok, "ok", "failed"))
    for col in ("total_ns",) + BANDWIDTH_INT_COLUMNS + BANDWIDTH_TIME_COLUMNS \
            + BANDWIDTH_RATE_COLUMNS:
        if col in cols:
            df[col] = cols[col]
    # Rates are bytes / time: below 1 ns a time is no measurement, and a
    # rate from it could overflow to infinity.
    first_bad(table, "total_ns", ok & ~(df["total_ns"].to_numpy() >= 1),
              lambda v: f"a successful transfer needs a time of at least 1 ns, "
                        f"got {'nothing' if math.isnan(v) else fmt_number(v)}")
    fill_rates(df)
    if "iteration" not in df or df["iteration"].isna().any():
        df["iteration"] = df.groupby("frame", sort=False).cumcount()
    else:
        keys = (df["frame"] + "#" + df["iteration"].astype(np.int64).astype(str)).to_numpy()
        check_unique(table, keys, "transfer")
    check_frame_sizes(path, df)
    check_frame_rows(table)
    return Loaded(path, df, table.rows, table.cut)


def check_frame_rows(table: Table) -> None:
    """Each transfer's figures as frames.c computes them from one another:
    bytes = width x height x 3, total_ns = copy_ns + handoff_ns + verify_ns,
    transfer_gbps = bytes / copy_ns and bandwidth_gbps = bytes / total_ns
    (GB/s = bytes per ns, printed to 4 decimals; within that and AGREE).
    Empty cells are not judged."""
    cols = table.columns
    size = cols["bytes"]
    with np.errstate(invalid="ignore"):
        if "width" in cols and "height" in cols:
            pixels = cols["width"] * cols["height"]
            impossible(table, "bytes", ~np.isnan(pixels) & (size != 3 * pixels),
                       lambda i: f"{fmt_number(size[i])} is not width x height x 3 "
                                 f"({fmt_number(3 * pixels[i])})")
        if all(c in cols for c in ("copy_ns", "handoff_ns", "verify_ns")):
            parts = cols["copy_ns"] + cols["handoff_ns"] + cols["verify_ns"]
            total = cols["total_ns"]
            impossible(table, "total_ns", np.abs(total - parts) > 0.5 + parts * 2.0 ** -50,
                       lambda i: f"{fmt_number(total[i])} is not copy_ns + handoff_ns + "
                                 f"verify_ns ({fmt_number(parts[i])})")
        for rate, time in (("transfer_gbps", "copy_ns"), ("bandwidth_gbps", "total_ns")):
            if rate in cols and time in cols:
                want = size / np.maximum(cols[time], 1)
                got = cols[rate]
                impossible(table, rate, np.abs(got - want) > 5e-5 + want * AGREE,
                           lambda i, got=got, want=want, time=time:
                               f"{fmt_number(got[i])} is not bytes / {time} ({want[i]:.4f})")


def fill_rates(df: pd.DataFrame) -> None:
    """Compute bandwidth_gbps and transfer_gbps of successful rows left empty."""
    ok = df["success"]
    computed = df["bytes"] / df["total_ns"]
    if "bandwidth_gbps" not in df:
        df["bandwidth_gbps"] = np.nan
    df["bandwidth_gbps"] = df["bandwidth_gbps"].where(df["bandwidth_gbps"].notna() | ~ok,
                                                      computed)
    if "copy_ns" in df:
        copy_rate = df["bytes"] / df["copy_ns"].where(df["copy_ns"] >= 1)
        if "transfer_gbps" not in df:
            df["transfer_gbps"] = np.nan
        df["transfer_gbps"] = df["transfer_gbps"].where(df["transfer_gbps"].notna() | ~ok,
                                                        copy_rate)


def check_frame_sizes(path: Path, df: pd.DataFrame) -> None:
    """A frame name must always mean the same number of bytes."""
    sizes = df.groupby("frame")["bytes"].nunique()
    mixed = sizes[sizes > 1]
    if not mixed.empty:
        raise DataError(
            f"{path}: frame {shown(mixed.index[0])} appears with different byte counts"
        )


def row_frame(table: Table) -> pd.DataFrame:
    """The table's columns as a DataFrame, with the line each row came from
    (the report names it next to a bad row)."""
    df = pd.DataFrame(dict(table.columns))
    df["line"] = table.lines if table.lines is not None else np.arange(table.rows) + 2
    return df


def load_stream(path: Path) -> Loaded:
    """Load stream_results.csv, one row per point, figures as written. A
    point may repeat (host_writer --sizes 64,64 measures 64 B twice)."""
    table = read_table(path, STREAM.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    first_bad(table, "direction", ~np.isin(table.columns["direction"], STREAM_DIRECTIONS),
              lambda v: f"expected {', '.join(STREAM_DIRECTIONS[:-1])} or "
                        f"{STREAM_DIRECTIONS[-1]}, got {shown(v)}")
    check_stream_rows(table)
    df = row_frame(table)
    for name in ("message_bytes", "messages", "errors"):
        df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_stream_rows(table: Table) -> None:
    """Each point's figures as stream.c computes them from one another: a
    power-of-two ring, bytes = messages x message_bytes (exactly), msgs_per_s
    = messages / seconds and gbps = bytes / (seconds x 10^9), within the
    rounding of what host_writer prints (seconds %.6f, msgs_per_s %.1f, gbps
    %.4f) and AGREE. A forged or wrapped count fails these even inside its
    range."""
    cols = table.columns
    messages, secs = cols["messages"], cols["seconds"]
    rate, gbps = cols["msgs_per_s"], cols["gbps"]
    moved = messages * cols["message_bytes"]  # the same double product as stream.c's
    with np.errstate(invalid="ignore"):
        if "slots" in cols:
            slots = np.nan_to_num(cols["slots"], nan=1).astype(np.int64)
            first_bad(table, "slots", slots & (slots - 1) != 0,
                      lambda v: f"{fmt_number(v)} is not a power of two (a ring's slots)")
        if "bytes" in cols:
            size = cols["bytes"]
            impossible(table, "bytes", np.abs(size - moved) > 0.5 + moved * 2.0 ** -52,
                       lambda i: f"{fmt_number(size[i])} is not messages x message_bytes "
                                 f"({moved[i]:.0f})")
        else:
            size = moved
        # |rate x secs - messages| <= 0.05 secs + 5e-7 rate: the two roundings.
        slack = 0.05 * secs + 5e-7 * (rate + 0.05) + AGREE * messages
        impossible(table, "msgs_per_s", np.abs(rate * secs - messages) > slack,
                   lambda i: f"{fmt_number(rate[i])} is not messages / seconds "
                             f"({fmt_number(messages[i])} in {fmt_number(secs[i])} s)")
        ns = secs * 1e9
        slack = 5e-5 * ns + 5e-7 * 1e9 * (gbps + 5e-5) + AGREE * size
        impossible(table, "gbps", np.abs(gbps * ns - size) > slack,
                   lambda i: f"{fmt_number(gbps[i])} is not bytes / seconds / 10^9 "
                             f"({fmt_number(size[i])} bytes in {fmt_number(secs[i])} s)")


def load_sizelat(path: Path) -> Loaded:
    """Load size_latency_results.csv, one row per message size. Its figures
    must be in the order a distribution's are (min <= p50 <= ... <= max, the
    mean between min and max): columns out of that order are not results."""
    table = read_table(path, SIZELAT.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    check_distribution(table, ("min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"))
    df = row_frame(table)
    for name in ("message_bytes", "count", "errors"):
        df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_distribution(table: Table, order: tuple[str, ...]) -> None:
    """The figures of each row in the order a distribution's are (each of
    order at least the one before, the mean between the first and the last):
    columns out of that order are not results."""
    cols = table.columns
    pairs = list(zip(order, order[1:])) + [(order[0], "mean_ns"), ("mean_ns", order[-1])]
    for low, high in pairs:
        first_bad(table, high, cols[high] < cols[low],
                  lambda v, low=low: f"{fmt_number(v)} is below {low} "
                                     "(columns out of order, not a distribution)")


def one_of(names) -> str:
    """'a, b or c' for a message."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def interference_problem(name: str) -> str | None:
    """Why name is not an interference set host_writer writes ("none", or
    co-runners joined by '+', each at most once), or None."""
    parts = name.split("+")
    if name == QUIET or (all(p in CORUNNERS for p in parts) and len(set(parts)) == len(parts)):
        return None
    return (f"expected {QUIET} or co-runners ({one_of(CORUNNERS)}) joined by '+', "
            f"got {shown(name)}")


def check_interference(table: Table) -> None:
    names = table.columns["interference"]
    first_bad(table, "interference",
              np.array([interference_problem(n) is not None for n in names], dtype=bool),
              lambda v: interference_problem(v) or "")


def point_name(interference: str, offered: float) -> str:
    """'10,000/s cpu': a rate point as the report and the errors name it."""
    return f"{int(offered):,}/s {interference}"


def load_rate(path: Path) -> Loaded:
    """Load rate_results.csv, one row per offered rate and interference set.
    Its figures must read as a distribution's, its counts must add up (sent
    <= messages, received <= sent, unsent = messages - sent), and each rate
    and set appears once."""
    table = read_table(path, RATE.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    check_interference(table)
    for name, allowed in (("arrivals", RATE_ARRIVALS), ("percentiles", RATE_PERCENTILES)):
        if name in cols:
            first_bad(table, name, ~np.isin(cols[name], allowed),
                      lambda v, allowed=allowed: f"expected {one_of(allowed)}, got {shown(v)}")
    check_distribution(table, ("min_ns",) + RATE_TIMES[2:])
    first_bad(table, "sent", cols["sent"] > cols["messages"],
              lambda i: f"{fmt_number(cols['sent'][i])} is more than messages "
                        f"({fmt_number(cols['messages'][i])}), the messages scheduled",
              by_row=True)
    first_bad(table, "received", cols["received"] > cols["sent"],
              lambda i: f"{fmt_number(cols['received'][i])} is more than sent "
                        f"({fmt_number(cols['sent'][i])})", by_row=True)
    first_bad(table, "unsent", cols["unsent"] != cols["messages"] - cols["sent"],
              lambda i: f"{fmt_number(cols['unsent'][i])} is not messages - sent "
                        f"({fmt_number(cols['messages'][i] - cols['sent'][i])})", by_row=True)
    check_rate_rows(table)
    keys = np.array([point_name(n, r) for n, r in zip(cols["interference"],
                                                      cols["offered_per_s"])], dtype=object)
    check_unique(table, keys, "point")
    df = row_frame(table)
    for name, column in RATE.columns.items():
        if column.integer and name in df and not df[name].isna().any():
            df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_rate_rows(table: Table) -> None:
    """Each point's figures as rate.c computes them from one another (within
    the rounding of what it prints, and AGREE): late <= sent (only measured
    sends are counted late); the sender lag's p99 <= its max; messages =
    offered_per_s x duration_s (llround of the schedule); nothing achieved
    without a message received; and, with constant or closed arrivals,
    achieved_per_s <= offered_per_s x received / messages (the rate is
    taken over at least the planned schedule)."""
    cols = table.columns
    offered, received, messages = cols["offered_per_s"], cols["received"], cols["messages"]
    achieved = cols["achieved_per_s"]
    with np.errstate(invalid="ignore"):
        impossible(table, "late", cols["late"] > cols["sent"],
                   lambda i: f"{fmt_number(cols['late'][i])} is more than sent "
                             f"({fmt_number(cols['sent'][i])})")
        if "sender_lag_p99_ns" in cols and "sender_lag_max_ns" in cols:
            p99, top = cols["sender_lag_p99_ns"], cols["sender_lag_max_ns"]
            impossible(table, "sender_lag_p99_ns", p99 > top,
                       lambda i: f"{fmt_number(p99[i])} is above sender_lag_max_ns "
                                 f"({fmt_number(top[i])})")
        if "duration_s" in cols:
            # duration_s is printed to 1 ms: messages within offered x 0.5 ms.
            planned = offered * cols["duration_s"]
            impossible(table, "messages",
                       np.abs(messages - planned) > 5e-4 * offered + 0.5 + AGREE * planned,
                       lambda i: f"{fmt_number(messages[i])} is not offered_per_s x "
                                 f"duration_s ({fmt_number(planned[i])})")
        impossible(table, "achieved_per_s", (received == 0) & (achieved > 0),
                   lambda i: f"{fmt_number(achieved[i])} with no message received")
        if "arrivals" in cols:
            paced = np.isin(cols["arrivals"], ("constant", "closed")) & (messages > 0)
            most = offered * received * (1 + AGREE) + 0.05 * messages
            impossible(table, "achieved_per_s", paced & (achieved * messages > most),
                       lambda i: f"{fmt_number(achieved[i])} is more than offered_per_s x "
                                 f"received / messages "
                                 f"({offered[i] * received[i] / messages[i]:.1f})")


def bucket_width(low: np.ndarray) -> np.ndarray:
    """Width in ns of the hist.h bucket that starts at each value of low: 1
    below 128 ns, then 1/128 of the octave [2^e, 2^(e+1)) it is in."""
    _, exponent = np.frexp(np.maximum(low, 1))  # low = m * 2^exponent, m in [0.5, 1)
    return np.where(low < 1 << HIST_SUB_BITS, 1.0,
                    np.ldexp(1.0, np.maximum(exponent - 1 - HIST_SUB_BITS, 0)))


def load_rate_hist(path: Path) -> Loaded:
    """Load rate_histograms.csv, checking each point's histogram as hist.h
    writes it: its rows together, in ascending order, each a bucket that
    exists, and the running count adding up. (The percentile column is
    checked against the point's row, which gives the total: a file cut
    short ends with a histogram short of its total.)"""
    table = read_table(path, RATE_HIST.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    check_interference(table)
    low, high, count = cols["bucket_low_ns"], cols["bucket_high_ns"], cols["count"]
    width = bucket_width(low)
    first_bad(table, "bucket_low_ns", low % width != 0,
              lambda v: f"{fmt_number(v)} does not start a histogram bucket (hist.h: 1 ns "
                        "wide below 128 ns, then 128 buckets to an octave)")
    first_bad(table, "bucket_high_ns", high != low + width - 1,
              lambda i: f"{fmt_number(high[i])} does not end the bucket starting at "
                        f"{fmt_number(low[i])} (it ends at {fmt_number(low[i] + width[i] - 1)})",
              by_row=True)
    keys = np.array([point_name(n, r) for n, r in zip(cols["interference"],
                                                      cols["offered_per_s"])], dtype=object)
    start = np.ones(table.rows, dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(start)
    seen: dict[str, int] = {}
    for i in starts:
        if keys[i] in seen:
            raise DataError(f"{path}: line {table.line(i)}: the histogram of {keys[i]} "
                            f"goes on here after other rows (it began on line "
                            f"{table.line(seen[keys[i]])}): not one point's rows together")
        seen[keys[i]] = i
    first_bad(table, "bucket_low_ns", ~start & (low <= np.roll(high, 1)),
              lambda i: f"{fmt_number(low[i])} is not above the bucket before it (which "
                        f"ends at {fmt_number(high[i - 1])}): buckets repeated or out of "
                        "order", by_row=True)
    group = np.cumsum(start) - 1
    running = np.cumsum(count)
    before = np.concatenate(([0.0], running))[starts]  # counted before each histogram
    running -= before[group]
    cumulative = cols["cumulative_count"]
    first_bad(table, "cumulative_count", cumulative != running,
              lambda i: f"{fmt_number(cumulative[i])}, the counts so far add up to "
                        f"{fmt_number(running[i])}", by_row=True)
    df = row_frame(table)
    df["point"] = keys
    return Loaded(path, df, table.rows, table.cut)


@dataclass
class Histogram:
    """One rate point's latency histogram, as rate_histograms.csv gives it."""

    low: np.ndarray         # each non-empty bucket's lowest value, ns
    high: np.ndarray        # and its highest
    running: np.ndarray     # latencies counted up to the end of each bucket
    percentile: np.ndarray  # the percentile reached there, as written
    line: np.ndarray        # the line of each bucket in the file

    @property
    def total(self) -> int:
        return int(self.running[-1])

    @property
    def lines(self) -> tuple[int, int]:
        """Its first and last line."""
        return int(self.line[0]), int(self.line[-1])


def hist_percentiles(h: Histogram, low_ns: float, high_ns: float, ps) -> np.ndarray:
    """Percentiles ps (0..100) of a histogram as hist.h computes them: numpy's
    'linear' definition over the order statistics, each taken as its
    bucket's midpoint clamped to [low_ns, high_ns], the exact min and max;
    p 0 is the min and p 100 the max."""
    ps = np.asarray(ps, dtype=float)
    middle = np.clip((h.low + h.high) / 2, low_ns, high_ns)
    rank = ps / 100 * (h.total - 1)
    lo = np.floor(rank)
    a = middle[np.searchsorted(h.running, lo, side="right")]
    b = middle[np.minimum(np.searchsorted(h.running, lo + 1, side="right"), middle.size - 1)]
    b = np.where(lo + 1 >= h.total, a, b)
    values = a + (rank - lo) * (b - a)
    return np.where(ps <= 0, low_ns, np.where(ps >= 100, high_ns, values))


ROW_PERCENTILES = ((50, "p50_ns"), (90, "p90_ns"), (99, "p99_ns"), (99.9, "p999_ns"),
                   (99.99, "p9999_ns"))


def histogram_problem(h: Histogram, row) -> str | None:
    """What makes h not the histogram of the rate row, or None: another
    number of latencies, a percentile column that is not 100 * running /
    that number, a min or max outside its first or last bucket, or
    percentiles further from the row's than hist.h's bound (1/256 of the
    value, plus the row's rounding to 0.1 ns)."""
    if h.total != row.received:
        return (f"holds {h.total:,} latencies, its row {int(row.received):,} messages "
                "received")
    reached = 100 * h.running / h.total
    off = np.flatnonzero(np.abs(h.percentile - reached) > 1e-5)
    if off.size:
        i = off[0]
        return (f"has percentile {fmt_number(h.percentile[i])} on line {h.line[i]}, expected "
                f"{reached[i]:.6f} (100 * cumulative_count / its total)")
    if not h.low[0] <= row.min_ns <= h.high[0]:
        return (f"starts with the bucket {fmt_number(h.low[0])}-{fmt_number(h.high[0])} ns, "
                f"which does not hold its row's min_ns ({fmt_number(row.min_ns)})")
    top = HIST_MAX_NS if row.max_ns > HIST_MAX_NS else row.max_ns  # larger: the last bucket
    if not h.low[-1] <= top <= h.high[-1]:
        return (f"ends with the bucket {fmt_number(h.low[-1])}-{fmt_number(h.high[-1])} ns, "
                f"which does not hold its row's max_ns ({fmt_number(row.max_ns)})")
    ours = hist_percentiles(h, row.min_ns, row.max_ns, [p for p, _ in ROW_PERCENTILES])
    for (p, column), value in zip(ROW_PERCENTILES, ours):
        written = getattr(row, column)
        if abs(value - written) > written * HIST_REL_ERROR * (1 + 1e-9) + 0.1:
            return (f"gives p{p:g} {value:,.1f} ns, its row {written:,.1f} ns: further "
                    "apart than the histogram's error bound (1/256)")
    return None


def rate_histograms(rates: Loaded, hists: Loaded | None) -> tuple[dict, list[str]]:
    """Each rate point's histogram, by point_name, checked against its row
    in rate_results.csv (histogram_problem); and the problems found: a row
    with messages received and no histogram, a histogram without a row, a
    histogram that does not fit its row. Points with a problem are left
    out of the result."""
    groups = {} if hists is None or hists.frame is None else \
        {name: g for name, g in hists.frame.groupby("point", sort=False)}
    found, problems, rows = {}, [], set()
    for row in rates.frame.itertuples(index=False):
        name = point_name(row.interference, row.offered_per_s)
        rows.add(name)
        g = groups.get(name)
        if g is None:
            if row.received > 0:
                problems.append(f"{rates.path}: line {row.line}: {name} received "
                                f"{int(row.received):,} messages, but {RATE_HIST_CSV} has no "
                                "histogram of them")
            continue
        h = Histogram(g["bucket_low_ns"].to_numpy(float), g["bucket_high_ns"].to_numpy(float),
                      g["cumulative_count"].to_numpy(float), g["percentile"].to_numpy(float),
                      g["line"].to_numpy())
        problem = histogram_problem(h, row)
        if problem:
            problems.append(f"{hists.path}: lines {h.lines[0]}-{h.lines[1]}: the histogram of "
                            f"{name} {problem} ({RATE_CSV} line {row.line})")
        else:
            found[name] = h
    for name, g in groups.items():
        if name not in rows:
            problems.append(f"{hists.path}: line {int(g['line'].iloc[0])}: a histogram of "
                            f"{name}, which has no row in {RATE_CSV}")
    return found, problems


def set_order(df: pd.DataFrame) -> list[str]:
    """The interference sets of the rate rows: the quiet one first, then the
    others as they first appear (host_writer's order)."""
    names = list(dict.fromkeys(df["interference"]))
    return sorted(names, key=lambda n: n != QUIET)


def knees_from_rows(df: pd.DataFrame) -> dict[str, tuple[int, object]]:
    """Each interference set's knee as host_writer finds it: going up from
    the set's first rate, the last rate sustained before the first that is
    not (0 when not even the first is); with that first row not sustained
    (None when every rate was)."""
    knees = {}
    for name in set_order(df):
        knee, stop = 0, None
        for row in df[df["interference"] == name].sort_values("offered_per_s").itertuples(
                index=False):
            if not row.sustained:
                stop = row
                break
            knee = int(row.offered_per_s)
        knees[name] = (knee, stop)
    return knees


def check_knees(path: Path, info: dict, df: pd.DataFrame) -> None:
    """run.json's rate.knee_per_s against the rows: the same knee for each
    interference set, and no set on one side only. DataError otherwise."""
    rate = info.get("rate")
    if rate is None:
        return
    if not isinstance(rate, dict):
        raise DataError(f"{path}: rate: expected an object (the rate workload's settings)")
    recorded = rate.get("knee_per_s")
    if recorded is None:
        return
    if not isinstance(recorded, dict) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in recorded.values()):
        raise DataError(f"{path}: rate.knee_per_s: expected an object of interference set "
                        "to messages/s")
    rows = {name: knee for name, (knee, _) in knees_from_rows(df).items()}
    for name in list(dict.fromkeys(list(recorded) + list(rows))):
        if name not in rows:
            raise DataError(f"{path}: rate.knee_per_s has {shown(name)}, which has no row "
                            f"in {RATE_CSV}")
        if name not in recorded:
            raise DataError(f"{path}: rate.knee_per_s lacks {name}, which has rows in "
                            f"{RATE_CSV}")
        if recorded[name] != rows[name]:
            raise DataError(f"{path}: rate.knee_per_s.{name} is {recorded[name]:,}, but the "
                            f"rows of {RATE_CSV} put it at {rows[name]:,} messages/s")


# --------------------------------------------------------------------------
# run.json: provenance, status, and which files the run wrote
# --------------------------------------------------------------------------


def load_run_info(path: Path) -> dict:
    """Read run.json strictly: a JSON object of bounded size and depth,
    finite numbers, no repeated keys, text that can be written out again.
    DataError (one line) otherwise."""
    data = read_bytes(path, MAX_RUN_JSON)
    check_text(path, data)

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        for k in keys:
            if keys.count(k) > 1:
                raise DataError(f"{path}: key {shown(k)} appears twice in one object")
        return dict(pairs)

    def finite(text):
        value = float(text)
        if not math.isfinite(value):
            raise DataError(f"{path}: number {shown(text)} is out of range")
        return value

    def bounded(text):
        if len(text.lstrip("-")) > 20 or abs(int(text)) >= 2 ** 64:
            raise DataError(f"{path}: number {shown(text)} is out of range")
        return int(text)

    def constant(text):
        raise DataError(f"{path}: {text} is not a number JSON allows")

    try:
        info = json.loads(data.decode("utf-8-sig"), object_pairs_hook=no_repeats,
                          parse_float=finite, parse_int=bounded, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise DataError(f"{path}: nested too deeply (more than "
                        f"{MAX_JSON_DEPTH} levels)") from None
    if not isinstance(info, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(info).__name__}")
    check_json_tree(path, info)
    return info


def check_json_tree(path: Path, info: dict) -> None:
    """Depth and text of every value, without recursion (the tree is input)."""
    stack = [(info, "", 1)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise DataError(f"{path}: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            name = f"{where}.{key}" if where else str(key)
            for text in (key, value):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise DataError(f"{path}: {shown(name, 30)}: a lone UTF-16 "
                                        "surrogate (\\ud800-\\udfff), not text") from None
            if isinstance(value, (dict, list)):
                stack.append((value, name, depth + 1))


@dataclass
class Provenance:
    """What run.json says about the run's end and the files it wrote."""

    status: str | None             # "complete", "running" or what went wrong
    run_id: str | None
    files: dict[str, int] | None   # file name -> data rows; None: not recorded


def provenance(path: Path, info: dict | None) -> Provenance:
    """The status, run_id and files of run.json, type-checked; any of them may
    be absent (run.json of an older host_writer, or no run.json)."""
    if info is None:
        return Provenance(None, None, None)
    status, run_id, files = info.get("status"), info.get("run_id"), info.get("files")
    if status is not None and (not isinstance(status, str) or not status.strip()):
        raise DataError(f"{path}: status: expected a sentence, got {shown(str(status))}")
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise DataError(f"{path}: run_id: expected a string, got {shown(str(run_id))}")
    if files is not None:
        if not isinstance(files, dict):
            raise DataError(f"{path}: files: expected an object of file name to row count")
        for name, rows in files.items():
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
                raise DataError(f"{path}: files: {shown(name)}: expected a row count, "
                                f"got {shown(str(rows))}")
    return Provenance(status, run_id, files)


# --------------------------------------------------------------------------
# One results directory, with what makes it partial
# --------------------------------------------------------------------------


@dataclass
class Run:
    """Everything read from one results directory."""

    directory: Path
    info: dict | None
    latency: pd.DataFrame | None
    bandwidth: pd.DataFrame | None
    stream: pd.DataFrame | None = None    # stream_results.csv, one row per point
    sizelat: pd.DataFrame | None = None   # size_latency_results.csv, one row per size
    rate: pd.DataFrame | None = None      # rate_results.csv, one row per rate and set
    rate_hist: dict = field(default_factory=dict)  # point_name -> its checked Histogram
    notes: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # why the results are partial
    status: str | None = None
    run_id: str | None = None


def status_problem(prov: Provenance) -> str | None:
    """Why run.json's status makes the results partial, or None."""
    if prov.status is None or prov.status == "complete":
        return None
    if prov.status == "running":
        return ("run.json says the run is still running: it stopped before its end "
                "(or is still going)")
    return f"the run did not complete: {prov.status}"


def row_problem(name: str, rows: int, listed: int, status: str | None) -> str | None:
    """Why a CSV's row count against run.json's makes the results partial."""
    if rows < listed:
        return (f"{name} has {rows:,} data rows, run.json lists {listed:,}: truncated, "
                "or replaced by another run")
    if rows > listed and status != "running":
        return (f"{name} has {rows:,} data rows, run.json lists {listed:,}: rows written "
                "after the run ended, by another run")
    return None


LOADERS = {LATENCY_CSV: load_latency, BANDWIDTH_CSV: load_bandwidth,
           STREAM_CSV: load_stream, SIZELAT_CSV: load_sizelat,
           RATE_CSV: load_rate, RATE_HIST_CSV: load_rate_hist}


def load_rate_run(run: Run, loaded: dict, prov: Provenance, info_path: Path) -> None:
    """The rate rows and their histograms, together: run.rate_hist gets the
    histogram of each point that fits its row, and run.json's knees must be
    the rows' (for a complete run whose files it lists). A mismatch is an
    error, except in partial results, where the point's spectrum is left
    out with a note (the histogram file may stop short of its rows)."""
    rates, hists = loaded.get(RATE_CSV), loaded.get(RATE_HIST_CSV)
    if rates is None or rates.frame is None:
        if hists is not None and hists.frame is not None:
            if not run.partial:
                raise DataError(f"{hists.path}: histograms without the rows of {RATE_CSV} "
                                "they belong to")
            run.notes.append(f"{RATE_HIST_CSV} left out: no rows of {RATE_CSV} to tie its "
                             "histograms to")
        return
    run.rate_hist, problems = rate_histograms(rates, hists)
    if problems and not run.partial:
        raise DataError(problems[0])
    for problem in problems:
        run.notes.append(f"percentile spectrum left out: {problem}")
    if not run.partial and prov.status == "complete" and RATE_CSV in (prov.files or {}):
        check_knees(info_path, run.info, rates.frame)


def load_run(directory: Path, warn, allow_partial: bool) -> Run:
    """Load a results directory and check that its files belong to one
    finished run. Partial results raise PartialError unless allow_partial;
    then Run.partial says why and only this run's files are used."""
    if not present(directory):
        raise DataError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    if not any(present(directory / name) for name in RESULT_FILES):
        raise DataError(f"{directory}: no results: none of {', '.join(RESULT_FILES)} "
                        "found")
    info_path = directory / RUN_JSON
    info = load_run_info(info_path) if present(info_path) else None
    prov = provenance(info_path, info)
    run = Run(directory, info, None, None, status=prov.status, run_id=prov.run_id)
    problem = status_problem(prov)
    if problem:
        run.partial.append(problem)
    untied = None  # why the files cannot be tied to a finished run
    if info is None:
        untied = ("no run.json: nothing tells whether the run completed or which run "
                  "wrote these files")
    elif prov.files is None:
        untied = ("run.json lists no files (an older host_writer): the CSV files cannot "
                  "be tied to this run")
    elif prov.status is None:
        untied = "run.json has no status: nothing tells whether the run completed"
    if untied:
        run.notes.append(untied)
    loaded, absent = {}, []
    for name, load in LOADERS.items():
        path, listed = directory / name, (prov.files or {}).get(name)
        if not present(path):
            absent.append(name)
            if listed is not None:
                run.partial.append(f"run.json lists {name} ({listed:,} rows) but it is "
                                   "missing")
            continue
        if prov.files is not None and listed is None:
            run.partial.append(f"{name} is not in run.json's files: another run wrote "
                               "it; left out")
            continue
        result = loaded[name] = load(path)
        if result.cut:
            run.partial.append(f"{name}: {result.cut}")
        if listed is not None:
            problem = row_problem(name, result.rows, listed, prov.status)
            if problem:
                run.partial.append(problem)
    for name, result in loaded.items():
        # A histogram file may be empty: every point received nothing. Its
        # rows are checked against the rate rows below.
        if result.frame is None and not run.partial and prov.files is None \
                and name != RATE_HIST_CSV:
            raise DataError(f"{result.path}: header but no data rows")
    if run.partial and not allow_partial:
        raise PartialError(f"{directory}: partial results: " + "; ".join(run.partial)
                           + " (--allow-partial analyses what is there)")
    for name, result in loaded.items():
        if result.frame is None and name != RATE_HIST_CSV:
            run.notes.append(f"{name} has no data rows: its section is skipped")
    load_rate_run(run, loaded, prov, info_path)
    frames = {name: result.frame for name, result in loaded.items() if name != RATE_HIST_CSV}
    run.latency, run.bandwidth = frames.get(LATENCY_CSV), frames.get(BANDWIDTH_CSV)
    run.stream, run.sizelat = frames.get(STREAM_CSV), frames.get(SIZELAT_CSV)
    run.rate = frames.get(RATE_CSV)
    if all(frame is None for frame in frames.values()):
        if run.partial:
            raise PartialError(f"{directory}: nothing of this run to analyse: "
                               + "; ".join(run.partial))
        raise DataError(f"{directory}: no data rows in " + " or ".join(loaded))
    if run.rate is not None and RATE_HIST_CSV in absent:
        absent.remove(RATE_HIST_CSV)
        run.notes.append(f"{RATE_HIST_CSV} not found: the percentile spectrum of the rate "
                         "points (to p99.999) is skipped")
    if absent and prov.files is None:
        # With a list of the files the run wrote, one it did not list is a
        # workload it did not run: nothing to note.
        run.notes.append(", ".join(absent) + " not found: "
                         + ("its section is" if len(absent) == 1 else "their sections are")
                         + " skipped")
    if run.latency is not None and "received_ns" not in run.latency:
        run.notes.append("no received_ns column: first-acknowledgement statistics skipped")
    if untied:
        warn(f"{directory}: {untied}")
    if run.partial:
        warn(f"{directory}: PARTIAL results: " + "; ".join(run.partial))
    return run
# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def clean(value):
    """Make a value JSON-friendly: numpy scalars to Python, NaN to None.
    (Infinities cannot come from checked input; they would become None too.)"""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def sample_std(values: np.ndarray) -> float | None:
    """Sample standard deviation (n-1), None for fewer than two values."""
    return float(np.std(values, ddof=1)) if values.size > 1 else None


def latency_stats(values_ns) -> dict:
    """Count, extremes, mean, std, percentiles, IQR and one-way estimates (ns)."""
    v = np.asarray(values_ns, dtype=float)
    p25, p50, p75, p90, p95, p99, p999 = np.percentile(v, [25, 50, 75, 90, 95, 99, 99.9])
    mean = float(v.mean())
    return {
        "count": int(v.size),
        "min_ns": float(v.min()),
        "max_ns": float(v.max()),
        "mean_ns": mean,
        "median_ns": float(p50),
        "std_ns": sample_std(v),
        "p25_ns": float(p25),
        "p50_ns": float(p50),
        "p75_ns": float(p75),
        "p90_ns": float(p90),
        "p95_ns": float(p95),
        "p99_ns": float(p99),
        "p99_9_ns": float(p999),
        "iqr_ns": float(p75 - p25),
        "one_way_median_ns": float(p50) / 2,
        "one_way_mean_ns": mean / 2,
    }


def spread(values) -> dict:
    """mean, std (n-1), min, max and median of a series, None when empty."""
    v = np.asarray(pd.Series(values).dropna(), dtype=float)
    if v.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "median": None}
    return {
        "mean": float(v.mean()),
        "std": sample_std(v),
        "min": float(v.min()),
        "max": float(v.max()),
        "median": float(np.median(v)),
    }


def frame_order(df: pd.DataFrame) -> list[str]:
    """Frame names from the smallest to the largest frame."""
    sizes = df.groupby("frame")["bytes"].first()
    return sorted(sizes.index, key=lambda f: (sizes[f], f))


def frame_stats(frame: str, rows: pd.DataFrame) -> dict:
    """Success rate, bandwidth, host copy rate and durations of one frame size."""
    good = rows[rows["success"]]
    first = rows.iloc[0]
    failures = rows.loc[~rows["success"], "error_name"].value_counts()
    stats = {
        "frame": frame,
        "bytes": int(first["bytes"]),
        "width": clean(first.get("width")),
        "height": clean(first.get("height")),
        "attempts": int(len(rows)),
        "successes": int(len(good)),
        "failures": int(len(rows) - len(good)),
        "success_rate": len(good) / len(rows),
        "errors": {str(k): int(v) for k, v in failures.items()},
        "bandwidth_gbps": spread(good["bandwidth_gbps"]),
        "transfer_gbps": spread(good["transfer_gbps"]) if "transfer_gbps" in good else None,
        "duration_ns": spread(good["total_ns"]),
        "phase_mean_ns": {},
    }
    for col in BANDWIDTH_TIME_COLUMNS:
        if col in good and good[col].notna().any():
            stats["phase_mean_ns"][col.removesuffix("_ns")] = float(good[col].mean())
    for key in ("width", "height"):
        if stats[key] is not None:
            stats[key] = int(stats[key])
    return stats


def extreme(good: pd.DataFrame, column: str, largest: bool) -> dict:
    """The row with the largest/smallest value of column, as a small dict."""
    idx = good[column].idxmax() if largest else good[column].idxmin()
    row = good.loc[idx]
    return {"value": float(row[column]), "frame": row["frame"],
            "iteration": int(row["iteration"])}


def bandwidth_stats(df: pd.DataFrame) -> dict:
    """Per-frame statistics and the overall summary of all transfers."""
    frames = [frame_stats(f, df[df["frame"] == f]) for f in frame_order(df)]
    good = df[df["success"]]
    overall = {
        "total": int(len(df)),
        "successful": int(len(good)),
        "failed": int(len(df) - len(good)),
        "success_rate": len(good) / len(df),
        "peak_gbps": None, "lowest_gbps": None, "average_gbps": None,
        "aggregate_gbps": None, "fastest_ns": None, "slowest_ns": None,
    }
    if len(good):
        overall.update({
            "peak_gbps": extreme(good, "bandwidth_gbps", largest=True),
            "lowest_gbps": extreme(good, "bandwidth_gbps", largest=False),
            "average_gbps": float(good["bandwidth_gbps"].mean()),
            "aggregate_gbps": float(good["bytes"].sum() / good["total_ns"].sum()),
            "fastest_ns": extreme(good, "total_ns", largest=False),
            "slowest_ns": extreme(good, "total_ns", largest=True),
        })
    return {"frames": frames, "overall": overall}


def records(df: pd.DataFrame, schema: Schema, rename: dict[str, str]) -> list[dict]:
    """Each row as a dict of the schema's columns (as written: integers as
    int, an empty or absent column as None) and the line it came from."""
    out = []
    names = [n for n in schema.columns if n in df] + ["line"]
    for row in df[names].itertuples(index=False):
        item = {}
        for name, value in zip(names, row):
            column = schema.columns.get(name, Column(integer=True))
            value = clean(value)
            if column.integer and value is not None:
                value = int(value)
            item[rename.get(name, name)] = value
        for name in schema.columns:
            item.setdefault(rename.get(name, name), None)
        out.append(item)
    return out


def size_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by message size; repeats of one size stay in file order."""
    return df.sort_values("message_bytes", kind="stable")


def stream_stats(df: pd.DataFrame) -> dict:
    """The stream points as written, per direction by size, with the peak
    of each direction; figures are host_writer's, not recomputed."""
    directions = [d for d in STREAM_DIRECTIONS if (df["direction"] == d).any()]
    points, peaks = [], {}
    for d in directions:
        rows = size_order(df[df["direction"] == d])
        points += records(rows, STREAM, {})
        peaks[d] = {key: {"value": float(rows[key].max()),
                          "message_bytes": int(rows.loc[rows[key].idxmax(), "message_bytes"])}
                    for key in ("msgs_per_s", "gbps")}
    bad = [p for p in points if p["errors"]]
    return {"directions": directions, "points": points, "peaks": peaks,
            "bad_points": len(bad), "errors": int(sum(p["errors"] for p in bad))}


def sizelat_stats(df: pd.DataFrame) -> dict:
    """The size-latency rows as written, by message size."""
    sizes = records(size_order(df), SIZELAT, {"p999_ns": "p99_9_ns"})
    bad = [s for s in sizes if s["errors"]]
    return {"sizes": sizes, "bad_sizes": len(bad),
            "errors": int(sum(s["errors"] for s in bad)),
            "percentiles_from": "host_writer, over every round trip of each size "
                                "(the same definition as here)"}


# The percentile spectrum of a rate point, from its histogram: (percentile,
# key, label); max is the row's exact max.
SPECTRUM = ((50, "p50_ns", "p50"), (90, "p90_ns", "p90"), (99, "p99_ns", "p99"),
            (99.9, "p99_9_ns", "p99.9"), (99.99, "p99_99_ns", "p99.99"),
            (99.999, "p99_999_ns", "p99.999"))
# The rate row's figures that get a ratio to the quiet row of the same rate.
RATE_RATIOS = (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"),
               ("p99.99", "p99_99_ns"), ("max", "max_ns"))
RATE_RENAME = {"p999_ns": "p99_9_ns", "p9999_ns": "p99_99_ns", "p999_ratio": "p99_9_ratio"}


def resolved(samples: int, percentile: float) -> bool:
    """True when samples reach percentile: at least 1 / (1 - p) of them, so
    it is not just the top few interpolated (p99.9 needs 1,000)."""
    return samples * (1 - percentile / 100) >= 1 - 1e-9


def spectrum(h: Histogram, point: dict) -> dict:
    """A point's percentiles from p50 to p99.999 and its max, from its
    histogram; the highest one its samples resolve."""
    values = hist_percentiles(h, point["min_ns"], point["max_ns"], [p for p, _, _ in SPECTRUM])
    out = {"samples": h.total, "lines": list(h.lines)}
    out.update({key: float(v) for (_, key, _), v in zip(SPECTRUM, values)})
    out["max_ns"] = point["max_ns"]
    reached = [label for p, _, label in SPECTRUM if resolved(h.total, p)]
    out["resolved_to"] = reached[-1] if reached else None
    return out


def ratio(value, base) -> float | None:
    return None if value is None or not base else value / base


def why_not_sustained(row, fraction: float) -> str:
    """Why host_writer marked a rate point not sustained, from its row."""
    reasons = []
    if row.achieved_per_s < fraction * row.offered_per_s:
        reasons.append(f"achieved {100 * row.achieved_per_s / row.offered_per_s:.1f} % of "
                       f"offered (below {100 * fraction:g} %)")
    bound = getattr(row, "p99_bound_ns", None)
    if bound is not None and not math.isnan(bound) and row.p99_ns > bound:
        reasons.append(f"p99 {row.p99_ns / 1e3:,.1f} us above the bound "
                       f"{bound / 1e3:,.1f} us")
    return "; ".join(reasons) or "marked not sustained by host_writer"


def rate_stats(run: Run) -> dict:
    """The rate points as written, by rate and then interference set (the
    quiet one first), each with its ratios to the quiet point of the same
    rate and its percentile spectrum; and each set's knee, from the rows
    (checked against run.json's when the run completed)."""
    df = run.rate
    sets = set_order(df)
    rows = df.assign(_set=df["interference"].map(sets.index)).sort_values(
        ["offered_per_s", "_set"], kind="stable")
    points = records(rows, RATE, RATE_RENAME)
    info = (run.info or {}).get("rate")
    info = info if isinstance(info, dict) else {}
    fraction = info.get("sustained_fraction", 0.99)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 < fraction <= 1:
        fraction = 0.99  # host_writer's RATE_SUSTAINED
    knees = {}
    for name, (knee, stop) in knees_from_rows(df).items():
        mine = [p["offered_per_s"] for p in points if p["interference"] == name]
        knees[name] = {
            "knee_per_s": knee,
            "highest_measured_per_s": max(mine),
            "first_not_sustained": None if stop is None else {
                "offered_per_s": int(stop.offered_per_s),
                "achieved_per_s": float(stop.achieved_per_s),
                "p99_ns": float(stop.p99_ns),
                "line": int(stop.line),
                "why": why_not_sustained(stop, fraction)},
        }
    quiet = {p["offered_per_s"]: p for p in points if p["interference"] == QUIET}
    for p in points:
        p["point"] = point_name(p["interference"], p["offered_per_s"])
        p["sustained"] = bool(p["sustained"])
        p["at_knee"] = knees[p["interference"]]["knee_per_s"] == p["offered_per_s"]
        base = quiet.get(p["offered_per_s"])
        p["ratio_to_quiet"] = None if p["interference"] == QUIET or base is None else \
            {label: ratio(p[key], base[key]) for label, key in RATE_RATIOS}
        h = run.rate_hist.get(p["point"])
        p["spectrum"] = spectrum(h, p) if h is not None else None
    bad = [p for p in points if p["errors"]]
    return {
        "sets": sets,
        "rates": sorted({p["offered_per_s"] for p in points}),
        "points": points,
        "knee_per_s": {name: k["knee_per_s"] for name, k in knees.items()},
        "knees": knees,
        "knee_rule": f"the highest rate sustained (achieved >= {100 * fraction:g} % of offered "
                     "and p99 <= the bound), going up from the first rate; 0: not even the "
                     "first",
        "sweep_to_per_s": info.get("sweep_to") if info.get("mode") == "sweep" else None,
        "bad_points": len(bad),
        "errors": int(sum(p["errors"] for p in bad)),
        "percentiles_from": "host_writer, over every measured message of each point (its "
                            "'percentiles' column says exact, or histogram past its sample "
                            "limit); the spectrum (to p99.999) from rate_histograms.csv, "
                            "within 1/256 of the exact value",
    }


def summarize(run: Run) -> dict:
    """All figures of one run, as written to summary.json."""
    summary = {
        "tool": PROG,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results_dir": str(run.directory),
        "label": run_label(run),
        "run": run.info,
        "run_id": run.run_id,
        "status": run.status,
        "partial": bool(run.partial),
        "partial_reasons": run.partial,
        "notes": run.notes,
        "percentile_method": "linear interpolation between order statistics "
                             "(numpy 'linear', Hyndman & Fan type 7)",
        "std_method": "sample (n-1)",
        "latency": None,
        "bandwidth": None,
        "stream": None,
        "size_latency": None,
        "rate": None,
    }
    if run.latency is not None:
        received = None
        if "received_ns" in run.latency:
            received = latency_stats(run.latency["received_ns"].dropna())
        summary["latency"] = {
            "round_trip": latency_stats(run.latency["latency_ns"]),
            "received": received,
        }
    if run.bandwidth is not None:
        summary["bandwidth"] = bandwidth_stats(run.bandwidth)
    if run.stream is not None:
        summary["stream"] = stream_stats(run.stream)
    if run.sizelat is not None:
        summary["size_latency"] = sizelat_stats(run.sizelat)
    if run.rate is not None:
        summary["rate"] = rate_stats(run)
    summary["bad_messages"] = bad_messages(summary)
    return summary


def bad_messages(summary: dict) -> list[dict]:
    """Every stream point, message size and rate point whose messages failed
    their check (errors > 0), where it is written: its figures are not of a
    channel that works, and the report and the exit status say so."""
    bad = [{"file": STREAM_CSV, "line": p["line"],
            "point": f"{p['direction']} {fmt_size(p['message_bytes'])}",
            "errors": p["errors"]}
           for p in (summary["stream"] or {"points": []})["points"] if p["errors"]]
    bad += [{"file": SIZELAT_CSV, "line": s["line"],
             "point": f"size latency {fmt_size(s['message_bytes'])}",
             "errors": s["errors"]}
            for s in (summary["size_latency"] or {"sizes": []})["sizes"] if s["errors"]]
    return bad + [{"file": RATE_CSV, "line": p["line"], "point": f"rate {p['point']}",
                   "errors": p["errors"]}
                  for p in (summary["rate"] or {"points": []})["points"] if p["errors"]]


# --------------------------------------------------------------------------
# Labels, units and number formatting
# --------------------------------------------------------------------------


def run_label(run: Run) -> str:
    """'plain / kvm, micro guest' from run.json, else the directory name;
    ' [PARTIAL]' added to partial results, so every title says it."""
    info = run.info or {}
    mode, accel, guest = info.get("mode"), info.get("accel"), info.get("guest")
    if not mode and not accel:
        label = f"{dir_name(run.directory)} (no run.json)" if run.info is None \
            else dir_name(run.directory)
    else:
        label = f"{mode or '?'} / {accel or '?'}"
        if guest == "host":
            label += ", host-only baseline"
        elif guest:
            label += f", {guest} guest"
    return label + (" [PARTIAL]" if run.partial else "")


def short_label(run: Run) -> str:
    """'plain/kvm/micro' for tables and legends, else the directory name."""
    info = run.info or {}
    parts = [str(info[k]) for k in ("mode", "accel", "guest") if info.get(k)]
    label = "/".join(parts) if parts else dir_name(run.directory)
    return label + (" [PARTIAL]" if run.partial else "")


def dir_name(directory: Path) -> str:
    """A readable name for a directory, even for '.' or a trailing slash."""
    return directory.resolve().name or str(directory)


def pick_unit(median_ns: float) -> tuple[str, float, int]:
    """(unit, ns per unit, decimals) chosen from the median latency."""
    if median_ns < 10_000:
        return "ns", 1.0, 1
    if median_ns < 10_000_000:
        return "µs", 1e3, 3
    return "ms", 1e6, 3


def fmt_time(ns: float | None, unit: tuple[str, float, int]) -> str:
    """A time in the given unit, with thousands separators; '-' when absent."""
    if ns is None:
        return "-"
    _, scale, decimals = unit
    return f"{ns / scale:,.{decimals}f}"


def nice(value: float) -> str:
    """A number for a plot label: 18,078 or 541 or 0.37, never 1.8e+04."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_size(n: int) -> str:
    """A message size as people write it: 8 B, 100 B, 4 KiB, 1 MiB (binary
    units only where they are exact)."""
    for shift, unit in ((20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} B"


def fmt_sig(value: float | None) -> str:
    """A rate or cost to four significant digits, thousands separated:
    4,798,382 or 2.101 or 0.0007; '-' when absent."""
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:,.3f}"


def fmt_gbps(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fmt_pm(s: dict, fmt) -> str:
    """'mean ± std' of a spread() dict."""
    if s["mean"] is None:
        return "-"
    if s["std"] is None:
        return f"{fmt(s['mean'])} ± -"
    return f"{fmt(s['mean'])} ± {fmt(s['std'])}"


def fmt_range(s: dict, fmt) -> str:
    return "-" if s["min"] is None else f"{fmt(s['min'])} – {fmt(s['max'])}"


def frame_caption(f: dict) -> str:
    """'1080p (1920x1080, 6.2 MB)'."""
    dims = f"{f['width']}x{f['height']}, " if f.get("width") and f.get("height") else ""
    return f"{f['frame']} ({dims}{f['bytes'] / 1e6:.1f} MB)"


def table(rows: list[list[str]], align: str = "") -> list[str]:
    """Align rows into columns; align has 'l' or 'r' per column (default: the
    first column left, the others right)."""
    ncols = len(rows[0])
    align = (align or "l" + "r" * (ncols - 1)).ljust(ncols, "r")
    widths = [max(len(r[i]) for r in rows) for i in range(ncols)]
    lines = []
    for r in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, a in zip(r, widths, align)]
        lines.append("  ".join(cells).rstrip())
    return lines


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


def describe_value(key: str, value) -> str:
    """run.json values for the header; sizes in bytes get a MiB reading."""
    if key == "shm_size" and isinstance(value, int) and value >= 1 << 20:
        return f"{value} ({value / (1 << 20):g} MiB)"
    return str(value)


def flatten(info: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested run.json objects as 'pinning.host = 2' style pairs."""
    pairs = []
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs.extend(flatten(value, name + "."))
        elif isinstance(value, list):
            pairs.append((name, ", ".join(map(str, value))))
        else:
            pairs.append((name, describe_value(key, value)))
    return pairs


def partial_banner(reasons: list[str]) -> list[str]:
    """The block that opens a report of partial results."""
    lines = ["*** PARTIAL RESULTS: these figures do not describe one complete run ***"]
    return lines + [f"  - {r}" for r in reasons] + [""]


def report_header(summary: dict) -> list[str]:
    title = f"ivshmem-bench performance report: {summary['label']}"
    lines = [title, "=" * len(title)]
    if summary["partial"]:
        lines += partial_banner(summary["partial_reasons"])
    if summary["bad_messages"]:
        lines += bad_banner(summary["bad_messages"])
    lines += [f"Results:   {summary['results_dir']}",
              f"Generated: {summary['generated']}"]
    if summary["run"]:
        lines.append("Run (from run.json):")
        lines += ["  " + l for l in table([[k, v] for k, v in flatten(summary["run"])], "ll")]
    else:
        lines.append("Run: no run.json in the results directory")
    if summary["notes"]:
        lines.append("Notes:")
        lines += [f"  - {n}" for n in summary["notes"]]
    return lines + ["", PERCENTILE_NOTE]


LATENCY_ROWS = [
    ("count", "count"), ("min", "min_ns"), ("median (p50)", "p50_ns"),
    ("mean", "mean_ns"), ("std dev", "std_ns"), ("p90", "p90_ns"),
    ("p95", "p95_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"), ("max", "max_ns"),
    ("IQR (p75 - p25)", "iqr_ns"), ("one-way est. (p50 / 2)", "one_way_median_ns"),
    ("one-way est. (mean / 2)", "one_way_mean_ns"),
]


def report_latency(lat: dict) -> list[str]:
    rt, rc = lat["round_trip"], lat["received"]
    unit = pick_unit(rt["median_ns"])
    head = ["", f"round trip ({unit[0]})"]
    if rc:
        head.append(f"first ack ({unit[0]})")
    rows = [head]
    for name, key in LATENCY_ROWS:
        cells = [name]
        for s in (rt, rc) if rc else (rt,):
            cells.append(str(s["count"]) if key == "count" else fmt_time(s[key], unit))
        rows.append(cells)
    lines = ["", "LATENCY", "-------",
             "round trip: host posts a message -> guest's PROCESSED acknowledgement"]
    if rc:
        lines.append("first ack:  host posts a message -> guest's RECEIVED acknowledgement")
    lines.append("one-way estimate: half the round trip")
    return lines + [""] + ["  " + l for l in table(rows)]


def report_bandwidth(bw: dict) -> list[str]:
    lines = ["", "BANDWIDTH", "---------",
             "bandwidth = bytes / (copy + handoff + verify): the whole verified exchange",
             "host copy = bytes / copy: the host's write into shared memory",
             "GB/s = 1e9 bytes/s; durations in ms", ""]
    rows = [["frame", "success", "bandwidth GB/s", "range", "duration ms", "range",
             "host copy GB/s"]]
    for f in bw["frames"]:
        rows.append([
            frame_caption(f), f"{f['successes']}/{f['attempts']}",
            fmt_pm(f["bandwidth_gbps"], fmt_gbps), fmt_range(f["bandwidth_gbps"], fmt_gbps),
            fmt_pm(f["duration_ns"], fmt_ms), fmt_range(f["duration_ns"], fmt_ms),
            fmt_pm(f["transfer_gbps"], fmt_gbps) if f["transfer_gbps"] else "-",
        ])
    lines += ["  " + l for l in table(rows)]
    lines += report_phases(bw["frames"])
    errors = [f"{f['frame']}: " + ", ".join(f"{n} x{c}" for n, c in f["errors"].items())
              for f in bw["frames"] if f["errors"]]
    if errors:
        lines += ["", "Failures by error:"] + [f"  {e}" for e in errors]
    return lines + report_overall(bw["overall"])


def report_phases(frames: list[dict]) -> list[str]:
    """Mean time per phase of the successful transfers, in ms."""
    phases = [p for p in ("copy", "handoff", "verify", "guest_read", "guest_hash")
              if any(p in f["phase_mean_ns"] for f in frames)]
    if not phases:
        return []
    rows = [["frame"] + phases]
    for f in frames:
        rows.append([f["frame"]] + [fmt_ms(f["phase_mean_ns"].get(p)) for p in phases])
    return (["", "Mean time per phase of the successful transfers, ms:",
             "copy = host memcpy into shared memory, handoff = post -> RECEIVED,",
             "verify = RECEIVED -> PROCESSED (guest copies out and checks SHA-256),",
             "guest_read / guest_hash = the guest's own timing of those two steps", ""]
            + ["  " + l for l in table(rows)])


def report_overall(o: dict) -> list[str]:
    lines = ["", f"Overall: {o['total']} transfers, {o['successful']} successful "
             f"({100 * o['success_rate']:.1f}%), {o['failed']} failed"]
    if not o["successful"]:
        return lines + ["  no successful transfer: no bandwidth to report"]

    def where(e):
        return f"({e['frame']}, iteration {e['iteration']})"

    rows = [
        ["peak bandwidth", f"{o['peak_gbps']['value']:.3f} GB/s", where(o["peak_gbps"])],
        ["lowest bandwidth", f"{o['lowest_gbps']['value']:.3f} GB/s", where(o["lowest_gbps"])],
        ["average bandwidth", f"{o['average_gbps']:.3f} GB/s",
         "(mean over successful transfers)"],
        ["aggregate bandwidth", f"{o['aggregate_gbps']:.3f} GB/s",
         "(all bytes / all time)"],
        ["fastest transfer", f"{fmt_ms(o['fastest_ns']['value'])} ms", where(o["fastest_ns"])],
        ["slowest transfer", f"{fmt_ms(o['slowest_ns']['value'])} ms", where(o["slowest_ns"])],
    ]
    return lines + ["  " + l for l in table(rows, "lrl")]


def bad_banner(bad: list[dict]) -> list[str]:
    """The block that opens a report whose messages failed their check."""
    counts = [(sum(b["file"] == name for b in bad), what) for name, what in (
        (STREAM_CSV, "stream point"), (SIZELAT_CSV, "message size"), (RATE_CSV, "rate point"))]
    what = " and ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in counts if n)
    lines = [f"*** BAD MESSAGES: {what} had messages that failed their check "
             "(errors > 0) ***"]
    lines += [f"  - {b['file']} line {b['line']}: {b['point']}: {b['errors']:,} bad "
              f"message{'s' if b['errors'] > 1 else ''}" for b in bad]
    return lines + ["  Their figures are not of a channel that works; the rows are "
                    "marked BAD below.", ""]


STREAM_NOTE = [
    "msgs/s and GB/s (1e9 bytes/s) are counted where messages arrive, over the",
    "measured time after a warm-up; bidir counts both directions together.",
    "us/msg: the CPU time each side's thread spent per message moved (vCPU: the",
    "guest's vCPU thread as the host saw it); CPU %: the share of one core.",
    "doorbells/msg: doorbells rung by both sides per message moved.",
]


def settings_line(rows: list[dict], keys: tuple[str, ...]) -> str:
    """'verify xxh3, wait spin, slots 256' for the settings every row
    shares; a setting that differs between rows says so."""
    parts = []
    for key in keys:
        values = [str(v) for v in sorted({r[key] for r in rows if r.get(key) is not None})]
        if values:
            parts.append(f"{key} {values[0]}" if len(values) == 1
                         else f"{key} varies ({', '.join(values)})")
    return ", ".join(parts)


def report_stream(st: dict) -> list[str]:
    points = st["points"]
    vcpu = any(p["vcpu_cpu_us_per_msg"] is not None for p in points)
    head = ["direction", "size", "msgs/s", "GB/s", "host us/msg", "guest us/msg"]
    head += ["vCPU us/msg"] if vcpu else []
    head += ["host CPU %", "guest CPU %", "doorbells/msg", "errors", ""]
    rows = [head]
    for p in points:
        cells = [p["direction"], fmt_size(p["message_bytes"]), f"{p['msgs_per_s']:,.0f}",
                 fmt_sig(p["gbps"]), fmt_sig(p["host_cpu_us_per_msg"]),
                 fmt_sig(p["guest_cpu_us_per_msg"])]
        cells += [fmt_sig(p["vcpu_cpu_us_per_msg"])] if vcpu else []
        cells += [fmt_pct(p["host_cpu_percent"]), fmt_pct(p["guest_cpu_percent"]),
                  fmt_sig(p["doorbells_per_msg"]), f"{p['errors']:,}",
                  f"<< BAD: {p['errors']:,} bad messages" if p["errors"] else ""]
        rows.append(cells)
    lines = ["", "STREAM THROUGHPUT", "-----------------"] + STREAM_NOTE
    settings = settings_line(points, ("verify", "wait", "slots", "batch"))
    if settings:
        lines.append("Settings: " + settings)
    lines += [""] + ["  " + l for l in table(rows, "ll")]
    lines += ["", "Peak per direction:"]
    for d, peak in st["peaks"].items():
        lines.append(f"  {d:<5}  {peak['msgs_per_s']['value']:,.0f} msgs/s at "
                     f"{fmt_size(peak['msgs_per_s']['message_bytes'])}, "
                     f"{fmt_sig(peak['gbps']['value'])} GB/s at "
                     f"{fmt_size(peak['gbps']['message_bytes'])}")
    return lines


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


SIZELAT_ROWS = (("min", "min_ns"), ("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"),
                ("p99.9", "p99_9_ns"), ("max", "max_ns"), ("mean", "mean_ns"))


def report_sizelat(sl: dict) -> list[str]:
    sizes = sl["sizes"]
    unit = pick_unit(min(s["p50_ns"] for s in sizes))
    rows = [["size", "round trips"] + [f"{name} ({unit[0]})" for name, _ in SIZELAT_ROWS]
            + ["errors", ""]]
    for s in sizes:
        rows.append([fmt_size(s["message_bytes"]), f"{s['count']:,}"]
                    + [fmt_time(s[key], unit) for _, key in SIZELAT_ROWS]
                    + [f"{s['errors']:,}",
                       f"<< BAD: {s['errors']:,} bad messages" if s["errors"] else ""])
    lines = ["", "SIZE LATENCY", "------------",
             "round trip of one message of each size: copied into shared memory, copied",
             "out, checked and echoed back, then copied out and checked again",
             "(osu_latency's semantics). Percentiles: host_writer's, over every round trip."]
    settings = settings_line(sizes, ("verify", "wait"))
    if settings:
        lines.append("Settings: " + settings)
    return lines + [""] + ["  " + l for l in table(rows)]


RATE_NOTE = [
    "Open loop: each message goes at its scheduled time whether or not the last",
    "was answered, and is timed from that time, so a stall delays every message",
    "queued behind it (no coordinated omission). achieved: messages/s received;",
    "late: messages sent more than one mean gap after their time; unsent: never",
    "sent (the sender fell too far behind). x quiet: the figure over the quiet",
    "point's of the same rate. Percentiles: host_writer's, over every measured",
    "message.",
]
RATE_TABLE = (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"),
              ("p99.99", "p99_99_ns"), ("max", "max_ns"))


def rate_unit(points: list[dict]) -> tuple[str, float, int]:
    """One unit for a rate table or plot, from the median of the p50s above 0."""
    medians = [p["p50_ns"] for p in points if p["p50_ns"]]
    return pick_unit(float(np.median(medians)) if medians else 0)


def knee_text(name: str, k: dict) -> str:
    """What a set's knee is and why it is there, for the report."""
    stop = k["first_not_sustained"]
    if stop is None:
        return (f"{k['knee_per_s']:,}/s: sustained at every rate measured (up to "
                f"{k['highest_measured_per_s']:,}/s), so the knee may be higher")
    if not k["knee_per_s"]:
        return f"none: not sustained at its first rate, {stop['offered_per_s']:,}/s: {stop['why']}"
    return (f"{k['knee_per_s']:,}/s: the next rate, {stop['offered_per_s']:,}/s, was not "
            f"sustained: {stop['why']}")


def report_rate(rt: dict) -> list[str]:
    points = rt["points"]
    unit = rate_unit(points)
    sets = rt["sets"]
    lines = ["", "LATENCY UNDER LOAD", "------------------"] + RATE_NOTE
    settings = settings_line(points, ("arrivals", "message_bytes", "verify", "wait",
                                      "duration_s", "p99_bound_ns"))
    if settings:
        lines.append("Settings: " + settings)
    lines += [""] + textwrap.wrap(f"Knee: {rt['knee_rule']}.", 78)
    lines += ["  " + l for l in table([[name, knee_text(name, rt["knees"][name])]
                                       for name in sets], "ll")]
    loaded = len(sets) > 1
    head = ["rate/s", "interference", "achieved/s"] + [f"{n} ({unit[0]})" for n, _ in RATE_TABLE]
    head += ["late", "unsent", "errors", "sustained"]
    head += ["p50 x quiet", "p99 x quiet", "p99.9 x quiet", "max x quiet"] if loaded else []
    rows = [head + [""]]
    for p in points:
        cells = [f"{p['offered_per_s']:,}", p["interference"], f"{p['achieved_per_s']:,.0f}"]
        # No message received: the row's zeros are no latencies.
        cells += [fmt_time(p[key] if p["received"] else None, unit) for _, key in RATE_TABLE]
        cells += [f"{p['late']:,}", f"{p['unsent']:,}", f"{p['errors']:,}",
                  "yes" if p["sustained"] else "NO"]
        if loaded:
            r = p["ratio_to_quiet"] or {}
            cells += [ratio_text(r[k]) if r.get(k) is not None else "-"
                      for k in ("p50", "p99", "p99.9", "max")]
        marks = (["<< knee"] if p["at_knee"] else []) + (
            [f"<< BAD: {p['errors']:,} bad messages"] if p["errors"] else [])
        rows.append(cells + [", ".join(marks)])
    lines += [""] + ["  " + l for l in table(rows, "rl")]
    lines += report_spectrum(points, unit)
    return lines


def report_spectrum(points: list[dict], unit) -> list[str]:
    """The percentile spectrum of each point with a histogram."""
    shown_points = [p for p in points if p["spectrum"]]
    if not shown_points:
        return []
    rows = [["rate/s", "interference", "samples"]
            + [f"{label} ({unit[0]})" for _, _, label in SPECTRUM] + [f"max ({unit[0]})"]]
    beyond = False
    for p in shown_points:
        sp = p["spectrum"]
        cells = [f"{p['offered_per_s']:,}", p["interference"], f"{sp['samples']:,}"]
        for percentile, key, _ in SPECTRUM:
            text = fmt_time(sp[key], unit)
            if not resolved(sp["samples"], percentile):
                text += "*"
                beyond = True
            cells.append(text)
        rows.append(cells + [fmt_time(sp["max_ns"], unit)])
    lines = ["", "Percentile spectrum, from each point's histogram (rate_histograms.csv;",
             "within 1/256 of the exact value):"]
    if beyond:
        lines += ["* beyond what the samples resolve (p needs 1 / (1 - p) of them: p99.9",
                  "  needs 1,000): interpolated between the top few, not a measured tail."]
    return lines + [""] + ["  " + l for l in table(rows, "rl")]


def render_report(summary: dict) -> str:
    lines = report_header(summary)
    if summary["latency"]:
        lines += report_latency(summary["latency"])
    if summary["bandwidth"]:
        lines += report_bandwidth(summary["bandwidth"])
    if summary["stream"]:
        lines += report_stream(summary["stream"])
    if summary["size_latency"]:
        lines += report_sizelat(summary["size_latency"])
    if summary["rate"]:
        lines += report_rate(summary["rate"])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def pyplot():
    """Import pyplot lazily (slow) with settings that read well at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # headless: must precede the pyplot import
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 11,
        "axes.labelsize": 10, "legend.fontsize": 9, "figure.titlesize": 13,
    })
    return plt


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plain_log_ticks(axis) -> None:
    """Log-axis ticks at 1-2-5 steps written as plain numbers, not 10^3."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: nice(v)))
    axis.set_minor_formatter(NullFormatter())


def comma_ticks(axis) -> None:
    """Linear-axis tick labels with thousands separators, like the log axes."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: nice(v) if v else "0"))


def sorted_percentile(ordered: np.ndarray, q) -> np.ndarray:
    """numpy's 'linear' percentiles of an already sorted array, O(1) each:
    the plots ask for hundreds of them of up to tens of millions of values."""
    q = np.asarray(q, dtype=float)
    h = (ordered.size - 1) * q / 100
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


@dataclass
class LatencySeries:
    """The latency columns as arrays, in file order and sorted (once, for
    every plot), and the iteration of each row."""

    iteration: np.ndarray
    rt: np.ndarray
    rt_sorted: np.ndarray
    rc: np.ndarray | None         # first ack, empty cells dropped
    rc_sorted: np.ndarray | None
    rc_all: np.ndarray | None     # first ack in file order, NaN where empty

    @classmethod
    def of(cls, lat: pd.DataFrame) -> "LatencySeries":
        rt = lat["latency_ns"].to_numpy(float)
        rc_all = lat["received_ns"].to_numpy(float) if "received_ns" in lat else None
        rc = rc_all[~np.isnan(rc_all)] if rc_all is not None else None
        if rc is not None and rc.size == 0:
            rc = rc_all = None
        return cls(lat["iteration"].to_numpy(), rt, np.sort(rt), rc,
                   np.sort(rc) if rc is not None else None, rc_all)


def body_limit(ordered: np.ndarray) -> float:
    """Upper end of the bulk of a distribution: p75 + 5 IQR, within [p99, p99.5]
    so a thin but far tail does not squash the bulk into one bar."""
    p25, p75, p99, p995 = sorted_percentile(ordered, [25, 75, 99, 99.5])
    return float(min(p995, max(p99, p75 + 5 * (p75 - p25))))


def wide(ordered: np.ndarray) -> bool:
    """True when a distribution's tail is long enough to need a log axis."""
    lo, hi = sorted_percentile(ordered, [1, 100])
    return lo > 0 and hi / lo > 20


def headline(fig, text: str, partial: list[str]) -> None:
    """The figure's title; for partial results a second line in red says why,
    so the picture cannot be taken for a whole run."""
    if not partial:
        fig.suptitle(text)
        return
    why = "; ".join(partial)
    why = why if len(why) <= 110 else why[:107] + "..."
    fig.suptitle("\n".join(filter(None, [text, f"PARTIAL RESULTS: {why}"])),
                 color="tab:red")


def plot_latency_histogram(lat: LatencySeries, title: str, partial: list[str],
                           path: Path) -> Path:
    """Counts from np.histogram over every sample, drawn as steps: the cost
    of drawing does not grow with the number of samples."""
    plt = pyplot()
    rt, rc = lat.rt_sorted, lat.rc_sorted
    name, scale, _ = pick_unit(sorted_percentile(rt, 50))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    headline(fig, f"Latency distribution: {title}", partial)

    cut = body_limit(rt)
    hidden = rt.size - int(np.searchsorted(rt, cut, side="right"))
    lo = min(rt[0], rc[0] if rc is not None else rt[0])
    edges = np.linspace(lo, max(cut, lo + 1e-9 * scale), 61)
    ax1.stairs(np.histogram(rt, edges)[0], edges / scale, fill=True, color="tab:blue",
               alpha=0.75, label="round trip")
    if rc is not None:
        ax1.stairs(np.histogram(rc, edges)[0], edges / scale, color="tab:orange", lw=1.5,
                   label="first ack (RECEIVED)")
    ax1.set_title(f"Linear scale: the bulk, up to {nice(cut / scale)} {name}\n"
                  f"({hidden:,} slower round trips not shown, see right)")
    ax1.set_xlabel(f"latency ({name})")
    comma_ticks(ax1.xaxis)
    comma_ticks(ax1.yaxis)  # 1,000,000 rather than an offset "1e6" over the axis
    ax1.set_ylabel("samples")

    positive = rt[rt > 0]
    lo2 = max(positive[0] if positive.size else 1.0, 1.0)
    hi2 = max(rt[-1], lo2 * 1.01)
    logedges = np.geomspace(lo2, hi2, 61)
    ax2.stairs(np.histogram(rt, logedges)[0], logedges / scale, fill=True,
               color="tab:blue", alpha=0.75, label="round trip")
    if rc is not None:
        ax2.stairs(np.histogram(rc, logedges)[0], logedges / scale, color="tab:orange",
                   lw=1.5, label="first ack (RECEIVED)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_title("Log scales: the full range, tail included\n ")
    plain_log_ticks(ax2.xaxis)
    plain_log_ticks(ax2.yaxis)
    ax2.set_xlabel(f"latency ({name}, log scale)")
    ax2.set_ylabel("samples (log scale)")

    for ax in (ax1, ax2):
        for p, style in ((50, "--"), (99, ":")):
            v = sorted_percentile(rt, p) / scale
            ax.axvline(v, color="black", ls=style, lw=1, label=f"p{p} = {nice(v)} {name}")
        ax.legend(loc="upper right")
    return save(fig, path)


SCATTER_LIMIT = 100_000  # up to this many round trips, every one is a dot
TIME_BINS = 2_000        # beyond it, this many bins of consecutive round trips


def bin_rows(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Split values (in order) into bins of equal size, the remainder in one
    more; return (index of each bin's middle row, rows as a list of arrays)."""
    size = values.size // bins
    full = values[:size * bins].reshape(bins, size)
    parts = [full] + ([values[size * bins:][None, :]] if values.size % bins else [])
    middles = np.arange(bins) * size + size // 2
    if values.size % bins:
        middles = np.append(middles, size * bins + (values.size % bins) // 2)
    return middles, parts


def binned(values: np.ndarray, bins: int, how) -> np.ndarray:
    """how(rows, axis=1) of each bin of bin_rows(). A bin of nothing but
    empty cells gives NaN (a gap in the line), without numpy's warning."""
    _, parts = bin_rows(values, bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.concatenate([how(p, axis=1) for p in parts])


def plot_latency_over_time(lat: LatencySeries, title: str, partial: list[str],
                           path: Path) -> Path:
    """Each round trip as a dot with a rolling median; above SCATTER_LIMIT,
    bins of consecutive round trips instead: the min-max band of each bin
    (so no outlier disappears) and its median, in time linear in the rows."""
    plt = pyplot()
    rt = lat.rt
    name, scale, _ = pick_unit(sorted_percentile(lat.rt_sorted, 50))
    fig, ax = plt.subplots(figsize=(12, 5), constrained_layout=True)
    if rt.size <= SCATTER_LIMIT:
        dense = rt.size > 20_000  # thinner, fainter dots so a long run stays legible
        ax.scatter(lat.iteration, rt / scale, s=1 if dense else 4,
                   alpha=max(0.03, min(0.35, 3000 / rt.size)), color="tab:blue",
                   label="round trip (each sample)", rasterized=True)
        window = max(5, rt.size // 50)
        ax.plot(lat.iteration, pd.Series(rt).rolling(window, center=True, min_periods=1)
                .median() / scale, color="black", lw=1.5,
                label=f"round trip, rolling median of {window}")
        if lat.rc_all is not None:
            ax.plot(lat.iteration, pd.Series(lat.rc_all).rolling(
                window, center=True, min_periods=1).median() / scale,
                color="tab:orange", lw=1.5,
                label=f"first ack (RECEIVED), rolling median of {window}")
        drawn = ""
    else:
        middles, _ = bin_rows(rt, TIME_BINS)
        x = lat.iteration[middles]
        per_bin = rt.size // TIME_BINS
        ax.fill_between(x, binned(rt, TIME_BINS, np.min) / scale,
                        binned(rt, TIME_BINS, np.max) / scale, color="tab:blue",
                        alpha=0.3, lw=0, label=f"round trip, min-max of each {per_bin:,}")
        ax.plot(x, binned(rt, TIME_BINS, np.median) / scale, color="black", lw=1.2,
                label=f"round trip, median of each {per_bin:,}")
        if lat.rc_all is not None:
            ax.plot(x, binned(lat.rc_all, TIME_BINS, np.nanmedian) / scale,
                    color="tab:orange", lw=1.2,
                    label=f"first ack (RECEIVED), median of each {per_bin:,}")
        drawn = f"\n{rt.size:,} round trips drawn as {len(x):,} bins of consecutive ones"
    p99 = sorted_percentile(lat.rt_sorted, 99) / scale
    ax.axhline(p99, color="tab:red", ls=":", lw=1, label=f"p99 = {nice(p99)} {name}")
    log = wide(lat.rt_sorted)
    if log:
        ax.set_yscale("log")
    ax.set_title(f"Latency over time: {title}{drawn}",
                 color="tab:red" if partial else "black")
    if partial:
        headline(fig, "", partial)
    ax.set_xlabel("iteration (measured round trips, warm-up excluded)")
    comma_ticks(ax.xaxis)
    ax.set_ylabel(f"latency ({name}{', log scale' if log else ''})")
    plain_log_ticks(ax.yaxis) if log else comma_ticks(ax.yaxis)
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4,
                       markerscale=3, frameon=False)
    handles = getattr(legend, "legend_handles", None) or legend.legendHandles  # mpl 3.6
    for handle in handles:
        handle.set_alpha(1)  # the faint dots would make an invisible legend entry
    return save(fig, path)


def tail_position(percentile):
    """x position of a percentile on a tail axis: 90, 99, 99.9 evenly spaced."""
    return -np.log10(1 - np.asarray(percentile, dtype=float) / 100)


def plot_latency_percentiles(lat: LatencySeries, title: str, partial: list[str],
                             path: Path) -> Path:
    plt = pyplot()
    rt = lat.rt_sorted
    name, scale, _ = pick_unit(sorted_percentile(rt, 50))
    n = rt.size
    top = min(99.99, 100 * (1 - 1 / max(n, 2)))  # no further than the data reaches
    ps = np.unique(np.concatenate([np.linspace(0, 90, 91),
                                   100 - np.geomspace(10, 100 - top, 200)]))
    ps = ps[ps <= top]
    fig, ax = plt.subplots(figsize=(11, 6), constrained_layout=True)
    ax.plot(tail_position(ps), sorted_percentile(rt, ps) / scale, color="tab:blue", lw=2,
            label="round trip")
    if lat.rc_sorted is not None:
        ax.plot(tail_position(ps), sorted_percentile(lat.rc_sorted, ps) / scale,
                color="tab:orange", lw=1.5, label="first ack (RECEIVED)")
    for p in KEY_PERCENTILES:
        if p > top + 1e-9:
            continue
        v = sorted_percentile(rt, p) / scale
        x = tail_position(p)
        ax.plot(x, v, "o", color="tab:red", zorder=3)
        ax.annotate(f"p{p:g} = {nice(v)} {name}", (x, v), textcoords="offset points",
                    xytext=(8, -16), ha="left", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
    ax.axhline(rt[-1] / scale, color="gray", ls="--", lw=1,
               label=f"max = {nice(rt[-1] / scale)} {name}")
    ticks = [p for p in (0, 50, 90, 99, 99.9, 99.99) if p <= top + 1e-9]
    ax.set_xticks(tail_position(ticks))
    ax.set_xticklabels([f"p{p:g}" for p in ticks])
    ax.set_xlim(0, tail_position(top) * 1.02)
    log = wide(rt)
    if log:
        ax.set_yscale("log")
    plain_log_ticks(ax.yaxis) if log else comma_ticks(ax.yaxis)
    ax.set_title(f"Latency percentiles: {title}  ({n:,} samples)",
                 color="tab:red" if partial else "black")
    if partial:
        headline(fig, "", partial)
    ax.set_xlabel("percentile (tail stretched: p90, p99, p99.9 equally spaced)")
    ax.set_ylabel(f"latency ({name}{', log scale' if log else ''})")
    ax.legend(loc="upper left")
    return save(fig, path)


def frame_axis(ax, frames: list[dict]) -> None:
    """x axis with one category per frame size, named with its size in MB."""
    ax.set_xticks(range(len(frames)))
    ax.set_xticklabels([f"{f['frame']}\n{f['bytes'] / 1e6:.1f} MB" for f in frames])
    ax.set_xlim(-0.8, len(frames) - 0.2)


def no_data(ax, text="no successful transfers"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            fontsize=12, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_bandwidth(df: pd.DataFrame, stats: dict, title: str, partial: list[str],
                   path: Path) -> Path:
    plt = pyplot()
    frames = stats["frames"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    headline(fig, f"Bandwidth: {title}", partial)
    good = df[df["success"]]
    if len(good):
        panel_distribution(axes[0, 0], good, frames)
        panel_scaling(axes[0, 1], frames)
        panel_duration(axes[1, 0], frames)
    else:
        for ax, t in ((axes[0, 0], "Bandwidth distribution"),
                      (axes[0, 1], "Scaling with frame size"),
                      (axes[1, 0], "Transfer duration")):
            ax.set_title(t)
            no_data(ax)
    panel_success(axes[1, 1], frames)
    return save(fig, path)


def panel_distribution(ax, good: pd.DataFrame, frames: list[dict]) -> None:
    data = [good.loc[good["frame"] == f["frame"], "bandwidth_gbps"].to_numpy()
            for f in frames]
    pos = [i for i, d in enumerate(data) if d.size]
    ax.boxplot([data[i] for i in pos], positions=pos, widths=0.5, showfliers=False,
               medianprops={"color": "black"})
    rng = np.random.default_rng(0)
    for i in pos:
        ax.scatter(i + rng.uniform(-0.18, 0.18, data[i].size), data[i], s=8,
                   alpha=0.4, color="tab:blue", zorder=3)
    frame_axis(ax, frames)
    ax.set_title("Distribution per frame size (each dot one transfer)")
    ax.set_ylabel("bandwidth (GB/s)")


def panel_scaling(ax, frames: list[dict]) -> None:
    from matplotlib.ticker import FuncFormatter

    shown = [f for f in frames if f["successes"]]
    x = [f["bytes"] / 1e6 for f in shown]
    for key, label, color in (("bandwidth_gbps", "whole exchange (bytes / total)", "tab:blue"),
                              ("transfer_gbps", "host copy only (bytes / copy)", "tab:green")):
        if any(f[key] is None or f[key]["mean"] is None for f in shown):
            continue
        y = [f[key]["mean"] for f in shown]
        err = [f[key]["std"] or 0 for f in shown]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, color=color, label=label)
    for f, xi in zip(shown, x):
        ax.annotate(f["frame"], (xi, f["bandwidth_gbps"]["mean"]),
                    textcoords="offset points", xytext=(7, 5), ha="left", fontsize=9)
    values = [f[k]["mean"] for f in shown for k in ("bandwidth_gbps", "transfer_gbps")
              if f.get(k) and f[k]["mean"]]
    if values and max(values) / min(values) > 20:
        # A slow verified exchange next to a fast copy: a linear axis would
        # flatten the exchange line onto zero.
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylabel("bandwidth (GB/s, log scale)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("bandwidth (GB/s)")
    ax.margins(x=0.1, y=0.15)
    ax.set_title("Scaling with frame size (mean ± std)")
    ax.set_xlabel("frame size (MB, 1 MB = 1e6 bytes)")
    ax.legend(loc="best")


def panel_duration(ax, frames: list[dict]) -> None:
    x = np.arange(len(frames))
    phases = [("copy", "host copy", "tab:green"),
              ("handoff", "handoff (to RECEIVED)", "tab:orange"),
              ("verify", "verify (to PROCESSED)", "tab:purple")]
    have_phases = all(all(p in f["phase_mean_ns"] for p, _, _ in phases)
                      for f in frames if f["successes"])
    if have_phases:
        bottom = np.zeros(len(frames))
        for p, label, color in phases:
            h = np.array([f["phase_mean_ns"].get(p, 0) / 1e6 for f in frames])
            ax.bar(x, h, 0.55, bottom=bottom, color=color, label=label)
            bottom += h
    means = np.array([(f["duration_ns"]["mean"] or 0) / 1e6 for f in frames])
    stds = np.array([(f["duration_ns"]["std"] or 0) / 1e6 for f in frames])
    if not have_phases:
        ax.bar(x, means, 0.55, color="tab:blue", label="total")
    ax.errorbar(x, means, yerr=stds, fmt="none", ecolor="black", capsize=5,
                label="total: mean ± std")
    for xi, m, f in zip(x, means, frames):
        if f["successes"]:
            ax.annotate(f"{m:.2f} ms", (xi, m), textcoords="offset points",
                        xytext=(14, 2), fontsize=9)
    frame_axis(ax, frames)
    ax.set_ylim(0, max(means + stds) * 1.25 if len(means) else 1)
    ax.set_title("Transfer duration by phase (mean of successful transfers)")
    ax.set_ylabel("duration (ms)")
    ax.legend(loc="upper left")


def panel_success(ax, frames: list[dict]) -> None:
    x = np.arange(len(frames))
    rates = np.array([100 * f["success_rate"] for f in frames])
    colors = ["tab:green" if r == 100 else "tab:orange" if r > 0 else "tab:red"
              for r in rates]
    ax.bar(x, rates, 0.55, color=colors)
    for xi, r, f, c in zip(x, rates, frames, colors):
        text = f"{f['successes']}/{f['attempts']}"
        if f["errors"]:
            name, count = max(f["errors"].items(), key=lambda e: e[1])
            more = " ..." if len(f["errors"]) > 1 else ""
            text += f"\n{name} x{count}{more}"
        ax.text(xi, r + 2, text, ha="center", va="bottom", fontsize=9,
                color="black" if r else "tab:red")
    frame_axis(ax, frames)
    ax.set_ylim(0, 125)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title("Success rate (verified transfers / attempts)")
    ax.set_ylabel("success rate (%)")


BAD_LABEL = "errors > 0: bad messages"
DIRECTION_STYLE = {"h2g": ("tab:blue", "o", "h2g: host to guest"),
                   "g2h": ("tab:green", "s", "g2h: guest to host"),
                   "bidir": ("tab:purple", "^", "bidir: both ways, counted together")}
PERCENTILE_STYLE = (("p50_ns", "p50", "tab:blue"), ("p99_ns", "p99", "tab:orange"),
                    ("p99_9_ns", "p99.9", "tab:purple"))


def size_curve(ax, points: list[dict], key: str, scale: float = 1.0, **style) -> int:
    """Draw points' key against their message size, marking the points with
    bad messages with a red cross. A log axis cannot show 0: such values
    are left out of the line; returns how many were."""
    x = np.array([p["message_bytes"] for p in points], dtype=float)
    y = np.array([np.nan if p[key] is None else p[key] for p in points], dtype=float) / scale
    hidden = int(np.count_nonzero(~(y > 0)))
    y = np.where(y > 0, y, np.nan)
    ax.plot(x, y, ms=5, lw=1.5, **style)
    bad = [i for i, p in enumerate(points) if p["errors"] and y[i] > 0]
    if bad:
        ax.scatter(x[bad], y[bad], marker="X", s=110, color="tab:red", zorder=4,
                   label=BAD_LABEL)
    return hidden


def size_labels(sizes: list[int]) -> list[str]:
    """Tick labels of the measured sizes (ascending); a size too close to
    the last labelled one to be read beside it keeps its tick unlabelled."""
    span = math.log10(sizes[-1] / sizes[0]) if len(sizes) > 1 else 1.0
    labels, last = [], None
    for n in sizes:
        if last is not None and math.log10(n / last) < span / 14:
            labels.append("")
            continue
        labels.append(fmt_size(n))
        last = n
    return labels


def size_axes(ax, sizes, ylabel: str, title: str, hidden: int = 0) -> None:
    """Log-log axes with the measured message sizes as x ticks, and a
    legend without repeated entries."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_title(title + (f"\n({hidden} point{'s' if hidden > 1 else ''} at 0 not drawn "
                          "on this log axis)" if hidden else ""))
    if not any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()
               for line in ax.lines):
        no_data(ax, "nothing above 0 to draw on a log axis")
        return
    sizes = sorted(set(sizes))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels(size_labels(sizes), rotation=30 if len(sizes) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(sizes) == 1:
        ax.set_xlim(sizes[0] / 2, sizes[0] * 2)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("message size (bytes, log scale)")
    ax.set_ylabel(f"{ylabel} (log scale)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)


STREAM_PANELS = (("msgs_per_s", "messages/s", 1.0, "Messages per second"),
                 ("gbps", "GB/s (1e9 bytes/s)", 1.0, "Throughput"))


def plot_stream(stream: dict, title: str, partial: list[str], path: Path) -> Path:
    """msgs/s and GB/s against message size, log-log, one curve per direction."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    headline(fig, f"Stream throughput by message size: {title}", partial)
    points = stream["points"]
    for ax, (key, ylabel, scale, name) in zip(axes, STREAM_PANELS):
        hidden = 0
        for d in stream["directions"]:
            color, marker, label = DIRECTION_STYLE[d]
            hidden += size_curve(ax, [p for p in points if p["direction"] == d], key, scale,
                                 color=color, marker=marker, label=label)
        size_axes(ax, [p["message_bytes"] for p in points], ylabel,
                  f"{name} (higher is better)", hidden)
    return save(fig, path)


def plot_sizelat(sl: dict, title: str, partial: list[str], path: Path) -> Path:
    """p50, p99 and p99.9 of the round trip against message size, log-log,
    with the min-max range of each size shaded."""
    plt = pyplot()
    sizes = sl["sizes"]
    name, scale, _ = pick_unit(np.median([s["p50_ns"] for s in sizes]))
    fig, ax = plt.subplots(figsize=(11, 6), constrained_layout=True)
    headline(fig, f"Round-trip latency by message size: {title}", partial)
    x = [s["message_bytes"] for s in sizes]
    ax.fill_between(x, [s["min_ns"] / scale for s in sizes],
                    [s["max_ns"] / scale for s in sizes], color="gray", alpha=0.15,
                    lw=0, label="min - max")
    hidden = 0
    for key, label, color in PERCENTILE_STYLE:
        hidden += size_curve(ax, sizes, key, scale, color=color, marker="o", label=label)
    size_axes(ax, x, f"round trip ({name})", "Percentiles of the round trip "
              "(lower is better)", hidden)
    return save(fig, path)


SET_COLORS = ("black", "tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
              "tab:olive", "tab:cyan", "tab:gray")  # the quiet set first, in black


def panel_grid(plt, panels: int, width: float = 6.2, height: float = 4.8):
    """A figure of panels laid out three to a row; the unused ones hidden."""
    cols = 2 if panels == 4 else min(panels, 3)
    rows = math.ceil(panels / cols)
    if panels == 1:
        width, height = 9.0, 5.6  # room for a two-line title
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.6),
                             constrained_layout=True, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def positive(values) -> np.ndarray:
    """Values as floats, 0 and absent as NaN: a log axis cannot show them."""
    y = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.where(y > 0, y, np.nan)


def rate_axes(ax, rates: list[int], ylabel: str) -> None:
    """Log-log axes with the measured rates as x ticks."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.set_xticklabels([nice(r) for r in rates], rotation=30 if len(rates) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(rates) == 1:
        ax.set_xlim(rates[0] / 2, rates[0] * 2)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("offered load (messages/s, log scale)")
    ax.set_ylabel(f"{ylabel} (log scale)")


def load_curve(ax, points: list[dict], key: str, scale: float, **style) -> None:
    """key against offered rate; points not sustained drawn hollow, points
    with bad messages crossed in red."""
    x = np.array([p["offered_per_s"] for p in points], dtype=float)
    y = positive(p[key] for p in points) / scale
    line, = ax.plot(x, y, ms=6, lw=1.6, **style)
    weak = [i for i, p in enumerate(points) if not p["sustained"]]
    if weak:
        ax.plot(x[weak], y[weak], ls="none", marker=style.get("marker", "o"), ms=6,
                mfc="white", mec=line.get_color(), zorder=3)
    bad = [i for i, p in enumerate(points) if p["errors"]]
    if bad:
        ax.scatter(x[bad], y[bad], marker="X", s=110, color="tab:red", zorder=4,
                   label=BAD_LABEL)


def mark_knee(ax, knee: int, color: str, label: str) -> None:
    if knee:
        ax.axvline(knee, color=color, ls="--", lw=1, alpha=0.8, label=label)


def plot_rate_load(rt: dict, title: str, partial: list[str], path: Path) -> Path:
    """The hockey stick: p50, p99 and p99.9 against offered rate, a panel
    per interference set with its knee marked (and the quiet p99 behind the
    others), then the p99 of every set in one panel, side by side."""
    plt = pyplot()
    sets, points, rates = rt["sets"], rt["points"], rt["rates"]
    name, scale, _ = rate_unit(points)
    fig, axes = panel_grid(plt, len(sets) + (len(sets) > 1))
    headline(fig, f"Latency under load: {title}\n(hollow: not sustained; dashed: the knee, "
                  "the highest rate sustained)", partial)
    bound = [p["p99_bound_ns"] for p in points if p["p99_bound_ns"]]
    quiet = [p for p in points if p["interference"] == QUIET]
    for ax, s in zip(axes, sets):
        mine = [p for p in points if p["interference"] == s]
        if s != QUIET and quiet:
            ax.plot([p["offered_per_s"] for p in quiet],
                    positive(p["p99_ns"] for p in quiet) / scale, color="gray", lw=3,
                    alpha=0.3, label="quiet p99")
        for key, label, color in PERCENTILE_STYLE:
            load_curve(ax, mine, key, scale, color=color, marker="o", label=label)
        if bound:
            ax.axhline(max(bound) / scale, color="gray", ls=":", lw=1,
                       label=f"p99 bound {nice(max(bound) / scale)} {name}")
        knee = rt["knee_per_s"][s]
        mark_knee(ax, knee, "black", f"knee {knee:,}/s" if knee else "")
        rate_axes(ax, rates, f"latency ({name})")
        ax.set_title(f"{'quiet (no co-runner)' if s == QUIET else 'with ' + s}: "
                     + (f"knee {knee:,}/s" if knee else "no rate sustained"))
        legend(ax)
    if len(sets) > 1:
        ax = axes[-1]
        for i, s in enumerate(sets):
            color = SET_COLORS[i % len(SET_COLORS)]
            load_curve(ax, [p for p in points if p["interference"] == s], "p99_ns", scale,
                       color=color, marker="o", label=s)
            mark_knee(ax, rt["knee_per_s"][s], color, "")
        rate_axes(ax, rates, f"p99 ({name})")
        ax.set_title("p99 of each interference set, knees dashed")
        legend(ax)
    return save(fig, path)


def legend(ax) -> None:
    """A legend without repeated or empty entries."""
    handles, labels = ax.get_legend_handles_labels()
    unique = {l: h for l, h in zip(labels, handles) if l and not l.startswith("_")}
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)


NINES = (50, 90, 99, 99.9, 99.99, 99.999, 99.9999, 99.99999)  # ticks; curves start at p0


def nines_position(percentile):
    """x of a percentile on the 'nines' axis: 1 / (1 - p), so 90, 99, 99.9
    are a decade apart (HdrHistogram's percentile plots)."""
    return 1 / (1 - np.asarray(percentile, dtype=float) / 100)


def spectrum_curve(ax, h: Histogram, point: dict, scale: float, **style) -> float:
    """A point's percentile curve from its histogram, from p0 up to where
    its samples reach (1 / (1 - p) = their number), ending at the max.
    Returns the rightmost x drawn."""
    x = np.geomspace(1, max(h.total, 2), 240)
    ps = 100 * (1 - 1 / x)
    y = hist_percentiles(h, point["min_ns"], point["max_ns"], ps)
    x = np.append(x, x[-1])
    y = np.append(y, point["max_ns"])
    ax.plot(x, positive(y) / scale, lw=1.6, **style)
    return float(x[-1])


def nines_axes(ax, reach: float, ylabel: str, log: bool) -> None:
    ticks = [p for p in NINES if nines_position(p) <= max(reach, 10) * 1.0001]
    ax.set_xscale("log")
    ax.set_xticks(nines_position(ticks))
    ax.set_xticklabels([f"{p:g}%" for p in ticks])
    ax.minorticks_off()
    ax.set_xlim(1, max(reach, 10) * 1.3)
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
        comma_ticks(ax.yaxis)
    ax.set_xlabel("percentile (log scale of 1 / (1 - p): each nine a decade)")
    ax.set_ylabel(f"{ylabel}{' (log scale)' if log else ''}")


def plot_rate_spectrum(rt: dict, hists: dict, title: str, partial: list[str],
                       path: Path) -> Path:
    """The percentile spectrum (p0 to the max, each nine a decade) of each
    rate point from its histogram: the quiet points of every rate in one
    panel, then (with co-runners) a panel per rate with the quiet curve and
    each interference set's side by side."""
    plt = pyplot()
    points = [p for p in rt["points"] if p["spectrum"]]
    rates = sorted({p["offered_per_s"] for p in points})
    loaded = len(rt["sets"]) > 1
    overview = len(rates) > 1 or not loaded
    name, scale, _ = rate_unit(points)
    # A log latency axis when the tail reaches far above the median; not
    # for the min, which the first messages of an open loop make tiny.
    medians = [p["spectrum"]["p50_ns"] for p in points if p["spectrum"]["p50_ns"] > 0]
    log = bool(medians) and max(p["max_ns"] for p in points) / min(medians) > 20
    fig, axes = panel_grid(plt, overview + (len(rates) if loaded else 0))
    headline(fig, f"Latency percentile spectrum under load: {title}", partial)
    panels = iter(axes)
    if overview:
        ax = next(panels)
        quiet = [p for p in points if p["interference"] == QUIET] or points
        cmap = plt.get_cmap("viridis")
        reach = 1.0
        for i, p in enumerate(quiet):
            color = cmap(i / max(len(quiet) - 1, 1) * 0.9)
            reach = max(reach, spectrum_curve(ax, hists[p["point"]], p, scale, color=color,
                                              label=f"{p['offered_per_s']:,}/s"))
        nines_axes(ax, reach, f"latency ({name})", log)
        ax.set_title("quiet points, one curve per offered rate"
                     if quiet[0]["interference"] == QUIET else "every point")
        legend(ax)
    if loaded:
        for rate in rates:
            ax = next(panels)
            reach = 1.0
            for i, s in enumerate(rt["sets"]):
                p = next((p for p in points if p["offered_per_s"] == rate
                          and p["interference"] == s), None)
                if p is not None:
                    reach = max(reach, spectrum_curve(ax, hists[p["point"]], p, scale,
                                                      color=SET_COLORS[i % len(SET_COLORS)],
                                                      label=s))
            nines_axes(ax, reach, f"latency ({name})", log)
            ax.set_title(f"{rate:,} messages/s offered: quiet and with co-runners")
            legend(ax)
    return save(fig, path)


def write_plots(run: Run, summary: dict, out: Path) -> list[Path]:
    title, partial = summary["label"], run.partial
    written = []
    if run.latency is not None:
        lat = LatencySeries.of(run.latency)
        for name, plot in (("latency_histogram.png", plot_latency_histogram),
                           ("latency_over_time.png", plot_latency_over_time),
                           ("latency_percentiles.png", plot_latency_percentiles)):
            written.append(plot(lat, title, partial, out / name))
    if run.bandwidth is not None:
        written.append(plot_bandwidth(run.bandwidth, summary["bandwidth"], title, partial,
                                      out / "bandwidth_analysis.png"))
    if summary["stream"]:
        written.append(plot_stream(summary["stream"], title, partial,
                                   out / "stream_throughput.png"))
    if summary["size_latency"]:
        written.append(plot_sizelat(summary["size_latency"], title, partial,
                                    out / "size_latency.png"))
    if summary["rate"]:
        written.append(plot_rate_load(summary["rate"], title, partial,
                                      out / "rate_latency_vs_load.png"))
        if any(p["spectrum"] for p in summary["rate"]["points"]):
            written.append(plot_rate_spectrum(summary["rate"], run.rate_hist, title, partial,
                                              out / "rate_percentile_spectrum.png"))
    return written


# --------------------------------------------------------------------------
# Comparison of several runs
# --------------------------------------------------------------------------


def unique_labels(runs: list[Run]) -> list[str]:
    """Short labels, with the directory added where two runs would clash."""
    labels = [short_label(r) for r in runs]
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = f"{label} ({runs[i].directory})"
    return labels


def comparison_metrics(summaries: list[dict]) -> list[dict]:
    """Rows of the comparison: name, unit, better, values per run (None if absent)."""
    metrics = []

    def add(name, unit, better, values, rows=None):
        """rows: the stream point or size of each value, whose errors mark
        the value as one of bad messages."""
        if any(v is not None for v in values):
            metrics.append({"metric": name, "unit": unit, "better": better,
                            "values": [clean(v) for v in values]})
            if rows is not None:
                metrics[-1]["bad"] = [bool(r and r["errors"]) for r in rows]

    def lat(s, part, key):
        section = (s["latency"] or {}).get(part)
        return section[key] if section else None

    for part, prefix in (("round_trip", "latency"), ("received", "first ack")):
        for label, key in (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"),
                           ("p99.9", "p99_9_ns"), ("mean", "mean_ns"), ("min", "min_ns")):
            add(f"{prefix} {label}", "ns", "lower", [lat(s, part, key) for s in summaries])

    frames = {}
    for s in summaries:
        for f in (s["bandwidth"] or {"frames": []})["frames"]:
            frames.setdefault(f["frame"], f["bytes"])
    for frame in sorted(frames, key=lambda f: (frames[f], f)):
        per = [next((f for f in (s["bandwidth"] or {"frames": []})["frames"]
                     if f["frame"] == frame), None) for s in summaries]
        add(f"bandwidth {frame} mean", "GB/s", "higher",
            [f["bandwidth_gbps"]["mean"] if f else None for f in per])
        add(f"host copy {frame} mean", "GB/s", "higher",
            [f["transfer_gbps"]["mean"] if f and f["transfer_gbps"] else None for f in per])
        add(f"duration {frame} mean", "ns", "lower",
            [f["duration_ns"]["mean"] if f else None for f in per])
        add(f"success {frame}", "%", "higher",
            [100 * f["success_rate"] if f else None for f in per])

    def overall(s, key):
        o = (s["bandwidth"] or {}).get("overall")
        if not o or o.get(key) is None:
            return None
        return o[key]["value"] if isinstance(o[key], dict) else o[key]

    add("bandwidth peak", "GB/s", "higher", [overall(s, "peak_gbps") for s in summaries])
    add("bandwidth average", "GB/s", "higher", [overall(s, "average_gbps") for s in summaries])

    streams = [keyed((s["stream"] or {"points": []})["points"],
                     lambda p: (STREAM_DIRECTIONS.index(p["direction"]), p["message_bytes"]))
               for s in summaries]
    for key in sorted(set().union(*streams)):
        (direction, size), repeat = key
        name = f"stream {STREAM_DIRECTIONS[direction]} {fmt_size(size)}" \
            + (f" (repeat {repeat + 1})" if repeat else "")
        per = [points.get(key) for points in streams]
        for label, column, unit, better in STREAM_METRICS:
            add(f"{name} {label}", unit, better, [p[column] if p else None for p in per],
                per)

    sizelats = [keyed((s["size_latency"] or {"sizes": []})["sizes"],
                      lambda row: row["message_bytes"]) for s in summaries]
    for key in sorted(set().union(*sizelats)):
        size, repeat = key
        name = f"size latency {fmt_size(size)}" + (f" (repeat {repeat + 1})" if repeat else "")
        per = [rows.get(key) for rows in sizelats]
        for column, label, _ in PERCENTILE_STYLE:
            add(f"{name} {label}", "ns", "lower", [r[column] if r else None for r in per],
                per)
    rate_metrics(summaries, add)
    for m in metrics:
        base = m["values"][0]
        m["ratios"] = [None if v is None or not base else v / base for v in m["values"]]
    return metrics


def rate_metrics(summaries: list[dict], add) -> None:
    """The comparison's rows of the rate points (per interference set, then
    rate: p50, p99, p99.9 and achieved) and of each set's knee."""
    rates = [keyed((s["rate"] or {"points": []})["points"],
                   lambda p: (p["interference"] != QUIET, p["interference"], p["offered_per_s"]))
             for s in summaries]
    for key in sorted(set().union(*rates)):
        (_, interference, offered), repeat = key
        name = "rate " + point_name(interference, offered) \
            + (f" (repeat {repeat + 1})" if repeat else "")
        per = [points.get(key) for points in rates]
        for column, label, _ in PERCENTILE_STYLE:
            add(f"{name} {label}", "ns", "lower", [p[column] if p else None for p in per], per)
        add(f"{name} achieved", "msgs/s", "higher",
            [p["achieved_per_s"] if p else None for p in per], per)
    sets = sorted({n for s in summaries for n in (s["rate"] or {"sets": []})["sets"]},
                  key=lambda n: (n != QUIET, n))
    for name in sets:
        add(f"rate knee {name}", "msgs/s", "higher",
            [(s["rate"] or {"knee_per_s": {}})["knee_per_s"].get(name) for s in summaries])


STREAM_METRICS = (("msgs/s", "msgs_per_s", "msgs/s", "higher"),
                  ("GB/s", "gbps", "GB/s", "higher"),
                  ("host CPU", "host_cpu_us_per_msg", "us/msg", "lower"),
                  ("guest CPU", "guest_cpu_us_per_msg", "us/msg", "lower"))


def keyed(rows: list[dict], key) -> dict:
    """Rows by (key, repeat): the first row of a key is repeat 0, a second
    one (a size measured twice) repeat 1, so no row hides another."""
    out, seen = {}, {}
    for row in rows:
        k = key(row)
        seen[k] = seen.get(k, -1) + 1
        out[(k, seen[k])] = row
    return out


def row_time_unit(m: dict) -> tuple[str, float, int]:
    """A size-latency or rate row's unit, from its smallest value (which
    stays exact)."""
    return pick_unit(min(v for v in m["values"] if v is not None))


def comparison_unit(metrics: list[dict]) -> tuple[str, float, int]:
    """One latency unit for the whole table, from the largest median."""
    medians = [v for m in metrics if m["metric"] == "latency p50" for v in m["values"]
               if v is not None]
    return pick_unit(max(medians)) if medians else pick_unit(0)


def format_metric(m: dict, value, lat_unit) -> str:
    if value is None:
        return "-"
    if m["metric"].startswith("duration"):
        return f"{value / 1e6:,.3f}"
    if m["metric"].startswith("size latency") or (m["metric"].startswith("rate ")
                                                   and m["unit"] == "ns"):
        return fmt_time(value, row_time_unit(m))
    if m["metric"].startswith(("stream ", "rate ")):
        return fmt_sig(value)
    if m["unit"] == "ns":
        return fmt_time(value, lat_unit)
    if m["unit"] == "%":
        return f"{value:.1f}"
    return f"{value:.3f}"


def metric_unit(m: dict, lat_unit) -> str:
    if m["metric"].startswith("duration"):
        return "ms"
    if m["metric"].startswith(("size latency", "rate ")) and m["unit"] == "ns":
        return row_time_unit(m)[0]
    return lat_unit[0] if m["unit"] == "ns" else m["unit"]


def ratio_text(r: float) -> str:
    """x2.00, or for a ratio too small for two decimals x0.00016."""
    return f"x{r:.2f}" if r >= 0.01 or r == 0 else f"x{r:.2g}"


def render_comparison(labels: list[str], runs: list[Run], summaries: list[dict],
                      metrics: list[dict]) -> str:
    lat_unit = comparison_unit(metrics)
    lines = ["ivshmem-bench comparison", "========================",
             f"Ratios are against the first run ({labels[0]}): value / first value.", ""]
    lines += [f"  [{i + 1}] {label}: {r.directory}" for i, (label, r) in
              enumerate(zip(labels, runs))]
    for i, r in enumerate(runs):
        if r.partial:
            lines.append(f"  *** [{i + 1}] is PARTIAL: " + "; ".join(r.partial))
    for i, s in enumerate(summaries):
        if s["bad_messages"]:
            lines.append(f"  *** [{i + 1}] has BAD MESSAGES (errors > 0; marked BAD below): "
                         + "; ".join(f"{b['file']} line {b['line']}: {b['point']} "
                                     f"({b['errors']:,})" for b in s["bad_messages"]))
    lines.append("")
    rows = [["metric", "unit", "better"] + [f"[{i + 1}] {l}" for i, l in enumerate(labels)]]
    for m in metrics:
        cells = [m["metric"], metric_unit(m, lat_unit), m["better"]]
        for i, (v, r) in enumerate(zip(m["values"], m["ratios"])):
            text = format_metric(m, v, lat_unit)
            if i and r is not None:
                text += f" ({ratio_text(r)})"
            if m.get("bad", [False] * len(labels))[i]:
                text += " BAD"
            cells.append(text)
        rows.append(cells)
    lines += table(rows, "lll")
    lines += ["", PERCENTILE_NOTE]
    return "\n".join(lines) + "\n"


def plot_comparison(labels: list[str], runs: list[Run], metrics: list[dict],
                    path: Path) -> Path:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    headline(fig, "Comparison (ratios against [1] " + labels[0] + ")",
             [f"[{i + 1}] {'; '.join(r.partial)}" for i, r in enumerate(runs) if r.partial])
    lat = [m for m in metrics if m["metric"] in
           ("latency p50", "latency p90", "latency p99", "latency p99.9")]
    bw = [m for m in metrics if m["metric"].startswith("bandwidth ")
          and m["metric"].endswith(" mean")]
    if lat:
        unit = comparison_unit(metrics)
        grouped_bars(ax1, [m["metric"].removeprefix("latency ") for m in lat], lat,
                     labels, scale=unit[1])
        values = [v for m in lat for v in m["values"] if v]
        if values and max(values) / min(values) > 20:
            ax1.set_yscale("log")
            plain_log_ticks(ax1.yaxis)
        ax1.set_ylabel(f"round-trip latency ({unit[0]}"
                       f"{', log scale' if ax1.get_yscale() == 'log' else ''})")
        ax1.set_title("Latency percentiles (lower is better)")
    else:
        ax1.set_title("Latency")
        no_data(ax1, "no latency results")
    if bw:
        grouped_bars(ax2, [m["metric"].split()[1] for m in bw], bw, labels, scale=1.0)
        ax2.set_ylabel("bandwidth (GB/s)")
        ax2.set_title("Bandwidth per frame size, mean (higher is better)")
    else:
        ax2.set_title("Bandwidth")
        no_data(ax2, "no successful transfers")
    return save(fig, path)


def grouped_bars(ax, groups: list[str], metrics: list[dict], labels: list[str],
                 scale: float) -> None:
    """One group of bars per metric, one bar per run, ratios written on top."""
    n = len(labels)
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, label in enumerate(labels):
        vals = np.array([(m["values"][i] or 0) / scale for m in metrics])
        bars = ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=f"[{i + 1}] {label}")
        if i == 0 or n > 5:
            continue
        for b, m in zip(bars, metrics):
            r = m["ratios"][i]
            if r is not None:
                ax.annotate(ratio_text(r), (b.get_x() + b.get_width() / 2, b.get_height()),
                            textcoords="offset points", xytext=(0, 2), ha="center",
                            fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.margins(y=0.12)
    ax.legend(loc="upper left", fontsize=8)


RUN_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
              "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def run_style(i: int) -> dict:
    """Colour and marker of the i-th run in the overlays (the colours cycle
    past nine runs; the markers keep them apart)."""
    return {"color": RUN_COLORS[i % len(RUN_COLORS)], "marker": "osD^v<>ph"[i % 9]}


def compare_headline(fig, text: str, runs: list[Run]) -> None:
    headline(fig, text, [f"[{i + 1}] {'; '.join(r.partial)}"
                         for i, r in enumerate(runs) if r.partial])


def plot_compare_stream(labels: list[str], runs: list[Run], summaries: list[dict],
                        path: Path) -> Path:
    """Each run's throughput curves over the others': a row of panels per
    direction (msgs/s, GB/s), a colour per run."""
    plt = pyplot()
    directions = [d for d in STREAM_DIRECTIONS
                  if any(s["stream"] and d in s["stream"]["directions"] for s in summaries)]
    fig, axes = plt.subplots(len(directions), 2, figsize=(14, 4.6 * len(directions)),
                             constrained_layout=True, squeeze=False)
    compare_headline(fig, "Stream throughput by message size, runs overlaid", runs)
    for row, d in zip(axes, directions):
        for ax, (key, ylabel, scale, name) in zip(row, STREAM_PANELS):
            hidden, sizes = 0, []
            for i, (label, s) in enumerate(zip(labels, summaries)):
                points = [p for p in (s["stream"] or {"points": []})["points"]
                          if p["direction"] == d]
                if points:
                    hidden += size_curve(ax, points, key, scale, label=f"[{i + 1}] {label}",
                                         **run_style(i))
                    sizes += [p["message_bytes"] for p in points]
            size_axes(ax, sizes, ylabel, f"{DIRECTION_STYLE[d][2]}: {name.lower()}", hidden)
    return save(fig, path)


def plot_compare_sizelat(labels: list[str], runs: list[Run], summaries: list[dict],
                         path: Path) -> Path:
    """Each run's round trip by message size over the others': a panel per
    percentile (p50, p99, p99.9), a colour per run."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(17, 6), constrained_layout=True)
    compare_headline(fig, "Round-trip latency by message size, runs overlaid", runs)
    tables = [(s["size_latency"] or {"sizes": []})["sizes"] for s in summaries]
    name, scale, _ = pick_unit(np.median([r["p50_ns"] for t in tables for r in t]))
    for ax, (key, percentile, _) in zip(axes, PERCENTILE_STYLE):
        hidden = 0
        for i, (label, rows) in enumerate(zip(labels, tables)):
            if rows:
                hidden += size_curve(ax, rows, key, scale, label=f"[{i + 1}] {label}",
                                     **run_style(i))
        size_axes(ax, [r["message_bytes"] for t in tables for r in t],
                  f"round trip ({name})", f"{percentile} (lower is better)", hidden)
    return save(fig, path)


SET_LINES = ("-", "--", ":", "-.")  # line style of each interference set, quiet first


def plot_compare_rate(labels: list[str], runs: list[Run], summaries: list[dict],
                      path: Path) -> Path:
    """Each run's latency-vs-load curves over the others': a panel per
    percentile (p50, p99, p99.9), a colour per run, a line style per
    interference set, each run's quiet knee dashed in its colour."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.4), constrained_layout=True)
    compare_headline(fig, "Latency under load, runs overlaid (hollow: not sustained; "
                          "vertical: each run's quiet knee)", runs)
    tables = [(s["rate"] or {"points": [], "sets": []}) for s in summaries]
    name, scale, _ = rate_unit([p for t in tables for p in t["points"]])
    rates = sorted({p["offered_per_s"] for t in tables for p in t["points"]})
    for ax, (key, percentile, _) in zip(axes, PERCENTILE_STYLE):
        for i, (label, t) in enumerate(zip(labels, tables)):
            style = run_style(i)
            for j, s in enumerate(t["sets"]):
                mine = [p for p in t["points"] if p["interference"] == s]
                load_curve(ax, mine, key, scale, ls=SET_LINES[j % len(SET_LINES)],
                           label=f"[{i + 1}] {label}" + ("" if s == QUIET else f", {s}"),
                           **style)
            if t["points"]:
                mark_knee(ax, t["knee_per_s"].get(QUIET, 0), style["color"], "")
        rate_axes(ax, rates, f"{percentile} ({name})")
        ax.set_title(f"{percentile} against offered load (lower is better)")
        legend(ax)
    return save(fig, path)


def compare(dirs: list[Path], out: Path, plots: bool, allow_partial: bool, say,
            warn) -> int:
    runs = [load_run(d, warn, allow_partial) for d in dirs]
    summaries = [summarize(r) for r in runs]
    labels = unique_labels(runs)
    metrics = comparison_metrics(summaries)
    text = render_comparison(labels, runs, summaries, metrics)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_text(out / "comparison.txt", text)]
    payload = {
        "tool": PROG,
        "baseline": labels[0],
        "ratio": "value / value of the first run",
        "latency_unit": "ns",
        "duration_unit": "ns",
        "partial": any(r.partial for r in runs),
        "runs": [{"label": l, "results_dir": str(r.directory), "run": r.info,
                  "run_id": r.run_id, "status": r.status, "partial": bool(r.partial),
                  "partial_reasons": r.partial, "notes": r.notes}
                 for l, r in zip(labels, runs)],
        "metrics": metrics,
        "summaries": summaries,
    }
    written.append(write_json(out / "comparison.json", payload))
    if plots:
        if any(s["latency"] or s["bandwidth"] for s in summaries):
            written.append(plot_comparison(labels, runs, metrics, out / "comparison.png"))
        if any(s["stream"] for s in summaries):
            written.append(plot_compare_stream(labels, runs, summaries,
                                               out / "comparison_stream.png"))
        if any(s["size_latency"] for s in summaries):
            written.append(plot_compare_sizelat(labels, runs, summaries,
                                                out / "comparison_size_latency.png"))
        if any(s["rate"] for s in summaries):
            written.append(plot_compare_rate(labels, runs, summaries,
                                             out / "comparison_rate.png"))
    say(text)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_bad_data(runs, summaries)


# --------------------------------------------------------------------------
# Writing and the command line
# --------------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    """Write through a temporary file renamed into place: an interrupted
    analysis leaves the previous file, never half of a new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def finite(payload):
    """The payload with numpy scalars made Python and every NaN or infinity
    made None: strict JSON, whatever the numbers (NaN means 'absent' here)."""
    if isinstance(payload, dict):
        return {k: finite(v) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [finite(v) for v in payload]
    return clean(payload)


def write_json(path: Path, payload) -> Path:
    return write_text(path, json.dumps(finite(payload), indent=2, allow_nan=False,
                                       default=clean) + "\n")


def check_bad_data(runs: list[Run], summaries: list[dict]) -> int:
    """Exit 1 (after the outputs are written) when every frame transfer
    failed, or when messages failed their check (errors > 0) in a stream
    point, a message size or a rate point: one line per file on stderr."""
    status = EXIT_OK
    for run, s in zip(runs, summaries):
        for name, rows, what, prefix in (
                (STREAM_CSV, (s["stream"] or {"points": []})["points"], "points", ""),
                (SIZELAT_CSV, (s["size_latency"] or {"sizes": []})["sizes"], "message sizes",
                 "size latency "),
                (RATE_CSV, (s["rate"] or {"points": []})["points"], "rate points", "rate ")):
            bad = [b for b in s["bad_messages"] if b["file"] == name]
            if not bad:
                continue
            where = ", ".join(f"{b['point'].removeprefix(prefix)} "
                              f"(line {b['line']}, {b['errors']:,})" for b in bad[:3])
            sys.stderr.write(
                f"{PROG}: {run.directory / name}: bad messages (errors > 0) in "
                f"{len(bad)} of {len(rows)} {what}: {where}{', ...' if len(bad) > 3 else ''}; "
                "flagged in the report\n")
            status = EXIT_BAD_DATA
    for run, s in zip(runs, summaries):
        o = (s["bandwidth"] or {}).get("overall")
        if o and o["successful"] == 0:
            sys.stderr.write(
                f"{PROG}: {run.directory / BANDWIDTH_CSV}: every frame transfer failed "
                f"(0/{o['total']} successful), no bandwidth to show\n"
            )
            status = EXIT_BAD_DATA
    return status


def analyze(directory: Path, out: Path, plots: bool, allow_partial: bool, say,
            warn) -> int:
    run = load_run(directory, warn, allow_partial)
    summary = summarize(run)
    out.mkdir(parents=True, exist_ok=True)
    report = render_report(summary)
    written = [write_text(out / "performance_report.txt", report),
               write_json(out / "summary.json", summary)]
    if plots:
        written += write_plots(run, summary, out)
    say(report)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_bad_data([run], [summary])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Statistics, plots and a report from ivshmem-bench results\n"
            "(latency_results.csv, bandwidth_results.csv, stream_results.csv,\n"
            "size_latency_results.csv, rate_results.csv with rate_histograms.csv:\n"
            "any of them; optional run.json)."
        ),
        epilog=(
            "examples:\n"
            "  analyze_results.py                    analyse results/, write into results/\n"
            "  analyze_results.py runs/kvm --output /tmp/report\n"
            "  analyze_results.py --compare runs/plain runs/doorbell\n"
            "  analyze_results.py runs/plain runs/doorbell   (same: several dirs compare)\n"
            "\n"
            "One directory: performance_report.txt, summary.json and the PNG plots are\n"
            "written into --output (default: the results directory itself).\n"
            "Several directories (or --compare): comparison.txt, comparison.json and\n"
            "comparison.png (latency, frames), ratios against the first directory,\n"
            "written into --output (default: the current directory); the input\n"
            "directories are not written. Stream, size-latency and rate results are\n"
            "overlaid in comparison_stream.png, comparison_size_latency.png and\n"
            "comparison_rate.png (latency against offered load), e.g.\n"
            "  analyze_results.py --compare results/bench/host results/bench/plain\n"
            "\n"
            "Partial results are refused (exit 3): run.json's status is not\n"
            "\"complete\", a CSV is not in run.json's \"files\" (another run wrote it)\n"
            "or has fewer rows than listed, or its last row was cut short by a\n"
            "killed writer. --allow-partial analyses what there is of the run and\n"
            "marks every output PARTIAL, with the reasons.\n"
            "\n"
            "exit status:\n"
            "  0  ok (with --allow-partial: also partial results, marked PARTIAL)\n"
            "  1  bad or unusable data: one line naming the file and the problem\n"
            "     (also, after the report: every frame transfer failed, or messages\n"
            "     failed their check: errors > 0 in a stream point, message size or\n"
            "     rate point)\n"
            "  2  usage error\n"
            "  3  partial or mixed results, refused without --allow-partial"
        ),
    )
    parser.add_argument("dirs", nargs="*", metavar="DIR",
                        help="results directory; several directories are compared "
                             "(default: results/)")
    parser.add_argument("--results", metavar="DIR", type=Path,
                        help="results directory to analyse (default: results/)")
    parser.add_argument("--compare", nargs="+", metavar="DIR", type=Path,
                        help="compare these results directories (at least two); "
                             "the first is the baseline for the ratios")
    parser.add_argument("--output", "-o", metavar="DIR", type=Path,
                        help="where to write (default: the results directory; "
                             "for a comparison, the current directory)")
    parser.add_argument("--allow-partial", action="store_true",
                        help="analyse partial or mixed results (a run that did not "
                             "complete, files of another run left out) and mark every "
                             "output PARTIAL, instead of refusing with exit 3")
    parser.add_argument("--no-plots", action="store_true",
                        help="write the report and JSON only, no PNG files")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="do not print the report, only errors")
    return parser


def choose_dirs(args) -> list[Path]:
    """The directories to read, from --results, --compare or the positionals."""
    given = [bool(args.results), bool(args.compare), bool(args.dirs)]
    if sum(given) > 1:
        raise UsageError("give the directories one way: --results, --compare or "
                         "positional DIRs")
    if args.compare is not None:
        if len(args.compare) < 2:
            raise UsageError("--compare needs at least two directories")
        return args.compare
    if args.results:
        return [args.results]
    if args.dirs:
        return [Path(d) for d in args.dirs]
    return [Path("results")]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        dirs = choose_dirs(args)
    except UsageError as e:
        parser.error(str(e))
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")

    def say(text: str) -> None:
        if not args.quiet:
            print(text.rstrip("\n"))

    def warn(text: str) -> None:
        sys.stderr.write(f"{PROG}: warning: {text}\n")

    try:
        # Every numpy floating-point error (overflow, an invalid cast such as
        # 2^63 to int64, a division by zero) and every RuntimeWarning raises:
        # the input checks are meant to leave none, and one that slips past
        # them stops the analysis with one line instead of a wrong figure.
        # (Underflow is left alone: a tiny value rounded towards 0 is no
        # wrong count, and plots meet it in their own arithmetic.)
        with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            if len(dirs) > 1:
                return compare(dirs, args.output or Path("."), not args.no_plots,
                               args.allow_partial, say, warn)
            return analyze(dirs[0], args.output or dirs[0], not args.no_plots,
                           args.allow_partial, say, warn)
    except (ArithmeticError, RuntimeWarning) as e:
        sys.stderr.write(f"{PROG}: {', '.join(map(str, dirs))}: stopped on a numeric error "
                         f"({e}): a value the input checks let through; please report it "
                         "with the results\n")
        return EXIT_BAD_DATA
    except DataError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return EXIT_BAD_DATA
    except PartialError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return EXIT_PARTIAL
    except MemoryError:
        sys.stderr.write(f"{PROG}: out of memory reading {', '.join(map(str, dirs))}\n")
        return EXIT_BAD_DATA
    except OSError as e:  # e.g. the output directory cannot be written
        name = e.filename or ""
        sys.stderr.write(f"{PROG}: {name}: {e.strerror or e}\n")
        return EXIT_BAD_DATA


if __name__ == "__main__":
    sys.exit(main())
