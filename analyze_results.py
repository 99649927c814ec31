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
versions, pinning, its status and the rows it wrote). transport_bench's
transport_results.csv (the other channels: pipe, UNIX socket, TCP, virtio
serial, vsock) is read from transports/ with its own run.json, and set
beside ivshmem's rows of the same run. This script reads them and writes,
into the output directory:

    report.html              one self-contained page: the headline figures,
                             warnings, provenance, then each result's tables
                             and plots (inline SVG), no network, no script
    performance_report.txt   everything as text (also printed)
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
    transport_latency.png, transport_throughput.png
                             round trip and throughput against message size,
                             one curve per transport, ivshmem in black

The directory of `make bench` (results/bench, its runs in subdirectories)
gets report.html, summary.json and plots of the whole bench: each
configuration's round trip beside the limits measured in the same run, with
its ratio to its limit.

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
side by side instead: comparison.txt, comparison.json, report.html and
comparison.png, with every figure also given as a ratio against the first
directory; runs with stream or size-latency results get comparison_stream.png
and comparison_size_latency.png, their curves overlaid (e.g. host-only and
VM); runs with rate results get comparison_rate.png, their latency-vs-load
curves overlaid, and the table compares each rate point and each set's knee.

A directory of repetitions merged by `python3 -m analysis.repeat merge`
(run_test.sh --repeat: each CSV with a first column `repetition`, run.json
with a "repetitions" object) is analysed repetition by repetition: each
headline figure (latency p50/p99/p99.9, stream msgs/s and GB/s, size
latency p50, rate knees, frame bandwidth, other transports' p50 and GB/s)
with its value in each repetition, the median, the IQR and the exact
order-statistic interval for the median (summary.json's "figures": median,
iqr, ci_low, ci_high, ci_level, repetitions), flagged UNSTABLE when the
repetitions vary by more than 10 % (coefficient of variation), a repetition
flagged BUSY when its host was loaded (see analysis/repeated.py); the
report shows median [low, high]. Comparing such runs adds verdicts: each
headline figure's ratio of medians with a bootstrap interval, "faster",
"slower" or "no difference detected" (analysis/compare.py). A CSV without
the column is a single run, analysed as it always was.

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
the kinds' Schemas): nothing negative, integers (counts, sizes, rates) at
most 2^53 - 1 so that they stay exact as doubles and never wrap as int64
(tighter where an option sets the limit: a message at most 64 MiB, a rate at
most 100M/s), everything finite; and each row's figures must agree with one
another as host_writer computes them (stream: bytes = messages x
message_bytes, msgs_per_s = messages / seconds, gbps = bytes / seconds;
frames and rate points likewise), or the row is refused, never plotted. Any
numpy floating-point error or RuntimeWarning behind these checks stops the
analysis with one line (exit 1) instead of passing silently.

This file is the command line only. The analysis is the package analysis/
beside it: the shared parts once (tables.py: reading and checking CSVs;
runinfo.py: run.json; units.py; plots.py; page.py: the HTML page; run.py,
report.py, compare.py, bench.py: one run, a comparison, a bench) and one
module per result kind in analysis/kinds/, listed in its __init__.py.

Exit status: 0 success, 1 bad or unusable data (one line on stderr naming
the file and the problem, for a bad value also its line, column and the
range accepted; also, after the outputs are written, a run whose every
frame transfer failed or whose messages failed their check), 2 bad
command-line usage, 3 partial or mixed results refused (see --allow-partial).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import warnings
from pathlib import Path

PROG = "analyze_results.py"
EXIT_BAD_DATA = 1

try:
    import numpy as np
    import pandas  # noqa: F401 -- looked for here, used by the package

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

# The package beside this file, whatever the current directory, the way the
# script is started (uv run, a symlink) or python's -I.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis.bench import bench, is_bench  # noqa: E402
from analysis.compare import compare  # noqa: E402
from analysis.errors import EXIT_PARTIAL, DataError, PartialError, UsageError  # noqa: E402
from analysis.repeated import analyze_repeated, is_repeated  # noqa: E402
from analysis.report import analyze  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Statistics, plots and a report from ivshmem-bench results\n"
            "(latency_results.csv, bandwidth_results.csv, stream_results.csv,\n"
            "size_latency_results.csv, rate_results.csv with rate_histograms.csv,\n"
            "transport_results.csv here or in transports/: any of them; optional\n"
            "run.json)."
        ),
        epilog=(
            "examples:\n"
            "  analyze_results.py                    analyse results/, write into results/\n"
            "  analyze_results.py runs/kvm --output /tmp/report\n"
            "  analyze_results.py --compare runs/plain runs/doorbell\n"
            "  analyze_results.py runs/plain runs/doorbell   (same: several dirs compare)\n"
            "\n"
            "One directory: report.html (one self-contained page: figures, tables and\n"
            "plots), performance_report.txt, summary.json and the PNG plots are\n"
            "written into --output (default: the results directory itself).\n"
            "Several directories (or --compare): report.html, comparison.txt,\n"
            "comparison.json and comparison.png (latency, frames), ratios against the\n"
            "first directory, written into --output (default: the current directory);\n"
            "the input directories are not written. Stream, size-latency and rate\n"
            "results are overlaid in comparison_stream.png,\n"
            "comparison_size_latency.png and comparison_rate.png, e.g.\n"
            "  analyze_results.py --compare results/bench/host results/bench/plain\n"
            "The directory of `make bench` (results/bench, whose subdirectories are\n"
            "its runs): report.html and summary.json of the whole bench, each\n"
            "configuration beside the limits measured in the same run.\n"
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
            "     failed their check: errors > 0 in a stream point, message size,\n"
            "     rate point or transport's row)\n"
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
                        help="write the reports (report.html without plots) and JSON "
                             "only, no PNG files")
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
            if is_repeated(dirs[0]):
                return analyze_repeated(dirs[0], args.output or dirs[0], not args.no_plots,
                                        args.allow_partial, say, warn)
            if is_bench(dirs[0]):
                return bench(dirs[0], args.output or dirs[0], not args.no_plots,
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
