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
in a results directory: latency_results.csv with one row per measured round
trip, bandwidth_results.csv with one row per frame transfer, and optionally
run.json describing the run (mode, accel, guest, versions, pinning...). This
script reads them and writes, into the output directory:

    performance_report.txt   everything below as text (also printed)
    summary.json             the same figures, machine-readable (times in ns)
    latency_histogram.png    latency distribution, linear and log scales
    latency_over_time.png    latency of each round trip in measurement order
    latency_percentiles.png  percentile curve with p50/p90/p99/p99.9 marked
    bandwidth_analysis.png   distribution, scaling, duration, success rate

Only the parts with data are produced: a run with only latency (or only
bandwidth) results gets those parts and a note saying what was missing.

With --compare DIR1 DIR2 ... (or simply several directories) the runs are put
side by side instead: comparison.txt, comparison.json and comparison.png,
with every figure also given as a ratio against the first directory.

Percentiles use linear interpolation between order statistics (numpy's
default method, Hyndman & Fan type 7), the same definition as the C harness,
so p50/p99 here agree with what host_writer prints.

Run it with any of:

    uv run analyze_results.py                # dependencies from the header
    /usr/bin/python3 analyze_results.py      # Debian: python3-pandas python3-matplotlib
    make analyze

Exit status: 0 success, 1 bad or unusable data (one line on stderr naming
the file and the problem), 2 bad command-line usage.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

PROG = "analyze_results.py"

try:
    import numpy as np
    import pandas as pd
    import matplotlib

    matplotlib.use("Agg")  # headless: must precede any pyplot import
except ImportError as _missing:  # pragma: no cover - depends on the interpreter
    sys.stderr.write(
        f"{PROG}: {_missing.name or _missing} is not installed for {sys.executable}; "
        "install python3-pandas python3-matplotlib (Debian) and run "
        "/usr/bin/python3 analyze_results.py, or use: uv run analyze_results.py\n"
    )
    sys.exit(1)

LATENCY_CSV = "latency_results.csv"
BANDWIDTH_CSV = "bandwidth_results.csv"
RUN_JSON = "run.json"

PERCENTILE_NOTE = (
    "Percentiles: linear interpolation between order statistics (numpy's\n"
    "default 'linear' method, Hyndman & Fan type 7), the same definition the\n"
    "C harness uses. Std dev is the sample standard deviation (n-1)."
)

LATENCY_REQUIRED = ("iteration", "latency_ns")
BANDWIDTH_REQUIRED = ("frame", "bytes", "success", "total_ns")
BANDWIDTH_INT_COLUMNS = ("width", "height", "iteration", "error_code")
BANDWIDTH_TIME_COLUMNS = (
    "copy_ns", "handoff_ns", "verify_ns", "guest_read_ns", "guest_hash_ns",
)
BANDWIDTH_RATE_COLUMNS = ("transfer_gbps", "bandwidth_gbps")

KEY_PERCENTILES = (50, 90, 99, 99.9)
DPI = 110


class DataError(Exception):
    """Unusable input: reported as one line on stderr, exit status 1."""


class UsageError(Exception):
    """Bad command line: reported with the usage, exit status 2."""


# --------------------------------------------------------------------------
# Reading and validating the input
# --------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """Return the whole file as text, or raise DataError saying why not."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a CSV file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file (invalid UTF-8)") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None


def read_csv_table(path: Path) -> pd.DataFrame:
    """Read a CSV with a header into a DataFrame of stripped strings.

    The line number of each row in the file is kept in the "_line" column so
    that error messages can point at it.
    """
    text = read_text(path)
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    table = fast_table(path, text)
    return table if table is not None else careful_table(path, text)


def fast_table(path: Path, text: str) -> pd.DataFrame | None:
    """pandas' C parser for the plain case: no quotes, no blank lines and the
    same number of fields on every line. None when the file needs the careful
    reader (which then finds and names the problem)."""
    lines = text.splitlines()
    if '"' in text or any(not line.strip() for line in lines):
        return None
    commas = lines[0].count(",")
    if any(line.count(",") != commas for line in lines):
        return None
    header = [f.strip() for f in lines[0].split(",")]
    check_header(path, header)
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, na_filter=False,
                            index_col=False, skip_blank_lines=False)
    except (ValueError, pd.errors.ParserError):
        return None
    if len(table.columns) != len(header) or len(table) != len(lines) - 1:
        return None
    table.columns = header
    for column in header:
        table[column] = table[column].str.strip()
    table["_line"] = np.arange(2, len(table) + 2)
    return table


