"""
repeated - a run measured several times (run_test.sh --repeat): its
repetitions read back, each headline figure's value in each of them, the
median with its exact interval, the warnings, and the outputs of the whole.

run_test.sh --repeat N writes OUT/rep-1/, OUT/rep-2/, ..., each a complete
results directory, and `python3 -m analysis.repeat merge` (repeat.py) then
writes into OUT each results CSV once, with a first column `repetition`
(1-based), and run.json with a "repetitions" object whose per_repetition
list keeps each repetition's own run.json ("run"), status, host load and
rows per file. A directory is a repeated run when its run.json has that
object or a results CSV starts with that column; a CSV without it is a
single run, and analyze_results.py treats it exactly as before.

Reading one back (load_repeated): each CSV is split by its repetition
column into a results directory per repetition (temporary; the column is
left in and ignored by the loaders, so a repetition's rows are a slice of
the file's bytes), with that repetition's own run.json, and each is loaded
the way a single run is (load_run: every check, its partial reasons), then
summarised. Messages name the merged file and its own line numbers.

The figures (figures()): each kind's comparison rows (Kind.compare) over
the repetitions' summaries, those its Kind.headline_figure picks: latency
p50/p99/p99.9, each stream point's msgs/s and GB/s, each message size's
p50, each rate set's knee, each frame size's mean bandwidth, each other
transport's p50 and GB/s. Each has its value in every repetition, the
median, the IQR, and the exact order-statistic interval for the median
(intervals.py) at the level of --ci (95 % without one), with the coverage
it achieves. Two warnings, like hyperfine's:
  - unstable: a figure whose repetitions' coefficient of variation (sample
    std / mean) is above 10 %;
  - busy host: a repetition whose host_load.json says the 1-minute load
    average, before or after, was above half the CPUs, or whose steal time
    grew by more than 1 % of the CPU time its run lasted (run.json's
    start_time to end_time, times the CPUs, at 100 jiffies a second).

The merged run's status (repeat.py): "complete" when the series ended as
planned (done, settled, max reached) and every repetition's run.json says
"complete"; otherwise "partial", and the reasons are each repetition's own
plus, for a series interrupted or failed, that one. Partial results are
refused without --allow-partial, as for a single run.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from analysis import intervals, page
from analysis.errors import PROG, DataError, PartialError
from analysis.kind import Fact
from analysis.kinds import KINDS, RESULT_FILES
from analysis.plots import Plot, render
from analysis.report import (PERCENTILE_NOTE, check_bad_data, partial_banner, provenance_part,
                             tcg_warning, write_json, write_text)
from analysis.run import Run, load_run, run_label, summarize
from analysis.runinfo import RUN_JSON, flatten, load_run_info
from analysis.tables import MAX_LINE, check_text, present, read_bytes, shown
from analysis.units import fmt_sig, fmt_time, pick_unit, table

REPETITION = "repetition"
MAX_REPETITIONS = 10_000       # run_test.sh --repeat's bound; a larger number is no repetition
DEFAULT_LEVEL = 95.0           # the interval's level without --ci, in percent
STOPPED = ("done", "settled", "max reached", "interrupted", "failed")
INTERVAL = "exact order-statistic interval for the median (binomial)"
UNSTABLE_RULE = (f"coefficient of variation (sample std / mean) of the repetitions above "
                 f"{100 * intervals.UNSTABLE_CV:g} %")
BUSY_LOAD = 0.5                # load average above this many per CPU: busy
BUSY_STEAL = 0.01              # steal above this share of the run's CPU time: busy
USER_HZ = 100                  # jiffies a second in /proc/stat
BUSY_RULE = ("1-minute load average before or after above 0.5 x the CPUs, or steal time "
             "grown by more than 1 % of the run's CPU time")


def result_paths() -> list[str]:
    """Every results CSV a run can hold, relative to it: the kinds' own and
    those in the subdirectories they read (transports/, host-ivshmem/)."""
    found = list(RESULT_FILES)
    for kind in KINDS:
        if kind.subdir:
            found += [f"{kind.subdir}/{s.file}" for s, _ in kind.files]
        for sub, files in kind.extra:
            found += [f"{sub}/{s.file}" for s, _ in files]
    return list(dict.fromkeys(found))


def first_field(path: Path) -> str:
    """The first column's name in path's header; '' for anything that is not
    a readable regular file (load_run names the problem)."""
    try:
        if not path.is_file():
            return ""
        with open(path, "rb") as f:
            head = f.read(MAX_LINE).split(b"\n", 1)[0]
    except OSError:
        return ""
    return head.removeprefix(b"\xef\xbb\xbf").split(b",", 1)[0].strip().decode(
        "utf-8", "replace")


def is_repeated(directory: Path) -> bool:
    """A merged directory of repetitions: run.json with a "repetitions"
    object, or a results CSV whose first column is `repetition`."""
    info_path = directory / RUN_JSON
    if info_path.is_file():
        try:
            if "repetitions" in load_run_info(info_path):
                return True
        except DataError:
            pass  # load_run says what is wrong with it
    return any(first_field(directory / p) == REPETITION for p in result_paths())


# --------------------------------------------------------------------------
# Reading a merged directory back, a repetition at a time
# --------------------------------------------------------------------------


@dataclass
class Split:
    """One merged CSV cut by its repetition column."""

    header: bytes                   # the header line, end of line included
    parts: dict[int, bytes]         # repetition -> its lines (the column kept)
    lines: dict[int, np.ndarray]    # repetition -> the merged file's line of each
    notes: list[str] = field(default_factory=list)


def split_csv(path: Path) -> Split:
    """Cut a merged CSV into its repetitions, checking the column: a
    repetition number (1..MAX_REPETITIONS) first on every row. A last line
    cut short goes with its repetition, which its loader reports."""
    data = read_bytes(path)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    check_text(path, data)
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 0x0A)
    if newlines.size == 0:
        raise DataError(f"{path}: no complete line")
    header = data[:newlines[0] + 1]
    if header.split(b",", 1)[0].strip() != REPETITION.encode():
        raise DataError(f"{path}: line 1: the first column is not {REPETITION}, as in the "
                        "other files of this merged run")
    starts = newlines[:-1] + 1
    ends = newlines[1:]
    if newlines[-1] + 1 < raw.size and data[newlines[-1] + 1:].strip():
        starts = np.append(starts, newlines[-1] + 1)  # a line cut short
        ends = np.append(ends, raw.size)
    commas = np.flatnonzero(raw == 0x2C)
    at = np.searchsorted(commas, starts)
    first = np.where(at < commas.size, commas[np.minimum(at, commas.size - 1)], raw.size)
    width = first - starts
    ok = (first < ends) & (width >= 1) & (width <= 5)
    value = np.zeros(starts.size, dtype=np.int64)
    for j in range(5):
        byte = raw[np.minimum(starts + j, raw.size - 1)].astype(np.int64)
        inside = j < width
        ok &= ~inside | ((byte >= 0x30) & (byte <= 0x39))
        value = np.where(inside, value * 10 + byte - 0x30, value)
    ok &= (value >= 1) & (value <= MAX_REPETITIONS)
    numbers = np.arange(starts.size) + 2
    keep = ok.copy()
    for i in np.flatnonzero(~ok):
        line = data[starts[i]:ends[i]]
        if line.strip():
            cell = line.split(b",", 1)[0].decode("utf-8", "replace").strip()
            raise DataError(f"{path}: line {numbers[i]}: column {REPETITION}: expected a "
                            f"repetition number 1..{MAX_REPETITIONS:,}, got {shown(cell)}")
    split = Split(header, {}, {})
    for k in np.unique(value[keep]):
        rows = np.flatnonzero(keep & (value == k))
        if rows[-1] - rows[0] + 1 == rows.size:  # merge's order: one block each
            body = data[starts[rows[0]]:ends[rows[-1]] + 1]
        else:
            body = b"".join(data[starts[i]:ends[i] + 1] for i in rows)
        split.parts[int(k)] = body
        split.lines[int(k)] = numbers[rows]
    return split


@dataclass
class Repeated:
    """A run and its repetitions, as read (a single run: one repetition)."""

    whole: Run                 # the directory as a run: run.json without "repetitions"
    meta: dict                 # run.json's "repetitions" ({} for a single run)
    reps: list[tuple[int, Run, dict]]   # (repetition, its run, its summary)
    host_load: dict[int, dict | None]   # repetition -> host_load.json
    level: float               # the interval's level, in percent
    merged: bool               # read from a merged directory (not a single run)

    @property
    def summaries(self) -> list[dict]:
        return [s for _, _, s in self.reps]


def repetitions_meta(path: Path, info: dict | None) -> dict:
    """run.json's "repetitions", its shape checked (it is input)."""
    meta = (info or {}).get("repetitions")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise DataError(f"{path}: repetitions: expected an object")
    per = meta.get("per_repetition", [])
    if not isinstance(per, list) or not all(
            isinstance(p, dict) and isinstance(p.get("repetition"), int)
            and not isinstance(p.get("repetition"), bool)
            and 1 <= p["repetition"] <= MAX_REPETITIONS for p in per):
        raise DataError(f"{path}: repetitions.per_repetition: expected a list of objects "
                        f"with a repetition number 1..{MAX_REPETITIONS:,}")
    ci = meta.get("ci")
    if ci is not None and not (isinstance(ci, dict) and valid_level(ci.get("level"))):
        raise DataError(f"{path}: repetitions.ci: expected null or an object with a level "
                        "between 50 and 99.99")
    return meta


