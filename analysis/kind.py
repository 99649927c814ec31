"""
kind - what a result kind is: the interface each module in analysis/kinds/
fills in, as workloads/workload.h is for the C workloads.

A kind owns its CSV files (their Schemas and loaders), turns the loaded rows
into its entry of summary.json, writes its section of the text report, lists
its plots, writes its section of the HTML page (tables, headline figures,
warnings), and adds its rows to the comparison of runs. Everything a kind
does not need has a default that does nothing. The shared machinery (run.py,
report.py, compare.py) calls these in the order of the table in
analysis/kinds/__init__.py, which is the order of the reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from analysis.tables import Schema


def nothing(*_args, **_kwargs) -> list:
    """The default of a hook a kind does not need."""
    return []


def never(_name: str) -> bool:
    """The default of headline_figure: none of the kind's rows is one."""
    return False


def first_frame(_run, loaded: dict, _prov, _info_path):
    """The default assemble(): the DataFrame of the kind's first file."""
    return next(iter(loaded.values())).frame if loaded else None


@dataclass(frozen=True)
class Fact:
    """One figure of the page's headline box: 'round trip p50: 471.0 ns'.
    value and unit are what the reader sees; exact is the figure as
    summary.json has it (kept in the page as data-value, for whoever checks
    it), key where summary.json has it."""

    label: str          # "round trip p50"
    value: str          # "471.0"
    unit: str = ""      # "ns"
    exact: Any = None   # 471.0
    key: str = ""       # where summary.json has it: "latency.round_trip.p50_ns"
    note: str = ""      # "at 64 B, h2g"


@dataclass(frozen=True)
class Flagged:
    """How a kind's rows whose messages failed their check (errors > 0) are
    named in the BAD MESSAGES block, summary.json's bad_messages and the
    exit status's line on stderr."""

    # The CSV as bad_messages names it, or a function of the kind's entry
    # giving it (a file found in a subdirectory: "transports/...").
    file: str | Callable[[dict], str]
    rows: Callable[[dict], list[dict]]   # the kind's rows in its summary entry
    point: Callable[[dict], str]         # a row as bad_messages names it: "size latency 8 B"
    prefix: str                          # what point() puts first, left out on stderr
    banner: str                          # one such row in the report: "message size"
    counted: str                         # the rows on stderr: "message sizes"

    def name(self, entry: dict) -> str:
        """The file as bad_messages names it, for this entry."""
        return self.file(entry) if callable(self.file) else self.file


@dataclass(frozen=True)
class Kind:
    """One result kind. Hooks take the kind's own data (what assemble()
    made of its files) or its summary entry (what summarize() returned)."""

    name: str       # the module's name: "latency"
    key: str        # its entry in summary.json: "latency", "bandwidth", ...
    title: str      # its section's heading on the page
    # The CSVs it reads, each with its loader (path -> tables.Loaded); the
    # first holds the kind's rows, the others go with them (a rate point's
    # histograms): they may be empty and are not sections of their own.
    files: tuple[tuple[Schema, Callable], ...]
    # (data, run) -> its entry of summary.json.
    summarize: Callable[[Any, Any], dict]
    # entry -> its lines of performance_report.txt.
    text: Callable[[dict], list[str]]
    # entry -> its section of the page below the heading: tables, notes.
    html: Callable[[dict], str]
    # (run, loaded files by name, Provenance, the run.json it was checked
    # against) -> its data, or None without rows; may add notes, or raise
    # DataError.
    assemble: Callable = first_frame
    # (data, entry, title, partial reasons) -> its Plots.
    plots: Callable = nothing
    # entry -> Facts for the headline box.
    headline: Callable[[dict], list[Fact]] = nothing
    # entry -> sentences for the warning banner (failed frames, ...).
    warnings: Callable[[dict], list[str]] = nothing
    # (data, files not found) -> notes about its companion files not found;
    # removes from the list those it speaks for.
    absent_notes: Callable = nothing
    # data -> notes about what its rows lack (a column, ...).
    data_notes: Callable = nothing
    # Its rows with bad messages, if it has such rows.
    flagged: Flagged | None = None
    # (directory, entry) -> lines on stderr that make the exit status 1
    # after the outputs are written (every frame failed, ...).
    failures: Callable = nothing
    # (summaries, add) -> adds its rows to the comparison with add(name,
    # unit, better, values, rows=None).
    compare: Callable = nothing
    # (metric, value, latency unit) -> the value as the comparison writes it;
    # None: the default (a time in the table's unit, a share, GB/s).
    metric_text: Callable | None = None
    # (metric, latency unit) -> the unit the comparison's table gives it.
    metric_unit: Callable | None = None
    # A comparison row's name (as compare() adds it) -> whether it is one of
    # the kind's headline figures: those a repeated run gives with an
    # interval across its repetitions, run_test.sh --ci waits to settle and
    # a comparison of repeated runs gives a verdict on (analysis/repeated.py).
    headline_figure: Callable[[str], bool] = never
    # (labels, runs, summaries) -> its Plots of the runs overlaid.
    compare_plots: Callable = nothing
    # Where a run keeps this kind's files when another program wrote them,
    # with their own run.json (transport_bench's in "transports"): read
    # from there when the directory itself has none of them, and checked
    # against that run.json as the run's own files are against theirs.
    subdir: str | None = None
    # Other results directories inside the run whose files it reads too,
    # when it has rows and they are there, each held to its own run.json:
    # ((subdirectory, ((Schema, loader), ...)), ...). Its assemble() gets
    # them as "subdirectory/file". (run_test.sh --transports in a VM puts
    # ivshmem host-only in host-ivshmem/, beside the host's own channels.)
    extra: tuple = ()
    # Whether summary.json always has its key (None without data), as the
    # kinds of the first version did, or only when it has data.
    always: bool = True
    # The files it links to on the page, beside the CSVs it read:
    # entry -> [(text, path relative to the results directory)].
    links: Callable[[dict], list[tuple[str, str]]] = nothing
