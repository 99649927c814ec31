"""
repeat - what run_test.sh --repeat asks of the analysis, as a command line:

    /usr/bin/python3 -m analysis.repeat settled OUT --ci LEVEL,WIDTH
    /usr/bin/python3 -m analysis.repeat merge OUT --plan SPEC --stopped WHY [--ci LEVEL,WIDTH]

(run from the tree's top directory, where analysis/ is). OUT holds the
repetitions rep-1/, rep-2/, ..., each a complete results directory with
its run.json, CSVs and the shell's host_load.json ({"before": {"loadavg_1m",
"steal_jiffies", "cpus"}, "after": {...}}).

settled: after each repetition, whether every headline figure (see
repeated.py) has settled: the half-width of its exact interval for the
median at LEVEL % is within WIDTH % of the median, and the interval reaches
that level at all (at 95 % it cannot with fewer than 6 repetitions: it is
[min, max], whose coverage is 1 - 2 * 0.5^n; see intervals.py). Exit 0 when
every figure has settled; 1 when not, one line on stdout per figure that
has not ("latency p50: median 231.0 ns, 95 % interval [220.0, 260.0] =
+-8.7 %, wanted +-5 %"); 2 on an error, one line on stderr (bad --ci, no
repetition, a repetition that cannot be read or is partial).

merge: once the repetitions are over. Writes into OUT:
  - each results CSV found in the repetitions (latency_results.csv, ...,
    transports/transport_results.csv), their rows in repetition order with
    a new first column `repetition` (the N of rep-N), the header once. The
    headers must agree; blank lines are dropped, and so is a last line cut
    short by a killed writer (not data: per_repetition's "cut" names it).
  - run.json: the last repetition's (the last one that has one), with
    "files" the merged row counts, "status" the series' (below), and a
    "repetitions" object: {"count", "plan": SPEC, "ci": {"level",
    "width_pct"} or null, "stopped": WHY, "unsettled": [figure names] (with
    --ci), "interval": "exact order-statistic interval for the median
    (binomial)", "per_repetition": [{"repetition", "run_id", "status" (its
    run.json's), "host_load" (its host_load.json, or null), "files" (its
    rows per merged file), "cut" (lines cut short, when any), "run" (its
    whole run.json, which the analysis checks it against)}, ...]}.
  - a subdirectory's run.json (transports/run.json): the last one, its
    "files" the merged row counts.
The series' status is "complete" when WHY is done, settled or max reached
and every repetition's run.json says "complete"; otherwise "partial" (a
repetition failed, was interrupted or has no run.json, or the series was
interrupted or failed), which the analysis refuses without --allow-partial
and reports with each repetition's reasons. Every file is written to a
temporary file beside it and renamed into place (an interrupted merge leaves
the previous file), never through a symbolic link. Exit 0, or 2 with one
line on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from analysis.errors import DataError, PartialError
from analysis.intervals import coverage
from analysis.repeated import (INTERVAL, MAX_REPETITIONS, REPETITION, STOPPED, Repeated,
                               figures, result_paths, settled, unit_text,
                               value_text)
from analysis.report import write_json
from analysis.run import Run, load_run, summarize
from analysis.runinfo import RUN_JSON, load_run_info
from analysis.stats import finite
from analysis.tables import check_text, present, read_bytes

PROG = "analysis.repeat"
HOST_LOAD = "host_load.json"
EXIT_OK, EXIT_NOT_SETTLED, EXIT_ERROR = 0, 1, 2
REP_DIR = re.compile(r"rep-([1-9][0-9]{0,4})")


class Failure(Exception):
    """An error: one line on stderr, exit 2."""


# --------------------------------------------------------------------------
# The command line's values
# --------------------------------------------------------------------------


def parse_ci(text: str) -> tuple[float, float]:
    """'95,5' -> (95.0, 5.0): LEVEL in 50..99.99 %, WIDTH above 0 and at most
    100 (% of the median)."""
    level_text, comma, width_text = text.partition(",")
    try:
        level, width = float(level_text), float(width_text)
    except ValueError:
        level = width = float("nan")
    if not comma or not 50 <= level <= 99.99 or not 0 < width <= 100:
        raise Failure(f"--ci {text}: expected LEVEL,WIDTH: LEVEL the confidence in percent "
                      "(50..99.99), WIDTH the interval's half-width in percent of the median "
                      "(above 0, at most 100), e.g. --ci 95,5")
    return level, width


def parse_plan(text: str) -> str:
    """'5' or '3..20': a count or a range of repetitions, 1..MAX_REPETITIONS."""
    m = re.fullmatch(r"([0-9]{1,5})(?:\.\.([0-9]{1,5}))?", text)
    low = int(m.group(1)) if m else 0
    high = int(m.group(2) or low) if m else 0
    if not m or not 1 <= low <= high <= MAX_REPETITIONS:
        raise Failure(f"--plan {text}: expected N or MIN..MAX, repetitions from 1 to "
                      f"{MAX_REPETITIONS:,}, MIN at most MAX")
    return text


def plain(value: float) -> float | int:
    """95.0 as 95 (run.json says what was asked, as it was written)."""
    return int(value) if float(value).is_integer() else value


def rep_dirs(out: Path) -> list[tuple[int, Path]]:
    """OUT's rep-N directories, by N."""
    if not out.is_dir():
        raise Failure(f"{out}: not a directory")
    found = sorted((int(m.group(1)), p) for p in out.iterdir()
                   if (m := REP_DIR.fullmatch(p.name)) and p.is_dir())
    if not found:
        raise Failure(f"{out}: no repetition (rep-1/, rep-2/, ...) in it")
    return found