def valid_level(level) -> bool:
    return (isinstance(level, (int, float)) and not isinstance(level, bool)
            and 50 <= level < 100)


class Relocate:
    """Messages about a repetition's temporary files, made to name the merged
    directory, the repetition and the merged file's own line numbers."""

    def __init__(self, tmp: Path, directory: Path, k: int, splits: dict[str, Split]):
        self.tmp, self.directory, self.k, self.splits = str(tmp), directory, k, splits

    def line(self, name: str, number: int) -> int:
        lines = self.splits[name].lines.get(self.k) if name in self.splits else None
        if lines is None or not 2 <= number < lines.size + 2:
            return number
        return int(lines[number - 2])

    def __call__(self, text: str) -> str:
        def merged_line(m):
            name = m.group(1).removeprefix(self.tmp + "/")
            return f"{m.group(1)}: line {self.line(name, int(m.group(2)))}"

        text = re.sub(r"(\S+\.csv): line (\d+)", merged_line, text)
        return text.replace(self.tmp + "/", f"{self.directory}/").replace(
            self.tmp, str(self.directory))


def load_repeated(directory: Path, warn, allow_partial: bool) -> Repeated:
    """A merged directory read back: each repetition loaded as a run of its
    own, the whole's partial reasons gathered; PartialError unless allowed."""
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    info_path = directory / RUN_JSON
    info = load_run_info(info_path) if present(info_path) else None
    meta = repetitions_meta(info_path, info)
    per = {p["repetition"]: p for p in meta.get("per_repetition", [])}
    splits = {name: split_csv(directory / name) for name in result_paths()
              if present(directory / name) and first_field(directory / name) == REPETITION}
    plain = [name for name in result_paths() if present(directory / name)
             and name not in splits]
    if plain:
        raise DataError(f"{directory / plain[0]}: no {REPETITION} column, unlike the other "
                        "files of this merged run (a single run's file copied in?)")
    numbers = sorted(set(per) | {k for s in splits.values() for k in s.parts})
    if not numbers:
        raise DataError(f"{directory}: a merged run without repetitions")
    whole_info = {k: v for k, v in (info or {}).items() if k != "repetitions"} or None
    whole = Run(directory, whole_info, status=(info or {}).get("status"),
                run_id=(info or {}).get("run_id"))
    whole.files = list(splits)
    stopped = meta.get("stopped")
    if stopped in ("interrupted", "failed"):
        whole.partial.append(f"the repetitions stopped early: {stopped}")
    level = float((meta.get("ci") or {}).get("level", DEFAULT_LEVEL))
    reps, loads, notes, seen = [], {}, {}, set()

    def warn_once(text: str) -> None:
        if text not in seen:
            seen.add(text)
            warn(text)

    with tempfile.TemporaryDirectory(prefix="ivb-repeated-") as tmp:
        for k in numbers:
            rep = Path(tmp) / f"rep-{k}"
            relocate = Relocate(rep, directory, k, splits)
            loaded = load_one(rep, k, per.get(k, {}), splits, directory, relocate, warn_once)
            loads[k] = per.get(k, {}).get("host_load")
            if isinstance(loaded, str):
                whole.partial.append(f"repetition {k}: {loaded}")
                continue
            run, summary = loaded
            whole.partial += [f"repetition {k}: {r}" for r in run.partial]
            for note in run.notes:
                notes.setdefault(note, []).append(k)
            reps.append((k, run, summary))
    for note, ks in notes.items():
        which = "every repetition" if len(ks) == len(numbers) and len(ks) > 1 else \
            f"repetition{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))}"
        whole.notes.append(f"{which}: {note}")
    if not reps:
        raise PartialError(f"{directory}: no repetition to analyse: " + "; ".join(whole.partial))
    if whole.partial and not allow_partial:
        raise PartialError(f"{directory}: partial results: " + "; ".join(whole.partial)
                           + " (--allow-partial analyses what is there)")
    if whole.partial:
        warn(f"{directory}: PARTIAL results: " + "; ".join(whole.partial))
    return Repeated(whole, meta, reps, loads, level, True)


