"""
report - the outputs of one run: performance_report.txt (run.json's header,
the banners of partial results and bad messages, then each kind's section),
summary.json, the PNG plots, and report.html, the page a person opens: the
headline figures, the warnings, the provenance, then each kind's tables and
plots with a caption each and links to the CSVs. analyze() writes them all
and returns the exit status; check_bad_data() is the part of it that says,
after everything is written, what makes the status 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from analysis import page
from analysis.errors import EXIT_BAD_DATA, EXIT_OK, PROG
from analysis.plots import render
from analysis.run import Run, entries, load_run, summarize
from analysis.runinfo import RUN_JSON, flatten, provenance_rows
from analysis.stats import clean, finite
from analysis.units import table

PERCENTILE_NOTE = (
    "Percentiles: linear interpolation between order statistics (numpy's\n"
    "default 'linear' method, Hyndman & Fan type 7), the same definition the\n"
    "C harness uses. Std dev is the sample standard deviation (n-1)."
)


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


def partial_banner(reasons: list[str]) -> list[str]:
    """The block that opens a report of partial results."""
    lines = ["*** PARTIAL RESULTS: these figures do not describe one complete run ***"]
    return lines + [f"  - {r}" for r in reasons] + [""]


def bad_what(summary: dict) -> str:
    """'2 stream points and 1 message size': the rows with bad messages,
    counted by kind."""
    bad = summary["bad_messages"]
    counts = [(sum(b["file"] == k.flagged.name(entry) for b in bad), k.flagged.banner)
              for k, entry in entries(summary) if k.flagged]
    return " and ".join(f"{n} {what}{'s' if n > 1 else ''}" for n, what in counts if n)


def bad_banner(summary: dict) -> list[str]:
    """The block that opens a report whose messages failed their check."""
    bad = summary["bad_messages"]
    lines = [f"*** BAD MESSAGES: {bad_what(summary)} had messages that failed their check "
             "(errors > 0) ***"]
    lines += [f"  - {b['file']} line {b['line']}: {b['point']}: {b['errors']:,} bad "
              f"message{'s' if b['errors'] > 1 else ''}" for b in bad]
    return lines + ["  Their figures are not of a channel that works; the rows are "
                    "marked BAD below.", ""]


def report_header(summary: dict) -> list[str]:
    title = f"ivshmem-bench performance report: {summary['label']}"
    lines = [title, "=" * len(title)]
    if summary["partial"]:
        lines += partial_banner(summary["partial_reasons"])
    if summary["bad_messages"]:
        lines += bad_banner(summary)
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


def render_report(summary: dict) -> str:
    lines = report_header(summary)
    for kind, entry in entries(summary):
        lines += kind.text(entry)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def warnings_of(summary: dict) -> list[tuple[str, list[str], str]]:
    """The page's banners: (title, lines, 'bad' or 'warn'): partial
    results, bad messages, a guest under TCG, and each kind's own."""
    found = []
    if summary["partial"]:
        found.append(("PARTIAL RESULTS: these figures do not describe one complete run",
                      summary["partial_reasons"], "bad"))
    if summary["bad_messages"]:
        found.append((f"BAD MESSAGES: {bad_what(summary)} had messages that "
                      "failed their check (errors > 0); their figures are not of a channel "
                      "that works",
                      [f"{b['file']} line {b['line']}: {b['point']}: {b['errors']:,} bad "
                       f"message{'s' if b['errors'] > 1 else ''}"
                       for b in summary["bad_messages"]], "bad"))
    tcg = tcg_warning(summary["run"])
    if tcg:
        found.append((tcg, [], "warn"))
    for kind, entry in entries(summary):
        lines = kind.warnings(entry)
        if len(lines) == 1:
            found.append((f"{kind.title}: {lines[0]}", [], "bad"))
        elif lines:
            found.append((f"{kind.title}: {len(lines)} failures", lines, "bad"))
    return found


def tcg_warning(info: dict | None) -> str:
    """A sentence when the guest ran under TCG (QEMU's emulator, no KVM)."""
    if info and str(info.get("accel", "")).lower() == "tcg":
        return ("Under TCG: the guest's CPU was emulated (no KVM), so every figure with the "
                "guest in it is far slower than on hardware.")
    return ""


def provenance_part(info: dict | None, notes: list[str]) -> page.Markup:
    """run.json's provenance, all of it behind a fold, then the notes."""
    if info:
        parts = [page.pairs(provenance_rows(info)),
                 page.details("All of run.json", page.pairs(flatten(info)))]
    else:
        parts = [page.para("No run.json in the results directory: nothing says which run "
                           "wrote these files or whether it completed.")]
    if notes:
        parts += [page.tag("h3", "Notes"), page.items(notes)]
    return page.join(*parts)


