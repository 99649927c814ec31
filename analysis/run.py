"""
run - one results directory: its files loaded through the kinds, what makes
them partial (run.json's status, files it does not list, rows missing, a
row cut short), the notes a reader needs, and summary.json's figures.

load_run() reads every kind's files in the order of the table, checks each
against run.json, refuses partial results unless allowed (PartialError),
then lets each kind assemble its data (a rate point's histograms with its
row, say). summarize() asks each kind for its entry; bad_messages() gathers
the rows whose messages failed their check, as every output names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from analysis.errors import PROG, DataError, PartialError
from analysis.kinds import KINDS, RESULT_FILES
from analysis.runinfo import (RUN_JSON, Provenance, load_run_info, provenance, row_problem,
                              status_problem)
from analysis.tables import present


@dataclass
class Run:
    """Everything read from one results directory."""

    directory: Path
    info: dict | None                     # run.json, None without one
    data: dict[str, Any] = field(default_factory=dict)   # kind name -> its data (None: no rows)
    notes: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  # why the results are partial
    status: str | None = None
    run_id: str | None = None
    files: list[str] = field(default_factory=list)    # the CSVs read, relative to directory


def load_run(directory: Path, warn, allow_partial: bool) -> Run:
    """Load a results directory and check that its files belong to one
    finished run. Partial results raise PartialError unless allow_partial;
    then Run.partial says why and only this run's files are used."""
    if not present(directory):
        raise DataError(f"{directory}: no such directory")
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    # Kinds whose files another program wrote into a subdirectory of the run.
    beside = [k for k in KINDS if k.subdir and not any(
        present(directory / s.file) for s, _ in k.files)
        and any(present(directory / k.subdir / s.file) for s, _ in k.files)]
    if not any(present(directory / name) for name in RESULT_FILES) and not beside:
        raise DataError(f"{directory}: no results: none of {', '.join(RESULT_FILES)} "
                        "found")
    info_path = directory / RUN_JSON
    info = load_run_info(info_path) if present(info_path) else None
    prov = provenance(info_path, info)
    run = Run(directory, info, status=prov.status, run_id=prov.run_id)
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
    own = [(kind, schema, load) for kind in KINDS if kind not in beside
           for schema, load in kind.files]
    loaded, absent = load_files(run, directory, own, prov)
    provs = {kind.name: (prov, info_path) for kind in KINDS}
    for kind in beside:
        got, sub_prov, sub_info = load_dir(run, directory / kind.subdir, kind.files,
                                           f"{kind.subdir}/")
        loaded.update(got)
        provs[kind.name] = (sub_prov, sub_info)
    for kind in KINDS:
        if not any(s.file in loaded for s, _ in kind.files):
            continue
        for sub, files in kind.extra:
            if present(directory / sub):
                got, _, _ = load_dir(run, directory / sub, files, f"{sub}/")
                loaded.update({f"{sub}/{name}": result for name, result in got.items()})
    # A companion file goes with its kind's rows; an extra one with its kind.
    companions = {schema.file for kind in KINDS for schema, _ in kind.files[1:]} | {
        name for name in loaded if "/" in name}
    for name, result in loaded.items():
        # A companion file may be empty (a histogram file when every point
        # received nothing): it is checked against its kind's rows.
        if result.frame is None and not run.partial and prov.files is None \
                and name not in companions:
            raise DataError(f"{result.path}: header but no data rows")
    if run.partial and not allow_partial:
        raise PartialError(f"{directory}: partial results: " + "; ".join(run.partial)
                           + " (--allow-partial analyses what is there)")
    for name, result in loaded.items():
        if result.frame is None and name not in companions:
            run.notes.append(f"{name} has no data rows: its section is skipped")
    for kind in KINDS:
        mine = {s.file: loaded[s.file] for s, _ in kind.files if s.file in loaded}
        if mine:
            mine.update({name: loaded[name] for sub, _ in kind.extra for name in loaded
                         if name.startswith(f"{sub}/")})
        run.data[kind.name] = kind.assemble(run, mine, *provs[kind.name]) if mine else None
    run.files = [str(result.path.relative_to(directory)) for result in loaded.values()
                 if result.frame is not None]
    if all(data is None for data in run.data.values()):
        if run.partial:
            raise PartialError(f"{directory}: nothing of this run to analyse: "
                               + "; ".join(run.partial))
        raise DataError(f"{directory}: no data rows in " + " or ".join(loaded))
    for kind in KINDS:
        if run.data[kind.name] is not None:
            run.notes += kind.absent_notes(run.data[kind.name], absent)
    if absent and prov.files is None:
        # With a list of the files the run wrote, one it did not list is a
        # workload it did not run: nothing to note. The files another
        # program writes beside the run (transports/) are no run's own.
        mine = [name for name in absent if name in OWN_FILES]
        if mine:
            run.notes.append(", ".join(mine) + " not found: "
                             + ("its section is" if len(mine) == 1 else "their sections are")
                             + " skipped")
    for kind in KINDS:
        if run.data[kind.name] is not None:
            run.notes += kind.data_notes(run.data[kind.name])
    if untied:
        warn(f"{directory}: {untied}")
    if run.partial:
        warn(f"{directory}: PARTIAL results: " + "; ".join(run.partial))
    return run