def load_one(rep: Path, k: int, per: dict, splits: dict[str, Split], directory: Path,
             relocate, warn):
    """Repetition k as a results directory of its own in rep, loaded and
    summarised: (Run, summary), or why it has nothing to analyse."""
    rep.mkdir()
    own = per.get("run") if isinstance(per.get("run"), dict) else None
    listed = per.get("files") if isinstance(per.get("files"), dict) else {}
    own_files = (own or {}).get("files") if isinstance((own or {}).get("files"), dict) else {}
    for name, split in splits.items():
        target = rep / name
        if k not in split.parts and name not in listed and name not in own_files:
            continue  # a file this repetition did not write
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(split.header + split.parts.get(k, b""))
    if own is not None:
        (rep / RUN_JSON).write_text(json.dumps(own))
    for sub in {name.rsplit("/", 1)[0] for name in splits if "/" in name}:
        # A subdirectory's run.json (transport_bench's): the merged one, with
        # this repetition's rows (a shortcut: its status is the last one's).
        sub_info = directory / sub / RUN_JSON
        if present(sub_info) and (rep / sub).is_dir():
            info = load_run_info(sub_info)
            info["files"] = {n.split("/")[-1]: rows for n, rows in listed.items()
                             if n.startswith(sub + "/")} or info.get("files")
            (rep / sub / RUN_JSON).write_text(json.dumps(info))
    try:
        run = load_run(rep, lambda text: warn(relocate(text)), allow_partial=True)
    except PartialError as e:
        return relocate(str(e)).removeprefix(f"{directory}: ")
    except DataError as e:
        raise DataError(f"repetition {k}: {relocate(str(e))}") from None
    run.partial = [relocate(r) for r in run.partial]
    run.notes = [relocate(n) for n in run.notes]
    summary = summarize(run)
    for bad in summary["bad_messages"]:
        bad["line"] = relocate.line(bad["file"], bad["line"])
        bad["repetition"] = k
    run.directory = directory
    summary["results_dir"] = str(directory)
    return run, summary


