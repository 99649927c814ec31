"""
tables - reading a results CSV and checking every cell against its schema.

Every results file is read the same way: as bytes first (a regular file, no
NUL, UTF-8, no line over 64 KiB), its header checked against the Schema's
columns, then its rows through pandas' C parser (what host_writer writes) or,
for quoted fields and blank lines, the csv module, which also names the exact
line of a value the fast path could not read. Each cell is then held to its
Column: numeric, finite, within the range the writer can produce. A kind's
module adds the checks of its own rows (figures that must agree with one
another) with first_bad() and impossible(), which name the file, the line,
the column and the value in one line (DataError).

The limits below are what the C side can write; the kinds spell their
Schemas with them (analysis/kinds/*.py), and tests compare the schemas with
`host_writer --schema` and with what transport_bench writes.
"""

from __future__ import annotations

import csv
import io
import math
import re
import stat
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import DataError

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
    """One results file as its writer writes it. The column lists are
    spelled once, in the writer's order, and tests compare them with
    `host_writer --schema` (or the writer's own header), so the two cannot
    drift apart."""

    workload: str                 # the writer's name for it (host_writer --test NAME)
    file: str                     # the file in the results directory
    columns: dict[str, Column]    # every column the writer writes, in order
    program: str = "host_writer"  # the program that writes it


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
# What the kinds' loaders share
# --------------------------------------------------------------------------


@dataclass
class Loaded:
    """One results CSV: its rows as a DataFrame (None without data rows)."""

    path: Path
    frame: pd.DataFrame | None
    rows: int
    cut: str | None


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


def row_frame(table: Table) -> pd.DataFrame:
    """The table's columns as a DataFrame, with the line each row came from
    (the report names it next to a bad row)."""
    df = pd.DataFrame(dict(table.columns))
    df["line"] = table.lines if table.lines is not None else np.arange(table.rows) + 2
    return df


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
