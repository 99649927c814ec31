"""
sizelat - round-trip latency by message size (size_latency_results.csv, one
row per size, osu_latency's semantics): a message of each size copied into
shared memory, copied out, checked and echoed back, then copied out and
checked again. The percentiles are host_writer's, exact over every round
trip of each size, read strictly (they must read as a distribution's) and
never recomputed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import page
from analysis.kind import Flagged, Kind
from analysis.plots import (PERCENTILE_STYLE, Plot, compare_headline, headline, pyplot, run_style,
                            size_axes, size_curve)
from analysis.stats import keyed, records, size_order
from analysis.tables import (MESSAGE_BYTES, TEXT, Column, Loaded, Schema, check_distribution,
                             read_table, row_frame)
from analysis.units import fmt_size, fmt_time, pick_unit, row_time_unit, settings_line, table

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


# --------------------------------------------------------------------------
# Loading and statistics
# --------------------------------------------------------------------------


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


def sizelat_stats(df: pd.DataFrame) -> dict:
    """The size-latency rows as written, by message size."""
    sizes = records(size_order(df), SIZELAT, {"p999_ns": "p99_9_ns"})
    bad = [s for s in sizes if s["errors"]]
    return {"sizes": sizes, "bad_sizes": len(bad),
            "errors": int(sum(s["errors"] for s in bad)),
            "percentiles_from": "host_writer, over every round trip of each size "
                                "(the same definition as here)"}


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def plot_sizelat(sl: dict, title: str, partial: list[str]):
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
    return fig


def plots(_df, sl: dict, title: str, partial: list[str]) -> list[Plot]:
    return [Plot("size_latency.png",
                 "The round trip of one message of each size (copied in, copied out, checked "
                 "and echoed, then copied out and checked again): p50, p99 and p99.9 against "
                 "message size, log-log, the range from min to max shaded.",
                 lambda: plot_sizelat(sl, title, partial))]


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(sl: dict) -> str:
    sizes = sl["sizes"]
    unit = pick_unit(min(s["p50_ns"] for s in sizes))
    head = ["message size", "round trips"] + [f"{name} ({unit[0]})" for name, _ in SIZELAT_ROWS] \
        + ["bad messages"]
    rows = [page.Row([fmt_size(s["message_bytes"]), f"{s['count']:,}"]
                     + [fmt_time(s[key], unit) for _, key in SIZELAT_ROWS]
                     + [f"{s['errors']:,} BAD" if s["errors"] else "0"],
                     "bad" if s["errors"] else "") for s in sizes]
    settings = settings_line(sizes, ("verify", "wait"))
    return page.join(
        page.para("The round trip of one message of each size: copied into shared memory, "
                  "copied out, checked and echoed back, then copied out and checked again "
                  "(osu_latency's semantics). Percentiles are host_writer's, exact over "
                  "every round trip of the size."),
        page.para("Settings: " + settings, "note") if settings else "",
        page.table(head, rows))


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


def compare(summaries: list[dict], add) -> None:
    sizelats = [keyed((s["size_latency"] or {"sizes": []})["sizes"],
                      lambda row: row["message_bytes"]) for s in summaries]
    for key in sorted(set().union(*sizelats)):
        size, repeat = key
        name = f"size latency {fmt_size(size)}" + (f" (repeat {repeat + 1})" if repeat else "")
        per = [rows.get(key) for rows in sizelats]
        for column, label, _ in PERCENTILE_STYLE:
            add(f"{name} {label}", "ns", "lower", [r[column] if r else None for r in per],
                per)


def plot_compare_sizelat(labels: list[str], runs: list, summaries: list[dict]):
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
    return fig


def compare_plots(labels: list[str], runs: list, summaries: list[dict]) -> list[Plot]:
    if not any(s["size_latency"] for s in summaries):
        return []
    return [Plot("comparison_size_latency.png",
                 "Each run's round trip by message size, overlaid: a panel per percentile "
                 "(p50, p99, p99.9), a colour per run.",
                 lambda: plot_compare_sizelat(labels, runs, summaries))]


FLAGGED = Flagged(
    file=SIZELAT.file, rows=lambda sl: sl["sizes"],
    point=lambda s: f"size latency {fmt_size(s['message_bytes'])}", prefix="size latency ",
    banner="message size", counted="message sizes")

def headline_figure(name: str) -> bool:
    """Each message size's round-trip p50."""
    return name.startswith("size latency ") and name.endswith(" p50")


KIND = Kind(
    name="sizelat", key="size_latency", title="Round trip by message size",
    files=((SIZELAT, load_sizelat),),
    summarize=lambda df, _run: sizelat_stats(df), text=report_sizelat, html=html, plots=plots,
    flagged=FLAGGED, compare=compare,
    metric_text=lambda m, value, _unit: fmt_time(value, row_time_unit(m)),
    metric_unit=lambda m, _unit: row_time_unit(m)[0], compare_plots=compare_plots,
    headline_figure=headline_figure,
)