def runs_part(names: list[str], infos: list, files: list, out: Path) -> page.Markup:
    """Several runs' provenance: what is the same for all once, then a row
    per run with what differs and links to its files."""
    rows = [dict(provenance_rows(info)) for info in infos]
    keys = list(dict.fromkeys(k for row in rows for k in row))
    same = [k for k in keys if len({row.get(k) for row in rows}) == 1 and len(rows) > 1
            and k not in ("status", "started", "ended", "run id")]
    differ = [k for k in keys if k not in same and k != "run id"]
    parts = []
    if same:
        parts += [page.tag("h3", "The same for every run"),
                  page.pairs([(k, rows[0][k]) for k in same])]
    head = ["run", *differ, "files"]
    body = [[name] + [row.get(k, "-") for k in differ] + [page.links(found, out, inline=True)]
            for name, row, found in zip(names, rows, files)]
    parts += [page.tag("h3", "Each run"), page.table(head, body, "l" * len(head))]
    return page.join(*parts)


def kind_links(kind, run: Run, entry: dict) -> list[tuple[str, str]]:
    """The files of a kind's section, as (text, path)."""
    found = [(s.file, str(run.directory / s.file)) for s, _ in kind.files
             if s.file in run.files]
    return found + [(text, str(run.directory / path)) for text, path in kind.links(entry)]


def run_page(run: Run, summary: dict, drawn: dict, out: Path, plots: bool) -> str:
    """report.html of one run. drawn: kind name -> its rendered figures."""
    facts, sections, toc = [], [], [("Provenance", "provenance")]
    for kind, entry in entries(summary):
        facts += kind.headline(entry)
        links = kind_links(kind, run, entry)
        if (run.directory / RUN_JSON).exists():
            links.append((RUN_JSON, str(run.directory / RUN_JSON)))
        body = page.join(kind.html(entry),
                         page.figures(drawn.get(kind.name, []),
                                      "" if plots else "Plots not drawn (--no-plots)."),
                         page.links(links, out))
        sections.append(page.section(kind.title, body, kind.name))
        toc.append((kind.title, kind.name))
    banners = [page.banner(t, lines, cls) for t, lines, cls in warnings_of(summary)]
    status = summary["status"] or "no status recorded"
    subtitle = f"{summary['results_dir']} · run status: {status}"
    parts = [page.facts(facts), *banners, page.contents(toc),
             page.section("Provenance", provenance_part(summary["run"], summary["notes"]),
                          "provenance"), *sections]
    footer = (PERCENTILE_NOTE.replace("\n", " ") + f" Written by {PROG} at "
              f"{summary['generated']}; the figures are in summary.json and "
              "performance_report.txt beside this page.")
    return page.page(f"ivshmem-bench: {summary['label']}", subtitle, parts, footer)


# --------------------------------------------------------------------------
# Writing, and the exit status
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


def write_json(path: Path, payload) -> Path:
    return write_text(path, json.dumps(finite(payload), indent=2, allow_nan=False,
                                       default=clean) + "\n")


def check_bad_data(runs: list[Run], summaries: list[dict]) -> int:
    """Exit 1 (after the outputs are written) when messages failed their
    check (errors > 0) in any kind's rows, or a kind says its results are no
    results (every frame transfer failed): one line per file on stderr."""
    status = EXIT_OK
    for run, s in zip(runs, summaries):
        for kind, entry in entries(s):
            flagged = kind.flagged
            bad = [b for b in s["bad_messages"] if flagged and b["file"] == flagged.name(entry)]
            if not bad:
                continue
            where = ", ".join(f"{b['point'].removeprefix(flagged.prefix)} "
                              f"(line {b['line']}, {b['errors']:,})" for b in bad[:3])
            sys.stderr.write(
                f"{PROG}: {run.directory / flagged.name(entry)}: bad messages (errors > 0) in "
                f"{len(bad)} of {len(flagged.rows(entry))} {flagged.counted}: {where}"
                f"{', ...' if len(bad) > 3 else ''}; flagged in the report\n")
            status = EXIT_BAD_DATA
    for run, s in zip(runs, summaries):
        for kind, entry in entries(s):
            for line in kind.failures(run.directory, entry):
                sys.stderr.write(f"{PROG}: {line}\n")
                status = EXIT_BAD_DATA
    return status


def analyze(directory: Path, out: Path, plots: bool, allow_partial: bool, say,
            warn) -> int:
    """Every output of one results directory into out; the exit status."""
    run = load_run(directory, warn, allow_partial)
    summary = summarize(run)
    out.mkdir(parents=True, exist_ok=True)
    report = render_report(summary)
    written = [write_text(out / "performance_report.txt", report),
               write_json(out / "summary.json", summary)]
    drawn = {}
    if plots:
        title, partial = summary["label"], run.partial
        for kind, entry in entries(summary):
            drawn[kind.name] = render(kind.plots(run.data[kind.name], entry, title, partial),
                                      out, page=True)
            written += [d.path for d in drawn[kind.name]]
    written.append(write_text(out / page.PAGE_FILE, run_page(run, summary, drawn, out, plots)))
    say(report)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_bad_data([run], [summary])