def single(run: Run) -> Repeated:
    """A single run as a repeated one of one repetition."""
    return Repeated(run, {}, [(1, run, summarize(run))], {1: None}, DEFAULT_LEVEL, False)


def load_any(directory: Path, warn, allow_partial: bool) -> Repeated:
    """A results directory, merged repetitions or a single run."""
    if is_repeated(directory):
        return load_repeated(directory, warn, allow_partial)
    return single(load_run(directory, warn, allow_partial))


# --------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------


def metric_rows(summaries: list[dict]) -> list[dict]:
    """Each kind's headline rows over the summaries, as Kind.compare adds
    them: name, kind, unit, better, value per summary (None: absent), bad
    per summary (the row's messages failed their check)."""
    rows = []
    for kind in KINDS:
        def add(name, unit, better, values, per=None, kind=kind):
            if kind.headline_figure(name) and any(v is not None for v in values):
                rows.append({"name": name, "kind": kind, "unit": unit, "better": better,
                             "values": [None if v is None else float(v) for v in values],
                             "bad": [bool(r and r.get("errors")) for r in per]
                             if per is not None else [False] * len(values)})

        kind.compare(summaries, add)
    return rows


def describe(values: list[float], level: float) -> dict:
    """median, IQR, the interval at level (percent) with its achieved
    coverage (percent), the count, the coefficient of variation and whether
    it is unstable."""
    low, high, cover = intervals.median_interval(values, level / 100)
    spread = intervals.cv(values)
    return {"median": float(np.median(values)), "iqr": intervals.iqr(values),
            "ci_low": low, "ci_high": high, "ci_level": 100 * cover,
            "repetitions": len(values), "cv": spread,
            "unstable": spread is not None and spread > intervals.UNSTABLE_CV}


def figures(rep: Repeated) -> list[dict]:
    """The headline figures of a run across its repetitions (see the module's
    note), each row: name, kind (the Kind, for formatting), unit, better,
    values (per repetition, None where absent), repetition numbers, bad,
    and describe()'s fields over the values present."""
    found = []
    numbers = [k for k, _, _ in rep.reps]
    for row in metric_rows(rep.summaries):
        present_values = [v for v in row["values"] if v is not None]
        row.update(per_repetition=numbers, **describe(present_values, rep.level))
        found.append(row)
    return found