def careful_table(path: Path, text: str) -> pd.DataFrame:
    """The csv module, row by row: quoted fields, blank lines, exact errors."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for fields in reader:
            if not any(f.strip() for f in fields):
                continue  # blank line
            if header is None:
                header = [f.strip() for f in fields]
                check_header(path, header)
                continue
            if len(fields) != len(header):
                raise DataError(
                    f"{path}: line {reader.line_num}: {len(fields)} fields, "
                    f"the header has {len(header)}"
                )
            rows.append([f.strip() for f in fields])
            lines.append(reader.line_num)
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({e})") from None
    assert header is not None
    table = pd.DataFrame(rows, columns=header, dtype=object)
    table["_line"] = lines
    return table


def check_header(path: Path, header: list[str]) -> None:
    """Reject headers with empty or repeated column names."""
    seen: set[str] = set()
    for name in header:
        if not name:
            raise DataError(f"{path}: header has an empty column name")
        if name in seen:
            raise DataError(f"{path}: column {name} appears twice in the header")
        seen.add(name)


def require_columns(path: Path, table: pd.DataFrame, required: tuple[str, ...]) -> None:
    """Raise DataError naming every required column the header lacks."""
    header = [c for c in table.columns if c != "_line"]
    missing = [c for c in required if c not in header]
    if missing:
        shown = ",".join(header)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        plural = "s" if len(missing) > 1 else ""
        raise DataError(
            f"{path}: missing column{plural} {', '.join(missing)} (header is: {shown})"
        )
    if table.empty:
        raise DataError(f"{path}: header but no data rows")


def first_bad(path: Path, table: pd.DataFrame, column: str, bad: pd.Series,
              problem: str) -> None:
    """Raise DataError for the first row where bad is true, if any."""
    if bad.any():
        i = bad.to_numpy().nonzero()[0][0]
        line, text = table["_line"].iloc[i], table[column].iloc[i]
        raise DataError(f"{path}: line {line}: column {column}: "
                        + problem.format(text=repr(text)))


def numeric(path: Path, table: pd.DataFrame, column: str, *, integer: bool = False,
            allow_empty: bool = False, minimum: float | None = None) -> pd.Series:
    """Column as floats (NaN for allowed empty cells), every cell checked."""
    text = table[column]
    empty = text == ""
    values = pd.to_numeric(text.where(~empty, None), errors="coerce").astype(float)
    if not allow_empty:
        first_bad(path, table, column, empty, "empty value")
    first_bad(path, table, column, values.isna() & ~empty, "non-numeric value {text}")
    first_bad(path, table, column, np.isinf(values), "not a finite number: {text}")
    if integer:
        first_bad(path, table, column, values.notna() & (values % 1 != 0),
                  "expected an integer, got {text}")
    if minimum is not None:
        first_bad(path, table, column, values < minimum,
                  f"value {{text}} is below {minimum:g}")
    return values


def load_latency(path: Path) -> pd.DataFrame:
    """Load latency_results.csv into iteration, latency_ns[, received_ns]."""
    table = read_csv_table(path)
    require_columns(path, table, LATENCY_REQUIRED)
    df = pd.DataFrame({
        "iteration": numeric(path, table, "iteration", integer=True, minimum=0)
        .astype("int64"),
        "latency_ns": numeric(path, table, "latency_ns", minimum=0),
    })
    if "latency_us" in table:
        numeric(path, table, "latency_us", minimum=0)
    if "received_us" in table:
        numeric(path, table, "received_us", allow_empty=True, minimum=0)
    if "received_ns" in table:
        received = numeric(path, table, "received_ns", allow_empty=True, minimum=0)
        if received.notna().any():
            df["received_ns"] = received
    return df


def load_bandwidth(path: Path) -> pd.DataFrame:
    """Load bandwidth_results.csv, one row per transfer, gaps computed."""
    table = read_csv_table(path)
    require_columns(path, table, BANDWIDTH_REQUIRED)
    first_bad(path, table, "frame", table["frame"] == "", "empty value")
    first_bad(path, table, "success", ~table["success"].isin(["0", "1"]),
              "expected 0 or 1, got {text}")
    ok = table["success"] == "1"
    df = pd.DataFrame({
        "frame": table["frame"],
        "bytes": numeric(path, table, "bytes", integer=True, minimum=1),
        "success": ok,
    })
    names = table["error_name"] if "error_name" in table else pd.Series("", index=table.index)
    df["error_name"] = names.where(names != "", np.where(ok, "ok", "failed"))
    for col in BANDWIDTH_INT_COLUMNS:
        if col in table:
            df[col] = numeric(path, table, col, integer=True, allow_empty=True,
                              minimum=None if col == "error_code" else 0)
    for col in ("total_ns",) + BANDWIDTH_TIME_COLUMNS + BANDWIDTH_RATE_COLUMNS:
        if col in table:
            df[col] = numeric(path, table, col, allow_empty=True, minimum=0)
    first_bad(path, table, "total_ns", ok & ~(df["total_ns"] > 0),
              "a successful transfer needs a positive time, got {text}")
    fill_rates(df)
    if "iteration" not in df or df["iteration"].isna().any():
        df["iteration"] = df.groupby("frame", sort=False).cumcount()
    check_frame_sizes(path, df)
    return df


def fill_rates(df: pd.DataFrame) -> None:
    """Compute bandwidth_gbps and transfer_gbps of successful rows left empty."""
    ok = df["success"]
    computed = df["bytes"] / df["total_ns"]
    if "bandwidth_gbps" not in df:
        df["bandwidth_gbps"] = np.nan
    df["bandwidth_gbps"] = df["bandwidth_gbps"].where(df["bandwidth_gbps"].notna() | ~ok,
                                                      computed)
    if "copy_ns" in df:
        copy_rate = df["bytes"] / df["copy_ns"].where(df["copy_ns"] > 0)
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
            f"{path}: frame {mixed.index[0]} appears with different byte counts"
        )


def load_run_info(directory: Path, warn) -> dict | None:
    """Read the optional run.json; a broken one is ignored with a warning."""
    path = directory / RUN_JSON
    if not path.exists():
        return None
    try:
        info = json.loads(read_text(path))
    except (json.JSONDecodeError, DataError) as e:
        warn(f"{path}: ignored, not valid JSON ({e})")
        return None
    if not isinstance(info, dict):
        warn(f"{path}: ignored, expected a JSON object")
        return None
    return info


@dataclass
class Run:
    """Everything read from one results directory."""

    directory: Path
    info: dict | None
    latency: pd.DataFrame | None
    bandwidth: pd.DataFrame | None
    notes: list[str] = field(default_factory=list)


def load_run(directory: Path, warn) -> Run:
    """Load a results directory: at least one of the two CSV files must exist."""
    if not directory.exists():
        raise DataError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    lat_path, bw_path = directory / LATENCY_CSV, directory / BANDWIDTH_CSV
    if not lat_path.exists() and not bw_path.exists():
        raise DataError(
            f"{directory}: no results: neither {LATENCY_CSV} nor {BANDWIDTH_CSV} found"
        )
    notes = []
    latency = load_latency(lat_path) if lat_path.exists() else None
    if latency is None:
        notes.append(f"{LATENCY_CSV} not found: latency section and plots skipped")
    elif "received_ns" not in latency:
        notes.append("no received_ns column: first-acknowledgement statistics skipped")
    bandwidth = load_bandwidth(bw_path) if bw_path.exists() else None
    if bandwidth is None:
        notes.append(f"{BANDWIDTH_CSV} not found: bandwidth section and plot skipped")
    return Run(directory, load_run_info(directory, warn), latency, bandwidth, notes)


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def clean(value):
    """Make a value JSON-friendly: numpy scalars to Python, NaN to None."""
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


def summarize(run: Run) -> dict:
    """All figures of one run, as written to summary.json."""
    summary = {
        "tool": PROG,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results_dir": str(run.directory),
        "label": run_label(run),
        "run": run.info,
        "notes": run.notes,
        "percentile_method": "linear interpolation between order statistics "
                             "(numpy 'linear', Hyndman & Fan type 7)",
        "std_method": "sample (n-1)",
        "latency": None,
        "bandwidth": None,
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
    return summary


# --------------------------------------------------------------------------
# Labels, units and number formatting
# --------------------------------------------------------------------------


def run_label(run: Run) -> str:
    """'plain / kvm, micro guest' from run.json, else the directory name."""
    info = run.info or {}
    mode, accel, guest = info.get("mode"), info.get("accel"), info.get("guest")
    if not mode and not accel:
        return f"{dir_name(run.directory)} (no run.json)" if run.info is None \
            else dir_name(run.directory)
    label = f"{mode or '?'} / {accel or '?'}"
    if guest == "host":
        label += ", host-only baseline"
    elif guest:
        label += f", {guest} guest"
    return label


def short_label(run: Run) -> str:
    """'plain/kvm/micro' for tables and legends, else the directory name."""
    info = run.info or {}
    parts = [str(info[k]) for k in ("mode", "accel", "guest") if info.get(k)]
    return "/".join(parts) if parts else dir_name(run.directory)


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


def report_header(summary: dict) -> list[str]:
    title = f"ivshmem-bench performance report: {summary['label']}"
    lines = [title, "=" * len(title),
             f"Results:   {summary['results_dir']}",
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


def render_report(summary: dict) -> str:
    lines = report_header(summary)
    if summary["latency"]:
        lines += report_latency(summary["latency"])
    if summary["bandwidth"]:
        lines += report_bandwidth(summary["bandwidth"])
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def pyplot():
    """Import pyplot lazily (slow) with settings that read well at a glance."""
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


def body_limit(values: np.ndarray) -> float:
    """Upper end of the bulk of a distribution: p75 + 5 IQR, within [p99, p99.5]
    so a thin but far tail does not squash the bulk into one bar."""
    p75, p99, p995 = np.percentile(values, [75, 99, 99.5])
    iqr = p75 - np.percentile(values, 25)
    return float(min(p995, max(p99, p75 + 5 * iqr)))


def wide(values: np.ndarray) -> bool:
    """True when a distribution's tail is long enough to need a log axis."""
    lo, hi = np.percentile(values, [1, 100])
    return lo > 0 and hi / lo > 20