def load_files(run: Run, directory: Path, files: list, prov: Provenance,
               where: str = "") -> tuple[dict, list]:
    """Read each (kind, schema, loader) of files in directory and hold it to
    prov (run.json's files and status): what makes the results partial goes
    to run.partial, named with where (the subdirectory, for files beside the
    run). Returns ({file name: Loaded}, [files not found])."""
    loaded, absent = {}, []
    listing = f"{where}{RUN_JSON}"
    for _, schema, load in files:
        name = schema.file
        path, listed = directory / name, (prov.files or {}).get(name)
        if not present(path):
            absent.append(name)
            if listed is not None:
                run.partial.append(f"{listing} lists {where}{name} ({listed:,} rows) but it "
                                   "is missing")
            continue
        if prov.files is not None and listed is None:
            run.partial.append(f"{where}{name} is not in {listing}'s files: another run "
                               "wrote it; left out")
            continue
        result = loaded[name] = load(path)
        if result.cut:
            run.partial.append(f"{where}{name}: {result.cut}")
        if listed is not None:
            problem = row_problem(f"{where}{name}", result.rows, listed, prov.status)
            if problem:
                run.partial.append(problem.replace("run.json", listing))
    return loaded, absent


def load_dir(run: Run, sub: Path, files, where: str) -> tuple[dict, Provenance, Path]:
    """files ((Schema, loader), ...) in sub, a results directory inside the
    run with its own run.json (transport_bench's transports/, say): held to
    that run.json as the run's own files are to theirs, what makes them
    partial named with where ("transports/")."""
    info_path = sub / RUN_JSON
    info = load_run_info(info_path) if present(info_path) else None
    prov = provenance(info_path, info)
    problem = status_problem(prov)
    if problem:
        run.partial.append(f"{where}{RUN_JSON}: {problem}")
    if info is None:
        run.notes.append(f"{where}: no run.json: nothing tells whether the program that "
                         "wrote it completed")
    loaded, _ = load_files(run, sub, [(None, s, load) for s, load in files], prov, where)
    return loaded, prov, info_path


# The files whose absence a run without a list of its files is told about:
# those host_writer writes into the directory itself. (The others are no
# run's own: transport_bench's beside it in transports/, run_test.sh's
# matrix_results.csv at the top of a matrix.)
OWN_FILES = tuple(schema.file for kind in KINDS if kind.subdir is None
                  for schema, _ in kind.files if schema.program == "host_writer")


# --------------------------------------------------------------------------
# summary.json
# --------------------------------------------------------------------------


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
    }
    for kind in KINDS:
        data = run.data.get(kind.name)
        if data is not None:
            summary[kind.key] = kind.summarize(data, run)
        elif kind.always:
            summary[kind.key] = None
    summary["bad_messages"] = bad_messages(summary)
    return summary


def bad_messages(summary: dict) -> list[dict]:
    """Every row of every kind whose messages failed their check (errors >
    0), where it is written: its figures are not of a channel that works,
    and the report and the exit status say so."""
    bad = []
    for kind in KINDS:
        entry, flagged = summary.get(kind.key), kind.flagged
        if entry and flagged:
            bad += [{"file": flagged.name(entry), "line": row["line"], "point": flagged.point(row),
                     "errors": row["errors"]} for row in flagged.rows(entry) if row["errors"]]
    return bad


def entries(summary: dict):
    """(kind, its summary entry) of each kind with data, in the table's order."""
    return [(kind, summary[kind.key]) for kind in KINDS if summary.get(kind.key)]


# --------------------------------------------------------------------------
# Labels
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
        if info.get("topology") == "vm-vm":
            label += " pair (guest A -> guest B)"
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