def settled(fig: dict, level: float, width_pct: float) -> tuple[bool, float | None]:
    """Whether a figure's interval is narrow enough: its half-width within
    width_pct % of its median, at a coverage of at least level %; and that
    half-width in percent (None for a median of 0)."""
    half = (fig["ci_high"] - fig["ci_low"]) / 2
    if fig["median"] == 0:
        return half == 0 and fig["ci_level"] >= level, None
    pct = 100 * half / abs(fig["median"])
    return pct <= width_pct and fig["ci_level"] >= level - 1e-9, pct


def public(fig: dict) -> dict:
    """A figure as summary.json has it."""
    return {k: (v.name if k == "kind" else v) for k, v in fig.items()}


def value_text(fig: dict, value) -> str:
    """A figure's value as its kind's comparison writes it: times in the
    unit of the median, rates to four significant digits."""
    if value is None:
        return "-"
    kind = fig["kind"]
    m = {"unit": fig["unit"], "values": [v for v in fig["values"] if v is not None],
         "metric": fig["name"], "_kind": kind}
    if fig["unit"] == "ns":
        return fmt_time(value, pick_unit(fig["median"]))
    if kind.metric_text and fig["unit"] != "GB/s":
        return kind.metric_text(m, value, pick_unit(fig["median"]))
    return fmt_sig(value)


def unit_text(fig: dict) -> str:
    return pick_unit(fig["median"])[0] if fig["unit"] == "ns" else fig["unit"]


def interval_text(fig: dict) -> str:
    """'231.0 [220.0, 260.0]'."""
    return (f"{value_text(fig, fig['median'])} [{value_text(fig, fig['ci_low'])}, "
            f"{value_text(fig, fig['ci_high'])}]")


# --------------------------------------------------------------------------
# The host while each repetition ran
# --------------------------------------------------------------------------


def number(value, integer: bool = False) -> float | None:
    """A host_load.json figure, if it is one (the file is input)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0 or (integer and value != int(value)):
        return None
    return float(value)


def elapsed_s(info: dict | None) -> float | None:
    """Seconds from run.json's start_time to its end_time, if both read."""
    try:
        start, end = (datetime.fromisoformat(str(info[k]).replace("Z", "+00:00"))
                      for k in ("start_time", "end_time"))
    except (KeyError, TypeError, ValueError):
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds > 0 else None


def busy(load, info: dict | None) -> list[str]:
    """Why the host was busy during a repetition (BUSY_RULE), from its
    host_load.json; [] when it was not or nothing says."""
    if not isinstance(load, dict):
        return []
    before, after = load.get("before"), load.get("after")
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    cpus = number(after.get("cpus"), True) or number(before.get("cpus"), True)
    why = []
    for when, part in (("before", before), ("after", after)):
        avg = number(part.get("loadavg_1m"))
        if cpus and avg is not None and avg > BUSY_LOAD * cpus:
            why.append(f"load average {avg:g} {when} it, with {cpus:g} CPUs")
    s0, s1 = number(before.get("steal_jiffies"), True), number(after.get("steal_jiffies"), True)
    seconds = elapsed_s(info)
    if cpus and s0 is not None and s1 is not None and seconds:
        share = (s1 - s0) / (seconds * cpus * USER_HZ)
        if share > BUSY_STEAL:
            why.append(f"steal time {100 * share:.1f} % of its CPU time")
    return why


# --------------------------------------------------------------------------
# summary.json, the text report, the page
# --------------------------------------------------------------------------


def label(rep: Repeated) -> str:
    """The run's label with its number of repetitions."""
    n = len(rep.reps)
    base = run_label(Run(rep.whole.directory, rep.whole.info))
    return (f"{base}, {n} repetition{'s' if n > 1 else ''}"
            + (" [PARTIAL]" if rep.whole.partial else ""))