def plot_latency_histogram(lat: pd.DataFrame, title: str, path: Path) -> Path:
    plt = pyplot()
    rt = lat["latency_ns"].to_numpy(float)
    rc = lat["received_ns"].dropna().to_numpy(float) if "received_ns" in lat else None
    name, scale, _ = pick_unit(np.median(rt))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    fig.suptitle(f"Latency distribution: {title}")

    cut = body_limit(rt)
    hidden = int((rt > cut).sum())
    lo = min(rt.min(), rc.min() if rc is not None and rc.size else rt.min())
    bins = np.linspace(lo / scale, max(cut / scale, lo / scale + 1e-9), 60)
    ax1.hist(rt / scale, bins=bins, color="tab:blue", alpha=0.75, label="round trip")
    if rc is not None and rc.size:
        ax1.hist(rc / scale, bins=bins, histtype="step", color="tab:orange", lw=1.5,
                 label="first ack (RECEIVED)")
    ax1.set_title(f"Linear scale: the bulk, up to {nice(cut / scale)} {name}\n"
                  f"({hidden:,} slower round trips not shown, see right)")
    ax1.set_xlabel(f"latency ({name})")
    comma_ticks(ax1.xaxis)
    ax1.set_ylabel("samples")

    pos = rt[rt > 0]
    lo2 = max(pos.min() if pos.size else 1.0, 1.0)
    hi2 = max(rt.max(), lo2 * 1.01)
    logbins = np.geomspace(lo2, hi2, 60) / scale
    ax2.hist(rt / scale, bins=logbins, color="tab:blue", alpha=0.75, label="round trip")
    if rc is not None and rc.size:
        ax2.hist(rc / scale, bins=logbins, histtype="step", color="tab:orange", lw=1.5,
                 label="first ack (RECEIVED)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_title("Log scales: the full range, tail included\n ")
    plain_log_ticks(ax2.xaxis)
    plain_log_ticks(ax2.yaxis)
    ax2.set_xlabel(f"latency ({name}, log scale)")
    ax2.set_ylabel("samples (log scale)")

    for ax in (ax1, ax2):
        for p, style in ((50, "--"), (99, ":")):
            v = np.percentile(rt, p) / scale
            ax.axvline(v, color="black", ls=style, lw=1, label=f"p{p} = {nice(v)} {name}")
        ax.legend(loc="upper right")
    return save(fig, path)


def plot_latency_over_time(lat: pd.DataFrame, title: str, path: Path) -> Path:
    plt = pyplot()
    rt = lat["latency_ns"].to_numpy(float)
    name, scale, _ = pick_unit(np.median(rt))
    fig, ax = plt.subplots(figsize=(12, 5), constrained_layout=True)
    dense = len(rt) > 20_000  # thinner, fainter dots so a long run stays legible
    ax.scatter(lat["iteration"], rt / scale, s=1 if dense else 4,
               alpha=max(0.03, min(0.35, 3000 / len(rt))), color="tab:blue",
               label="round trip (each sample)", rasterized=True)
    window = max(5, len(rt) // 50)
    rolling = pd.Series(rt).rolling(window, center=True, min_periods=1).median() / scale
    ax.plot(lat["iteration"], rolling, color="black", lw=1.5,
            label=f"round trip, rolling median of {window}")
    if "received_ns" in lat and lat["received_ns"].notna().any():
        rec = lat["received_ns"].rolling(window, center=True, min_periods=1).median() / scale
        ax.plot(lat["iteration"], rec, color="tab:orange", lw=1.5,
                label=f"first ack (RECEIVED), rolling median of {window}")
    p99 = np.percentile(rt, 99) / scale
    ax.axhline(p99, color="tab:red", ls=":", lw=1, label=f"p99 = {nice(p99)} {name}")
    log = wide(rt)
    if log:
        ax.set_yscale("log")
    ax.set_title(f"Latency over time: {title}")
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


def plot_latency_percentiles(lat: pd.DataFrame, title: str, path: Path) -> Path:
    plt = pyplot()
    rt = lat["latency_ns"].to_numpy(float)
    name, scale, _ = pick_unit(np.median(rt))
    n = rt.size
    top = min(99.99, 100 * (1 - 1 / max(n, 2)))  # no further than the data reaches
    ps = np.unique(np.concatenate([np.linspace(0, 90, 91),
                                   100 - np.geomspace(10, 100 - top, 200)]))
    ps = ps[ps <= top]
    fig, ax = plt.subplots(figsize=(11, 6), constrained_layout=True)
    ax.plot(tail_position(ps), np.percentile(rt, ps) / scale, color="tab:blue", lw=2,
            label="round trip")
    if "received_ns" in lat and lat["received_ns"].notna().any():
        rc = lat["received_ns"].dropna().to_numpy(float)
        ax.plot(tail_position(ps), np.percentile(rc, ps) / scale, color="tab:orange",
                lw=1.5, label="first ack (RECEIVED)")
    for p in KEY_PERCENTILES:
        if p > top + 1e-9:
            continue
        v = np.percentile(rt, p) / scale
        x = tail_position(p)
        ax.plot(x, v, "o", color="tab:red", zorder=3)
        ax.annotate(f"p{p:g} = {nice(v)} {name}", (x, v), textcoords="offset points",
                    xytext=(8, -16), ha="left", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
    ax.axhline(rt.max() / scale, color="gray", ls="--", lw=1,
               label=f"max = {nice(rt.max() / scale)} {name}")
    ticks = [p for p in (0, 50, 90, 99, 99.9, 99.99) if p <= top + 1e-9]
    ax.set_xticks(tail_position(ticks))
    ax.set_xticklabels([f"p{p:g}" for p in ticks])
    ax.set_xlim(0, tail_position(top) * 1.02)
    log = wide(rt)
    if log:
        ax.set_yscale("log")
    plain_log_ticks(ax.yaxis) if log else comma_ticks(ax.yaxis)
    ax.set_title(f"Latency percentiles: {title}  ({n:,} samples)")
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


def plot_bandwidth(df: pd.DataFrame, stats: dict, title: str, path: Path) -> Path:
    plt = pyplot()
    frames = stats["frames"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    fig.suptitle(f"Bandwidth: {title}")
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


def write_plots(run: Run, summary: dict, out: Path) -> list[Path]:
    title = summary["label"]
    written = []
    if run.latency is not None:
        written.append(plot_latency_histogram(run.latency, title, out / "latency_histogram.png"))
        written.append(plot_latency_over_time(run.latency, title, out / "latency_over_time.png"))
        written.append(plot_latency_percentiles(run.latency, title,
                                                out / "latency_percentiles.png"))
    if run.bandwidth is not None:
        written.append(plot_bandwidth(run.bandwidth, summary["bandwidth"], title,
                                      out / "bandwidth_analysis.png"))
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

    def add(name, unit, better, values):
        if any(v is not None for v in values):
            metrics.append({"metric": name, "unit": unit, "better": better,
                            "values": [clean(v) for v in values]})

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
    for m in metrics:
        base = m["values"][0]
        m["ratios"] = [None if v is None or not base else v / base for v in m["values"]]
    return metrics


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
    if m["unit"] == "ns":
        return fmt_time(value, lat_unit)
    if m["unit"] == "%":
        return f"{value:.1f}"
    return f"{value:.3f}"


def metric_unit(m: dict, lat_unit) -> str:
    if m["metric"].startswith("duration"):
        return "ms"
    return lat_unit[0] if m["unit"] == "ns" else m["unit"]


def render_comparison(labels: list[str], runs: list[Run], metrics: list[dict]) -> str:
    lat_unit = comparison_unit(metrics)
    lines = ["ivshmem-bench comparison", "========================",
             f"Ratios are against the first run ({labels[0]}): value / first value.", ""]
    lines += [f"  [{i + 1}] {label}: {r.directory}" for i, (label, r) in
              enumerate(zip(labels, runs))]
    lines.append("")
    rows = [["metric", "unit", "better"] + [f"[{i + 1}] {l}" for i, l in enumerate(labels)]]
    for m in metrics:
        cells = [m["metric"], metric_unit(m, lat_unit), m["better"]]
        for i, (v, r) in enumerate(zip(m["values"], m["ratios"])):
            text = format_metric(m, v, lat_unit)
            if i and r is not None:
                text += f" (x{r:.2f})"
            cells.append(text)
        rows.append(cells)
    lines += table(rows, "lll")
    lines += ["", PERCENTILE_NOTE]
    return "\n".join(lines) + "\n"


def plot_comparison(labels: list[str], metrics: list[dict], path: Path) -> Path:
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    fig.suptitle("Comparison (ratios against [1] " + labels[0] + ")")
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
                ax.annotate(f"x{r:.2f}", (b.get_x() + b.get_width() / 2, b.get_height()),
                            textcoords="offset points", xytext=(0, 2), ha="center",
                            fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.margins(y=0.12)
    ax.legend(loc="upper left", fontsize=8)


def compare(dirs: list[Path], out: Path, plots: bool, say, warn) -> int:
    runs = [load_run(d, warn) for d in dirs]
    summaries = [summarize(r) for r in runs]
    labels = unique_labels(runs)
    metrics = comparison_metrics(summaries)
    text = render_comparison(labels, runs, metrics)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_text(out / "comparison.txt", text)]
    payload = {
        "tool": PROG,
        "baseline": labels[0],
        "ratio": "value / value of the first run",
        "latency_unit": "ns",
        "duration_unit": "ns",
        "runs": [{"label": l, "results_dir": str(r.directory), "run": r.info,
                  "notes": r.notes} for l, r in zip(labels, runs)],
        "metrics": metrics,
        "summaries": summaries,
    }
    written.append(write_json(out / "comparison.json", payload))
    if plots:
        written.append(plot_comparison(labels, metrics, out / "comparison.png"))
    say(text)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_all_failed(runs, summaries)


# --------------------------------------------------------------------------
# Writing and the command line
# --------------------------------------------------------------------------


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, payload) -> Path:
    path.write_text(json.dumps(payload, indent=2, allow_nan=False, default=clean) + "\n",
                    encoding="utf-8")
    return path


def check_all_failed(runs: list[Run], summaries: list[dict]) -> int:
    """Exit 1 (after the outputs are written) when every frame transfer failed."""
    status = 0
    for run, s in zip(runs, summaries):
        o = (s["bandwidth"] or {}).get("overall")
        if o and o["successful"] == 0:
            sys.stderr.write(
                f"{PROG}: {run.directory / BANDWIDTH_CSV}: every frame transfer failed "
                f"(0/{o['total']} successful), no bandwidth to show\n"
            )
            status = 1
    return status


def analyze(directory: Path, out: Path, plots: bool, say, warn) -> int:
    run = load_run(directory, warn)
    summary = summarize(run)
    out.mkdir(parents=True, exist_ok=True)
    report = render_report(summary)
    written = [write_text(out / "performance_report.txt", report),
               write_json(out / "summary.json", summary)]
    if plots:
        written += write_plots(run, summary, out)
    say(report)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_all_failed([run], [summary])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Statistics, plots and a report from ivshmem-bench results\n"
            "(latency_results.csv, bandwidth_results.csv, optional run.json)."
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
            "comparison.png, ratios against the first directory, written into --output\n"
            "(default: the current directory); the input directories are not written.\n"
            "\n"
            "exit status: 0 ok, 1 bad or unusable data (including a run where every\n"
            "frame transfer failed, after its report is written), 2 usage error."
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
        if len(dirs) > 1:
            return compare(dirs, args.output or Path("."), not args.no_plots, say, warn)
        return analyze(dirs[0], args.output or dirs[0], not args.no_plots, say, warn)
    except DataError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        return 1
    except OSError as e:  # e.g. the output directory cannot be written
        name = e.filename or ""
        sys.stderr.write(f"{PROG}: {name}: {e.strerror or e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
