"""
stream - sustained throughput by message size (stream_results.csv, one row
per point: a direction and a message size): messages/s and GB/s counted
where messages arrive, the CPU each side spent per message, doorbells per
message, and the messages that failed their check. The figures are
host_writer's, read strictly and never recomputed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import counters, page
from analysis.kind import Fact, Flagged, Kind
from analysis.plots import (Plot, compare_headline, headline, pyplot, run_style, size_axes,
                            size_curve)
from analysis.stats import keyed, records, size_order
from analysis.tables import (AGREE, COUNT, MAX_SLOTS, MESSAGE_BYTES, NON_NEGATIVE, OPTIONAL, TEXT,
                             Column, Loaded, Schema, Table, first_bad, fmt_number, impossible,
                             read_table, row_frame, shown)
from analysis.units import fmt_pct, fmt_sig, fmt_size, settings_line, table

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
    point_seconds=OPTIONAL,  # the whole point, which the *_cpu_ columns cover
    **counters.COLUMNS,  # what the kernel counted over the point (analysis/counters.py)
))


# --------------------------------------------------------------------------
# Loading and statistics
# --------------------------------------------------------------------------


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
    # The counters cover the measured interval: seconds, read a moment after.
    counters.check_counters(table, messages, "messages",
                            (secs + 5e-7) * 1.05 + counters.SLACK_S,
                            "the point's measured seconds")


def stream_stats(df: pd.DataFrame, info: dict | None = None) -> dict:
    """The stream points as written, per direction by size, with the peak
    of each direction, and (with the counters' columns) what run.json says
    was counted; figures are host_writer's, not recomputed."""
    directions = [d for d in STREAM_DIRECTIONS if (df["direction"] == d).any()]
    points, peaks = [], {}
    for d in directions:
        rows = size_order(df[df["direction"] == d])
        points += records(rows, STREAM, {})
        peaks[d] = {key: {"value": float(rows[key].max()),
                          "message_bytes": int(rows.loc[rows[key].idxmax(), "message_bytes"])}
                    for key in ("msgs_per_s", "gbps")}
    counters.drop_absent(points, df)
    bad = [p for p in points if p["errors"]]
    entry = {"directions": directions, "points": points, "peaks": peaks,
             "bad_points": len(bad), "errors": int(sum(p["errors"] for p in bad))}
    counted = counters.availability(info, "stream") if counters.present(df) else None
    if counted:
        entry["counters"] = counted
    return entry


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


STREAM_NOTE = [
    "msgs/s and GB/s (1e9 bytes/s) are counted where messages arrive, over the",
    "measured time after a warm-up; bidir counts both directions together.",
    "us/msg: the CPU time each side's thread spent per message moved (vCPU: the",
    "guest's vCPU thread as the host saw it); CPU %: the share of one core.",
    "doorbells/msg: doorbells rung by both sides per message moved.",
]


def report_stream(st: dict) -> list[str]:
    points = st["points"]
    vcpu = any(p["vcpu_cpu_us_per_msg"] is not None for p in points)
    head = ["direction", "size", "msgs/s", "GB/s", "host us/msg", "guest us/msg"]
    head += ["vCPU us/msg"] if vcpu else []
    head += ["host CPU %", "guest CPU %", "doorbells/msg"]
    ctx = counters.shown(points)
    head += [counters.HEADING] if ctx else []
    head += ["errors", ""]
    rows = [head]
    for p in points:
        cells = [p["direction"], fmt_size(p["message_bytes"]), f"{p['msgs_per_s']:,.0f}",
                 fmt_sig(p["gbps"]), fmt_sig(p["host_cpu_us_per_msg"]),
                 fmt_sig(p["guest_cpu_us_per_msg"])]
        cells += [fmt_sig(p["vcpu_cpu_us_per_msg"])] if vcpu else []
        cells += [fmt_pct(p["host_cpu_percent"]), fmt_pct(p["guest_cpu_percent"]),
                  fmt_sig(p["doorbells_per_msg"])]
        cells += [counters.per_kmsg_text(p, p["messages"])] if ctx else []
        cells += [f"{p['errors']:,}",
                  f"<< BAD: {p['errors']:,} bad messages" if p["errors"] else ""]
        rows.append(cells)
    lines = ["", "STREAM THROUGHPUT", "-----------------"] + STREAM_NOTE
    if ctx:
        lines += textwrap.wrap(counters.NOTE, 78)
    settings = settings_line(points, ("verify", "wait", "slots", "batch"))
    if settings:
        lines.append("Settings: " + settings)
    lines += counters.availability_lines(st.get("counters"))
    lines += [""] + ["  " + l for l in table(rows, "ll")]
    lines += ["", "Peak per direction:"]
    for d, peak in st["peaks"].items():
        lines.append(f"  {d:<5}  {peak['msgs_per_s']['value']:,.0f} msgs/s at "
                     f"{fmt_size(peak['msgs_per_s']['message_bytes'])}, "
                     f"{fmt_sig(peak['gbps']['value'])} GB/s at "
                     f"{fmt_size(peak['gbps']['message_bytes'])}")
    return lines


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


DIRECTION_STYLE = {"h2g": ("tab:blue", "o", "h2g: host to guest"),
                   "g2h": ("tab:green", "s", "g2h: guest to host"),
                   "bidir": ("tab:purple", "^", "bidir: both ways, counted together")}

STREAM_PANELS = (("msgs_per_s", "messages/s", 1.0, "Messages per second"),
                 ("gbps", "GB/s (1e9 bytes/s)", 1.0, "Throughput"))


def plot_stream(stream: dict, title: str, partial: list[str]):
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
    return fig


def plots(_df, st: dict, title: str, partial: list[str]) -> list[Plot]:
    return [Plot("stream_throughput.png",
                 "Messages per second and GB/s against message size (log-log), one curve per "
                 "direction: messages copied in, copied out and checked, counted where they "
                 "arrive over the measured time after a warm-up.",
                 lambda: plot_stream(st, title, partial))]


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(st: dict) -> str:
    points = st["points"]
    vcpu = any(p["vcpu_cpu_us_per_msg"] is not None for p in points)
    head = ["direction", "message size", "msgs/s", "GB/s", "host CPU (µs/msg)",
            "guest CPU (µs/msg)"] + (["vCPU (µs/msg)"] if vcpu else []) + [
        "host CPU (% of a core)", "guest CPU (% of a core)", "doorbells/msg"]
    ctx = counters.shown(points)
    head += [counters.PAGE_HEADING] if ctx else []
    head += ["bad messages"]
    rows = []
    for p in points:
        cells = [p["direction"], fmt_size(p["message_bytes"]), f"{p['msgs_per_s']:,.0f}",
                 fmt_sig(p["gbps"]), fmt_sig(p["host_cpu_us_per_msg"]),
                 fmt_sig(p["guest_cpu_us_per_msg"])]
        cells += [fmt_sig(p["vcpu_cpu_us_per_msg"])] if vcpu else []
        cells += [fmt_pct(p["host_cpu_percent"]), fmt_pct(p["guest_cpu_percent"]),
                  fmt_sig(p["doorbells_per_msg"])]
        cells += [counters.per_kmsg_text(p, p["messages"])] if ctx else []
        cells += [f"{p['errors']:,} BAD" if p["errors"] else "0"]
        rows.append(page.Row(cells, "bad" if p["errors"] else ""))
    peaks = [f"{d}: {peak['msgs_per_s']['value']:,.0f} msgs/s at "
             f"{fmt_size(peak['msgs_per_s']['message_bytes'])}, "
             f"{fmt_sig(peak['gbps']['value'])} GB/s at "
             f"{fmt_size(peak['gbps']['message_bytes'])}" for d, peak in st["peaks"].items()]
    settings = settings_line(points, ("verify", "wait", "slots", "batch"))
    return page.join(
        page.para("Messages per second and GB/s (10^9 bytes/s) are counted where messages "
                  "arrive, over the measured time after a warm-up; bidir counts both "
                  "directions together. CPU per message: each side's thread CPU time per "
                  "message moved (vCPU: the guest's vCPU thread as the host saw it)."),
        page.para(counters.NOTE, "note") if ctx else "",
        page.para("Settings: " + settings, "note") if settings else "",
        counters.availability_html(st.get("counters")),
        page.table(head, rows, "ll"),
        page.tag("h3", "Peak per direction"), page.items(peaks))


def peak_facts(st: dict) -> list[Fact]:
    """The highest message rate and the highest GB/s of any direction."""
    found = []
    for key, label, unit in (("msgs_per_s", "stream peak", "msgs/s"),
                             ("gbps", "stream peak", "GB/s")):
        d = max(st["peaks"], key=lambda d: st["peaks"][d][key]["value"])
        peak = st["peaks"][d][key]
        text = f"{peak['value']:,.0f}" if key == "msgs_per_s" else fmt_sig(peak["value"])
        found.append(Fact(label, text, unit, peak["value"], f"stream.peaks.{d}.{key}.value",
                          f"{d}, {fmt_size(peak['message_bytes'])} messages"))
    return found


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


STREAM_METRICS = (("msgs/s", "msgs_per_s", "msgs/s", "higher"),
                  ("GB/s", "gbps", "GB/s", "higher"),
                  ("host CPU", "host_cpu_us_per_msg", "us/msg", "lower"),
                  ("guest CPU", "guest_cpu_us_per_msg", "us/msg", "lower"))


def compare(summaries: list[dict], add) -> None:
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


def plot_compare_stream(labels: list[str], runs: list, summaries: list[dict]):
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
    return fig


def compare_plots(labels: list[str], runs: list, summaries: list[dict]) -> list[Plot]:
    if not any(s["stream"] for s in summaries):
        return []
    return [Plot("comparison_stream.png",
                 "Each run's stream throughput against message size, overlaid: a row per "
                 "direction, messages/s and GB/s, a colour per run.",
                 lambda: plot_compare_stream(labels, runs, summaries))]


FLAGGED = Flagged(
    file=STREAM.file, rows=lambda st: st["points"],
    point=lambda p: f"{p['direction']} {fmt_size(p['message_bytes'])}", prefix="",
    banner="stream point", counted="points")

def headline_figure(name: str) -> bool:
    """Each point's (direction and size) msgs/s and GB/s."""
    return name.startswith("stream ") and name.endswith((" msgs/s", " GB/s"))


KIND = Kind(
    name="stream", key="stream", title="Stream throughput",
    files=((STREAM, load_stream),),
    summarize=lambda df, run: stream_stats(df, run.info if run is not None else None),
    text=report_stream, html=html, plots=plots,
    headline=peak_facts, flagged=FLAGGED, compare=compare,
    metric_text=lambda m, value, _unit: fmt_sig(value), compare_plots=compare_plots,
    headline_figure=headline_figure,
)