def summarize_repeated(rep: Repeated, figs: list[dict]) -> dict:
    """summary.json of a merged run: the usual header, the repetitions, the
    figures with their intervals, and each repetition's kinds' entries."""
    meta = rep.meta
    per = {p["repetition"]: p for p in meta.get("per_repetition", [])}
    repetitions = []
    for k, run, s in rep.reps:
        own = per.get(k, {}).get("run")
        entry = {"repetition": k, "run_id": s["run_id"], "status": s["status"],
                 "partial": s["partial"], "partial_reasons": s["partial_reasons"],
                 "notes": s["notes"], "host_load": rep.host_load.get(k),
                 "busy": busy(rep.host_load.get(k), own if isinstance(own, dict) else run.info)}
        entry.update({kind.key: s[kind.key] for kind in KINDS if kind.key in s})
        repetitions.append(entry)
    return {
        "tool": PROG,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "results_dir": str(rep.whole.directory),
        "label": label(rep),
        "run": rep.whole.info,
        "run_id": rep.whole.run_id,
        "status": rep.whole.status,
        "partial": bool(rep.whole.partial),
        "partial_reasons": rep.whole.partial,
        "notes": rep.whole.notes,
        "percentile_method": "linear interpolation between order statistics "
                             "(numpy 'linear', Hyndman & Fan type 7)",
        "std_method": "sample (n-1)",
        "repetitions": {
            "count": len(rep.reps),
            "analysed": [k for k, _, _ in rep.reps],
            "plan": meta.get("plan"), "ci": meta.get("ci"), "stopped": meta.get("stopped"),
            "unsettled": meta.get("unsettled"),
            "interval": INTERVAL, "level": rep.level,
            "unstable_rule": UNSTABLE_RULE, "busy_rule": BUSY_RULE,
        },
        "figures": [public(f) for f in figs],
        "per_repetition": repetitions,
        "bad_messages": [b for s in rep.summaries for b in s["bad_messages"]],
    }


def unstable_lines(figs: list[dict]) -> list[str]:
    return [f"{f['name']}: varies by {f['cv']:.1%} across {f['repetitions']} repetitions "
            f"(median {interval_text(f)} {unit_text(f)})" for f in figs if f["unstable"]]


def bad_lines(summary: dict) -> list[str]:
    return [f"repetition {b['repetition']}: {b['file']} line {b['line']}: {b['point']}: "
            f"{b['errors']:,} bad message{'s' if b['errors'] > 1 else ''}"
            for b in summary["bad_messages"]]


def busy_lines(summary: dict) -> list[str]:
    return [f"repetition {p['repetition']}: " + "; ".join(p["busy"])
            for p in summary["per_repetition"] if p["busy"]]


def figure_table(summary: dict, figs: list[dict], page_mode: bool = False) -> tuple:
    """(head, rows) of the figures: median [low, high], the coverage, IQR,
    CV and each repetition's value (up to 12 repetitions)."""
    reps = summary["repetitions"]["analysed"]
    shown_reps = reps if len(reps) <= 12 else []
    head = ["figure", "unit", "better", "median [interval]", "level %", "IQR", "CV %"] \
        + [f"rep {k}" for k in shown_reps]
    rows = []
    for f in figs:
        flag = (" UNSTABLE" if f["unstable"] else "") + (" BAD" if any(f["bad"]) else "")
        cells = [f["name"] + flag, unit_text(f), f["better"], interval_text(f),
                 f"{f['ci_level']:.1f}", value_text(f, f["iqr"]),
                 "-" if f["cv"] is None else f"{100 * f['cv']:.1f}"]
        cells += [value_text(f, v) for v in f["values"]] if shown_reps else []
        rows.append(page.Row(cells, "bad" if f["unstable"] or any(f["bad"]) else "")
                    if page_mode else cells)
    return head, rows


def interval_note(summary: dict) -> str:
    r = summary["repetitions"]
    return (f"Each figure: the median of its {r['count']} repetitions and the {INTERVAL} at "
            f"{r['level']:g} % (level %: the coverage it achieves; with too few repetitions "
            "to reach the level, [min, max] and its lower coverage). UNSTABLE: "
            f"{UNSTABLE_RULE}.")


def series_line(summary: dict) -> str:
    r = summary["repetitions"]
    ci = r["ci"]
    parts = [f"{r['count']} repetition{'s' if r['count'] > 1 else ''} analysed"]
    if r["plan"] is not None:
        parts.append(f"plan {r['plan']}")
    if ci:
        parts.append(f"--ci {ci.get('level'):g},{ci.get('width_pct'):g}")
    if r["stopped"]:
        parts.append(f"stopped: {r['stopped']}")
    if r["unsettled"]:
        parts.append("not settled: " + ", ".join(map(str, r["unsettled"])))
    return "; ".join(parts)