def read_json(path: Path):
    """A JSON object written by run_test.sh or host_writer, or None when
    there is none; Failure when it cannot be read."""
    if not present(path):
        return None
    try:
        return load_run_info(path)
    except DataError as e:
        raise Failure(str(e)) from None


# --------------------------------------------------------------------------
# settled
# --------------------------------------------------------------------------


def load_reps(out: Path, allow_partial: bool, level: float) -> Repeated:
    """OUT's repetitions, each loaded and summarised as a single run."""
    reps, loads = [], {}
    for k, path in rep_dirs(out):
        try:
            run = load_run(path, lambda _text: None, allow_partial)
        except (DataError, PartialError) as e:
            if allow_partial:
                continue  # nothing of it to analyse
            raise Failure(str(e)) from None
        reps.append((k, run, summarize(run)))
        loads[k] = read_json(path / HOST_LOAD)
    if not reps:
        raise Failure(f"{out}: no repetition with results to analyse")
    return Repeated(Run(out, None), {}, reps, loads, level, True)


def needed(level: float) -> int:
    """The fewest repetitions whose [min, max] reaches level %."""
    n = 1
    while coverage(n, 1) < level / 100 - 1e-12:
        n += 1
    return n


def unsettled_lines(rep: Repeated, level: float, width: float) -> tuple[list[str], list[str]]:
    """(names, lines) of the figures that have not settled."""
    names, lines = [], []
    for fig in figures(rep):
        ok, pct = settled(fig, level, width)
        if ok:
            continue
        names.append(fig["name"])
        unit = unit_text(fig)
        half = "median 0" if pct is None else f"+-{pct:.1f} %"
        if fig["ci_level"] >= level - 1e-9:
            what = f"{level:g} % interval [{value_text(fig, fig['ci_low'])}, " \
                   f"{value_text(fig, fig['ci_high'])}] = {half}"
        else:
            what = (f"[min, max] = [{value_text(fig, fig['ci_low'])}, "
                    f"{value_text(fig, fig['ci_high'])}] = {half}, covers only "
                    f"{fig['ci_level']:.1f} % with {fig['repetitions']} repetition"
                    f"{'s' if fig['repetitions'] > 1 else ''} ({level:g} % needs "
                    f"{needed(level)})")
        lines.append(f"{fig['name']}: median {value_text(fig, fig['median'])} {unit}, "
                     f"{what}, wanted +-{width:g} %")
    return names, lines


def cmd_settled(args) -> int:
    level, width = parse_ci(args.ci)
    rep = load_reps(Path(args.out), False, level)
    if not figures(rep):
        raise Failure(f"{args.out}: no headline figure in the repetitions' results")
    _, lines = unsettled_lines(rep, level, width)
    for line in lines:
        print(line)
    return EXIT_NOT_SETTLED if lines else EXIT_OK


# --------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------


def target(out: Path, name: str) -> Path:
    """OUT/name to be written: Failure when it, or a directory on the way
    inside OUT, is a symbolic link (a write must not land elsewhere)."""
    path = out
    for part in Path(name).parts:
        path = path / part
        if path.is_symlink():
            raise Failure(f"{path}: is a symbolic link: refusing to write through it")
    return path


def merge_csv(out: Path, name: str, found: list[tuple[int, Path]]) -> tuple[dict, dict]:
    """Write OUT/name from each repetition's file (see the module's note):
    ({repetition: rows}, {repetition: the line cut short, described})."""
    path = target(out, name)
    header, rows, cut, chunks = None, {}, {}, []
    for k, source in found:
        try:
            data = read_bytes(source)
            check_text(source, data)
        except DataError as e:
            raise Failure(str(e)) from None
        data = data.removeprefix(b"\xef\xbb\xbf")
        end = data.rfind(b"\n") + 1
        if data[end:].strip():
            line = data.count(b"\n", 0, end) + 1
            cut[k] = f"{name}: line {line} cut short (no end of line): left out"
        if end == 0:
            continue  # no complete line: nothing of it to merge
        first = data.find(b"\n") + 1
        head = data[:first].rstrip(b"\r\n")
        if head.split(b",", 1)[0].strip() == REPETITION.encode():
            raise Failure(f"{source}: already has a {REPETITION} column (a merged run "
                          "inside a repetition?)")
        if header is None:
            header, header_from = head, source
        elif head.strip() != header.strip():
            raise Failure(f"{source}: its header differs from {header_from}'s: the "
                          "repetitions did not write the same columns")
        prefix = b"%d," % k
        lines = [prefix + line for line in data[first:end].split(b"\n")[:-1] if line.strip()]
        rows[k] = len(lines)
        chunks.append(b"\n".join(lines) + b"\n" if lines else b"")
    if header is None:
        return rows, cut
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(REPETITION.encode() + b"," + header + b"\n")
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows, cut