def repetition_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    head = ["rep", "run id", "status", "load before", "load after", "CPUs", "busy"]
    rows = []
    for p in summary["per_repetition"]:
        load = p["host_load"] if isinstance(p["host_load"], dict) else {}
        part = [load.get(w) if isinstance(load.get(w), dict) else {}
                for w in ("before", "after")]
        rows.append([str(p["repetition"]), str(p["run_id"] or "-"),
                     str(p["status"] or "no status") + (" PARTIAL" if p["partial"] else ""),
                     str(part[0].get("loadavg_1m", "-")), str(part[1].get("loadavg_1m", "-")),
                     str(part[1].get("cpus", part[0].get("cpus", "-"))),
                     "BUSY" if p["busy"] else "-"])
    return head, rows


def render_text(summary: dict, figs: list[dict]) -> str:
    title = f"ivshmem-bench performance report: {summary['label']}"
    lines = [title, "=" * len(title)]
    if summary["partial"]:
        lines += partial_banner(summary["partial_reasons"])
    if summary["bad_messages"]:
        lines.append("*** BAD MESSAGES: rows whose messages failed their check (errors > 0) "
                     "***")
        lines += [f"  - {line}" for line in bad_lines(summary)]
        lines += ["  Their figures are not of a channel that works; marked BAD below.", ""]
    unstable, host = unstable_lines(figs), busy_lines(summary)
    if unstable:
        many = "s vary" if len(unstable) > 1 else " varies"
        lines += [f"*** UNSTABLE: {len(unstable)} figure{many} too much between repetitions "
                  f"({UNSTABLE_RULE}) ***"]
        lines += [f"  - {l}" for l in unstable] + [""]
    if host:
        lines += [f"*** BUSY HOST during {len(host)} repetition{'s' if len(host) > 1 else ''} "
                  f"({BUSY_RULE}) ***"]
        lines += [f"  - {l}" for l in host] + [""]
    lines += [f"Results:   {summary['results_dir']}", f"Generated: {summary['generated']}"]
    if summary["run"]:
        lines.append("Run (from run.json, the last repetition's; the repetitions below):")
        lines += ["  " + l for l in table([[k, v] for k, v in flatten(summary["run"])], "ll")]
    else:
        lines.append("Run: no run.json in the results directory")
    if summary["notes"]:
        lines.append("Notes:")
        lines += [f"  - {n}" for n in summary["notes"]]
    lines += ["", PERCENTILE_NOTE, "", "REPETITIONS", "-----------", series_line(summary)]
    head, rows = repetition_rows(summary)
    lines += ["  " + l for l in table([head] + rows, "lll")]
    lines += ["", interval_note(summary), ""]
    head, rows = figure_table(summary, figs)
    lines += ["  " + l for l in table([head] + rows, "lll")] if rows else \
        ["  (no headline figure in these results)"]
    for p in summary["per_repetition"]:
        heading = f"REPETITION {p['repetition']}" \
            + (f" (run {p['run_id']})" if p["run_id"] else "")
        lines += ["", "", heading, "#" * len(heading)]
        if p["partial"]:
            lines += partial_banner(p["partial_reasons"])
        for kind in KINDS:
            if p.get(kind.key):
                lines += kind.text(p[kind.key])
    return "\n".join(lines) + "\n"