def series_status(stopped: str, per: list[dict]) -> str:
    """'complete', or 'partial' (see the module's note)."""
    if stopped in ("interrupted", "failed"):
        return "partial"
    if any(p["status"] != "complete" for p in per):
        return "partial"
    return "complete"


def cmd_merge(args) -> int:
    out = Path(args.out)
    plan = parse_plan(args.plan)
    if args.stopped not in STOPPED:
        raise Failure(f"--stopped {args.stopped}: expected one of " + ", ".join(STOPPED))
    ci = parse_ci(args.ci) if args.ci is not None else None
    reps = rep_dirs(out)
    per = []
    for k, path in reps:
        info = read_json(path / RUN_JSON)
        status = info.get("status") if info else None
        per.append({"repetition": k,
                    "run_id": info.get("run_id") if info else None,
                    "status": status if isinstance(status, str) else None,
                    "host_load": read_json(path / HOST_LOAD), "files": {}, "run": info})
    totals = {}
    for name in result_paths():
        found = [(k, path / name) for k, path in reps if present(path / name)]
        if not found:
            continue
        rows, cut = merge_csv(out, name, found)
        if rows:
            totals[name] = sum(rows.values())
        for p in per:
            if p["repetition"] in rows:
                p["files"][name] = rows[p["repetition"]]
            if p["repetition"] in cut:
                p.setdefault("cut", []).append(cut[p["repetition"]])
    last = next((p["run"] for p in reversed(per) if p["run"] is not None), None)
    info = dict(last or {})
    info["files"] = {n: rows for n, rows in totals.items() if "/" not in n}
    info["status"] = series_status(args.stopped, per)
    meta = {"count": len(per), "plan": plan,
            "ci": {"level": plain(ci[0]), "width_pct": plain(ci[1])} if ci else None,
            "stopped": args.stopped}
    if ci:
        try:
            rep = load_reps(out, True, ci[0])
            meta["unsettled"] = unsettled_lines(rep, *ci)[0]
        except Failure as e:
            meta["unsettled"] = None
            sys.stderr.write(f"{PROG}: warning: figures not judged: {e}\n")
    meta["interval"] = INTERVAL
    meta["per_repetition"] = [{k: v for k, v in p.items() if k != "run"} | {"run": p["run"]}
                              for p in per]
    info["repetitions"] = meta
    for sub in sorted({n.rsplit("/", 1)[0] for n in totals if "/" in n}):
        own = next((read_json(path / sub / RUN_JSON) for _, path in reversed(reps)
                    if present(path / sub / RUN_JSON)), None)
        if own is not None:
            own["files"] = {n.split("/")[-1]: rows for n, rows in totals.items()
                            if n.startswith(sub + "/")}
            write_json(target(out, f"{sub}/{RUN_JSON}"), own)
    write_json(target(out, RUN_JSON), finite(info))
    merged = ", ".join(f"{n} ({rows:,} rows)" for n, rows in totals.items()) or "no CSV"
    if not args.quiet:
        print(f"{PROG}: merged {len(per)} repetition{'s' if len(per) > 1 else ''} into {out}: "
              f"{merged}; status {info['status']}, stopped: {args.stopped}")
    return EXIT_OK


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, its errors as one line (exit 2), as run_test.sh reads them."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{PROG}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=f"python3 -m {PROG}", description=(
        "The analysis's side of run_test.sh --repeat: whether the repetitions in OUT "
        "have settled, and merging them into OUT."))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    s = sub.add_parser("settled", help="exit 0 when every headline figure has settled, "
                                       "1 (a line per figure) when not, 2 on an error")
    s.add_argument("out", metavar="OUT")
    s.add_argument("--ci", required=True, metavar="LEVEL,WIDTH",
                   help="confidence in percent, half-width in percent of the median: 95,5")
    m = sub.add_parser("merge", help="merge OUT/rep-*/ into OUT")
    m.add_argument("out", metavar="OUT")
    m.add_argument("--plan", required=True, metavar="SPEC", help="N or MIN..MAX")
    m.add_argument("--stopped", required=True, metavar="WHY", help=", ".join(STOPPED))
    m.add_argument("--ci", metavar="LEVEL,WIDTH")
    m.add_argument("--quiet", "-q", action="store_true", help="no line saying what was merged")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return cmd_settled(args) if args.command == "settled" else cmd_merge(args)
    except Failure as e:
        sys.stderr.write(f"{PROG}: {e}\n")
    except DataError as e:
        sys.stderr.write(f"{PROG}: {e}\n")
    except OSError as e:
        sys.stderr.write(f"{PROG}: {e.filename or ''}: {e.strerror or e}\n")
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