def plot_repetitions(summary: dict, figs: list[dict]):
    """Each figure's repetitions as dots, in percent of its median, with its
    interval as a bar: the spread of every figure on one axis."""
    from analysis.plots import headline, pyplot
    plt = pyplot()
    shown_figs = figs[:40]
    fig, ax = plt.subplots(figsize=(11, 0.32 * len(shown_figs) + 1.8), constrained_layout=True)
    headline(fig, f"Repetitions: {summary['label']}", summary["partial_reasons"])
    for y, f in enumerate(shown_figs):
        if not f["median"]:
            continue
        rel = [100 * v / f["median"] for v in f["values"] if v is not None]
        colour = "tab:red" if f["unstable"] else "tab:blue"
        ax.plot([100 * f["ci_low"] / f["median"], 100 * f["ci_high"] / f["median"]], [y, y],
                color=colour, lw=5, alpha=0.35, solid_capstyle="butt")
        ax.plot(rel, [y] * len(rel), "o", color=colour, ms=4)
    ax.axvline(100, color="black", lw=1)
    ax.set_yticks(range(len(shown_figs)))
    ax.set_yticklabels([f["name"] for f in shown_figs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("value in % of the figure's median (bar: the interval; red: unstable)")
    return fig


def repeated_page(rep: Repeated, summary: dict, figs: list[dict], drawn, out: Path,
                  plots: bool) -> str:
    facts = [Fact(f["name"], value_text(f, f["median"]), unit_text(f), f["median"],
                  f"figures.{i}.median",
                  f"[{value_text(f, f['ci_low'])}, {value_text(f, f['ci_high'])}]: "
                  f"{f['ci_level']:.1f} % interval, {f['repetitions']} reps")
             for i, f in enumerate(figs[:12])]
    banners = []
    if summary["partial"]:
        banners.append(page.banner("PARTIAL RESULTS: these figures do not describe complete "
                                   "repetitions", summary["partial_reasons"], "bad"))
    if summary["bad_messages"]:
        banners.append(page.banner("BAD MESSAGES: rows whose messages failed their check "
                                   "(errors > 0); their figures are not of a channel that "
                                   "works", bad_lines(summary), "bad"))
    unstable, host = unstable_lines(figs), busy_lines(summary)
    if unstable:
        banners.append(page.banner(f"UNSTABLE: {len(unstable)} figure(s) vary too much between "
                                   f"repetitions ({UNSTABLE_RULE})", unstable))
    if host:
        banners.append(page.banner(f"BUSY HOST during {len(host)} repetition(s) "
                                   f"({BUSY_RULE})", host))
    if tcg_warning(summary["run"]):
        banners.append(page.banner(tcg_warning(summary["run"]), []))
    head, rows = figure_table(summary, figs, page_mode=True)
    rh, rr = repetition_rows(summary)
    body = page.join(page.para(series_line(summary)), page.table(rh, rr, "lll"),
                     page.para(interval_note(summary), "note"),
                     page.table(head, rows, "lll") if rows else
                     page.para("No headline figure in these results.", "note"),
                     page.figures(drawn, "" if plots else "Plots not drawn (--no-plots)."),
                     page.links([(name, str(rep.whole.directory / name))
                                 for name in rep.whole.files]
                                + [(RUN_JSON, str(rep.whole.directory / RUN_JSON))], out))
    sections = [page.section("Repetitions", body, "repetitions")]
    toc = [("Repetitions", "repetitions"), ("Provenance", "provenance")]
    for p in summary["per_repetition"]:
        parts = [page.details(f"{kind.title}", kind.html(p[kind.key]))
                 for kind in KINDS if p.get(kind.key)]
        if p["partial"]:
            parts.insert(0, page.items(p["partial_reasons"], "note"))
        anchor = f"rep-{p['repetition']}"
        sections.append(page.section(f"Repetition {p['repetition']}", page.join(
            page.para(f"run {p['run_id'] or '-'}, status {p['status'] or 'not recorded'}; its "
                      f"plots: analyze_results.py {rep.whole.directory}/rep-"
                      f"{p['repetition']}", "note"), *parts), anchor))
        toc.append((f"rep {p['repetition']}", anchor))
    status = summary["status"] or "no status recorded"
    parts = [page.facts(facts), *banners, page.contents(toc), sections[0],
             page.section("Provenance", provenance_part(summary["run"], summary["notes"]),
                          "provenance"), *sections[1:]]
    footer = (PERCENTILE_NOTE.replace("\n", " ") + f" Written by {PROG} at "
              f"{summary['generated']}; the figures are in summary.json and "
              "performance_report.txt beside this page.")
    return page.page(f"ivshmem-bench: {summary['label']}",
                     f"{summary['results_dir']} · run status: {status}", parts, footer)


def analyze_repeated(directory: Path, out: Path, plots: bool, allow_partial: bool, say,
                     warn) -> int:
    """Every output of a merged directory of repetitions into out; the exit
    status (1 when a repetition's messages failed their check)."""
    rep = load_repeated(directory, warn, allow_partial)
    figs = figures(rep)
    summary = summarize_repeated(rep, figs)
    out.mkdir(parents=True, exist_ok=True)
    report = render_text(summary, figs)
    written = [write_text(out / "performance_report.txt", report),
               write_json(out / "summary.json", summary)]
    drawn = []
    if plots and figs:
        drawn = render([Plot("repetitions.png",
                             "Each headline figure's repetitions (dots) in percent of its "
                             "median, its interval as a bar; unstable figures in red.",
                             lambda: plot_repetitions(summary, figs))], out, page=True)
        written += [d.path for d in drawn]
    written.append(write_text(out / page.PAGE_FILE,
                              repeated_page(rep, summary, figs, drawn, out, plots)))
    say(report)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_bad_data([run for _, run, _ in rep.reps], rep.summaries)
