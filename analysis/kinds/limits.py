"""
limits - what each side's CPU can do alone at the stream's message sizes
(limits_results.csv, written by workloads/limits.c: one row per message
size, loop and side): its copy speed (copy: ivb_copy from one private
buffer to another; copy_shm: the same out of the shared memory, what the
stream's receiver reads) and its XXH3 speed (xxh3: the stream's check of
each message), for the initiator (host_writer) and the responder
(guest_reader, in the guest or on the host). The bound a stream figure is
a fraction of: under TCG a guest copies ten times slower than the host,
and this says so beside the stream. The figures are host_writer's, read
strictly and never recomputed; the responder's were taken only when the
XXH3 of the buffer its loop left matched the bytes posted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import page
from analysis.kind import Fact, Kind
from analysis.plots import Plot, compare_headline, headline, pyplot, run_style, size_axes
from analysis.stats import keyed, records
from analysis.tables import (AGREE, MESSAGE_BYTES, Column, Loaded, Schema, Table, first_bad,
                             fmt_number, impossible, one_of, read_table, row_frame, shown)
from analysis.units import fmt_pct, fmt_sig, fmt_size, ratio_mark, ratio_text, table

LOOPS = ("copy", "copy_shm", "xxh3")      # limits.c loop_names, in its order
SIDES = ("initiator", "responder")
MAX_GBPS = 1000.0        # limits.c MAX_BYTES_PER_NS: 1 TB/s, more than any core copies
CLOCK_SLACK_S = 0.05     # limits.c CLOCK_SLACK_NS: the responder's CPU time may exceed its
                         # measured time by this much before it is clamped
LIMITS = Schema("limits", "limits_results.csv", dict(
    message_bytes=MESSAGE_BYTES,
    loop=Column(numeric=False, required=True),
    side=Column(numeric=False, required=True),
    iterations=Column(required=True, integer=True, minimum=1,
                      why="loops counted, at least one"),
    bytes=Column(required=True, integer=True, minimum=1, why="iterations x message_bytes"),
    seconds=Column(required=True),
    bytes_per_s=Column(required=True, maximum=MAX_GBPS * 1e9,
                       why="1 TB/s, limits.c MAX_BYTES_PER_NS"),
    gbps=Column(required=True, maximum=MAX_GBPS, why="1 TB/s, limits.c MAX_BYTES_PER_NS"),
    cpu_percent=Column(required=True),
))


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_limits(path: Path) -> Loaded:
    """Load limits_results.csv, one row per size, loop and side, figures
    as written. A size may repeat (--limit-sizes 64,64 measures 64 B twice)."""
    table = read_table(path, LIMITS.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    for name, allowed in (("loop", LOOPS), ("side", SIDES)):
        first_bad(table, name, ~np.isin(cols[name], allowed),
                  lambda v, allowed=allowed: f"expected {one_of(allowed)}, got {shown(v)}")
    check_limits_rows(table)
    df = row_frame(table)
    for name in ("message_bytes", "iterations", "bytes"):
        df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_limits_rows(table: Table) -> None:
    """Each row's figures as limits.c's write_row() computes them from one
    another, within the rounding of what it prints (bytes %.0f, seconds
    %.6f, bytes_per_s %.1f, gbps %.4f, cpu_percent %.1f) and AGREE: a time
    measured (seconds > 0), bytes = iterations x message_bytes (exactly),
    bytes_per_s = bytes / seconds, gbps = bytes / seconds / 10^9, and no
    more CPU than the loop's time allows (the responder's may exceed it by
    limits.c's clock slack before it is clamped)."""
    cols = table.columns
    secs, size = cols["seconds"], cols["bytes"]
    rate, gbps, cpu = cols["bytes_per_s"], cols["gbps"], cols["cpu_percent"]
    moved = cols["iterations"] * cols["message_bytes"]  # the same double product as limits.c's
    with np.errstate(invalid="ignore", divide="ignore"):
        first_bad(table, "seconds", secs <= 0,
                  lambda v: f"{fmt_number(v)}: no time measured (a loop counts for at least "
                            "1 ms)")
        for name in ("bytes_per_s", "gbps"):
            first_bad(table, name, cols[name] <= 0,
                      lambda v: f"{fmt_number(v)}: nothing moved, no measurement")
        impossible(table, "bytes", np.abs(size - moved) > 0.5 + moved * 2.0 ** -52,
                   lambda i: f"{fmt_number(size[i])} is not iterations x message_bytes "
                             f"({moved[i]:.0f})")
        # |rate x secs - bytes| <= 0.05 secs + 5e-7 rate: the two roundings.
        slack = 0.05 * secs + 5e-7 * (rate + 0.05) + AGREE * size
        impossible(table, "bytes_per_s", np.abs(rate * secs - size) > slack,
                   lambda i: f"{fmt_number(rate[i])} is not bytes / seconds "
                             f"({fmt_number(size[i])} bytes in {fmt_number(secs[i])} s)")
        ns = secs * 1e9
        slack = 5e-5 * ns + 5e-7 * 1e9 * (gbps + 5e-5) + AGREE * size
        impossible(table, "gbps", np.abs(gbps * ns - size) > slack,
                   lambda i: f"{fmt_number(gbps[i])} is not bytes / seconds / 10^9 "
                             f"({fmt_number(size[i])} bytes in {fmt_number(secs[i])} s)")
        most = 100 * (secs + 5e-7 + CLOCK_SLACK_S) / np.maximum(secs - 5e-7, 5e-7) + 0.05
        impossible(table, "cpu_percent", cpu > most * (1 + AGREE),
                   lambda i: f"{fmt_number(cpu[i])} % is more CPU than {fmt_number(secs[i])} s "
                             f"of looping can use (at most {most[i]:.1f} %)")


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def limits_stats(df: pd.DataFrame, run) -> dict:
    """The rows as written, and per size and loop (a repeated size in the
    order measured) each side's GB/s and CPU, and the responder's over the
    initiator's; per size the receiver's work per message (the responder's
    copy out of the shared memory, else its private copy, then XXH3) as
    one speed, 1 / (1/copy + 1/xxh3); and run.json's account of the loops."""
    rows = records(df.sort_values("message_bytes", kind="stable"), LIMITS, {})
    sides = {side: keyed([r for r in rows if r["side"] == side],
                         lambda r: (r["message_bytes"], LOOPS.index(r["loop"])))
             for side in SIDES}
    points = []
    for key in sorted(set(sides["initiator"]) | set(sides["responder"])):
        (size, loop), _ = key
        mine, theirs = sides["initiator"].get(key), sides["responder"].get(key)
        points.append({
            "message_bytes": size, "loop": LOOPS[loop],
            "initiator_gbps": mine and mine["gbps"], "responder_gbps": theirs and theirs["gbps"],
            "responder_over_initiator": theirs["gbps"] / mine["gbps"]
            if mine and theirs and mine["gbps"] else None,
            "initiator_cpu_percent": mine and mine["cpu_percent"],
            "responder_cpu_percent": theirs and theirs["cpu_percent"],
            "lines": [r["line"] for r in (mine, theirs) if r]})
    receiver = []
    for size in sorted({p["message_bytes"] for p in points}):
        got = {p["loop"]: p["responder_gbps"] for p in points
               if p["message_bytes"] == size and p["responder_gbps"]}
        copy = got.get("copy_shm") or got.get("copy")
        if copy and got.get("xxh3"):
            receiver.append({"message_bytes": size,
                             "copy": "copy_shm" if got.get("copy_shm") else "copy",
                             "copy_gbps": copy, "xxh3_gbps": got["xxh3"],
                             "copy_and_xxh3_gbps": 1 / (1 / copy + 1 / got["xxh3"])})
    info = (run.info or {}).get("limits") if run is not None else None
    info = info if isinstance(info, dict) else {}
    impl = {k: info[k] for k in ("initiator_copy_impl", "initiator_xxh3_impl",
                                 "responder_copy_impl", "responder_xxh3_impl")
            if isinstance(info.get(k), str) and info[k]}
    counts = {k: info[k] for k in ("loops_refused", "sizes_skipped", "duration_ns")
              if isinstance(info.get(k), int) and not isinstance(info.get(k), bool)}
    return {
        "loops": [l for l in LOOPS if any(p["loop"] == l for p in points)],
        "sizes": sorted({p["message_bytes"] for p in points}),
        "responder": responder_where((run.info or {}) if run is not None else {}),
        "points": points,
        "receiver": receiver,
        "implementations": impl or None,
        "loops_refused": counts.get("loops_refused"),
        "sizes_skipped": counts.get("sizes_skipped"),
        "duration_ns": counts.get("duration_ns"),
        "rows": rows,
    }


def responder_where(info: dict) -> str:
    """Where the responder ran, from run.json."""
    if info.get("guest") == "host" or info.get("target") == "host":
        return "guest_reader on the host, host-only"
    if info.get("guest") or info.get("target") == "vm":
        return "guest_reader in the guest"
    return "guest_reader"


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


LIMITS_NOTE = [
    "Each side's CPU alone at each message size, in the same run: copy = ivb_copy",
    "from one private buffer to another; copy_shm = the same out of the shared",
    "memory (what the stream's receiver reads); xxh3 = XXH3-64 over a private",
    "buffer (the stream's check of each message). GB/s = 1e9 bytes/s over the",
    "counted time after a warm-up; CPU %: the share of one core. resp/init: the",
    "responder's GB/s over the initiator's.",
]


def loop_settings(lim: dict) -> list[str]:
    """The lines saying who the sides were and what ran."""
    lines = [f"initiator: host_writer; responder: {lim['responder']}."]
    impl = lim["implementations"] or {}
    for side in SIDES:
        found = [f"{what} {impl[f'{side}_{what}_impl']}" for what in ("copy", "xxh3")
                 if f"{side}_{what}_impl" in impl]
        if found:
            lines.append(f"{side}'s implementations: " + ", ".join(found) + ".")
    if lim["duration_ns"]:
        lines.append(f"Counted {lim['duration_ns'] / 1e6:,.0f} ms per loop and side, after a "
                     "fifth more of warm-up.")
    return lines


def refused_lines(lim: dict) -> list[str]:
    """What run.json says was left out."""
    out = []
    if lim["loops_refused"]:
        out.append(f"{lim['loops_refused']:,} loop(s) left out: the responder's figures were "
                   "refused (its buffer's XXH3 did not match, or its time did not fit)")
    if lim["sizes_skipped"]:
        out.append(f"{lim['sizes_skipped']:,} size(s) skipped: larger than the shared memory "
                   "holds")
    return out


def report_limits(lim: dict) -> list[str]:
    rows = [["size", "loop", "initiator GB/s", "responder GB/s", "resp/init",
             "initiator CPU %", "responder CPU %"]]
    for p in lim["points"]:
        rows.append([fmt_size(p["message_bytes"]), p["loop"], fmt_sig(p["initiator_gbps"]),
                     fmt_sig(p["responder_gbps"]),
                     ratio_text(p["responder_over_initiator"])
                     if p["responder_over_initiator"] is not None else "-",
                     fmt_pct(p["initiator_cpu_percent"]), fmt_pct(p["responder_cpu_percent"])])
    lines = ["", "EACH SIDE'S LIMITS", "------------------"] + LIMITS_NOTE + loop_settings(lim)
    lines += [""] + ["  " + l for l in table(rows, "ll")]
    if lim["receiver"]:
        lines += ["", "The responder's work per message received: its copy, then XXH3, as one",
                  "speed (1 / (1/copy + 1/xxh3)), the bound of a checked stream's GB/s:"]
        lines += ["  " + l for l in table(
            [["size", "copy", "copy GB/s", "xxh3 GB/s", "copy + xxh3 GB/s"]]
            + [[fmt_size(r["message_bytes"]), r["copy"], fmt_sig(r["copy_gbps"]),
                fmt_sig(r["xxh3_gbps"]), fmt_sig(r["copy_and_xxh3_gbps"])]
               for r in lim["receiver"]], "ll")]
    refused = refused_lines(lim)
    if refused:
        lines += [""] + [f"NOTE: {l}" for l in refused]
    return lines


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


LOOP_STYLE = {"copy": ("tab:blue", "o", "copy"),
              "copy_shm": ("tab:green", "s", "copy_shm (out of shared memory)"),
              "xxh3": ("tab:purple", "^", "xxh3")}
SIDE_STYLE = {"initiator": "-", "responder": "--"}


def limit_curve(ax, points: list[dict], key: str, **style) -> None:
    """key (GB/s) against message size; absent values left out."""
    x = [p["message_bytes"] for p in points]
    y = np.array([np.nan if not p[key] else p[key] for p in points], dtype=float)
    ax.plot(x, y, ms=6, lw=1.6, **style)


def plot_limits(lim: dict, title: str, partial: list[str]):
    """GB/s against message size, log-log: a colour per loop, solid for
    the initiator, dashed for the responder."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 6.2), constrained_layout=True)
    headline(fig, f"Each side's copy and XXH3 speed by message size: {title}", partial)
    for loop in lim["loops"]:
        mine = [p for p in lim["points"] if p["loop"] == loop]
        color, marker, label = LOOP_STYLE[loop]
        for side in SIDES:
            limit_curve(ax, mine, f"{side}_gbps", color=color, marker=marker,
                        ls=SIDE_STYLE[side], mfc="white" if side == "responder" else color,
                        label=f"{label}, {side}")
    size_axes(ax, lim["sizes"], "GB/s (1e9 bytes/s)",
              f"Solid: the initiator (host_writer); dashed: the responder "
              f"({lim['responder']}); higher is better")
    return fig


def plots(_df, lim: dict, title: str, partial: list[str]) -> list[Plot]:
    return [Plot("limits_speed.png",
                 "Each side's speed alone at each message size, log-log: a colour per loop "
                 "(copy: private to private; copy_shm: out of the shared memory, what the "
                 "stream's receiver reads; xxh3: the stream's check), solid for the initiator, "
                 "dashed for the responder.",
                 lambda: plot_limits(lim, title, partial))]


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(lim: dict) -> str:
    head = ["message size", "loop", "initiator (GB/s)", "responder (GB/s)",
            "responder / initiator (×)", "initiator CPU (% of a core)",
            "responder CPU (% of a core)"]
    rows = [[fmt_size(p["message_bytes"]), p["loop"], fmt_sig(p["initiator_gbps"]),
             fmt_sig(p["responder_gbps"]),
             ratio_mark(p["responder_over_initiator"])
             if p["responder_over_initiator"] is not None else "-",
             fmt_pct(p["initiator_cpu_percent"]), fmt_pct(p["responder_cpu_percent"])]
            for p in lim["points"]]
    parts = [page.para("What each side's CPU does alone at each message size, measured in "
                       "the same run: copy is ivb_copy from one private buffer to another; "
                       "copy_shm the same out of the shared memory (what the stream's "
                       "receiver reads); xxh3 the XXH3-64 the stream checks each message "
                       "with. GB/s: 10^9 bytes/s over the counted time after a warm-up."),
             page.para(" ".join(loop_settings(lim)), "note"),
             page.table(head, rows, "ll")]
    if lim["receiver"]:
        parts += [page.tag("h3", "The responder's work per message received"),
                  page.para("Its copy, then XXH3, as one speed (1 / (1/copy + 1/xxh3)): the "
                            "bound of a checked stream's GB/s at that size."),
                  page.table(["message size", "copy", "copy (GB/s)", "xxh3 (GB/s)",
                              "copy + xxh3 (GB/s)"],
                             [[fmt_size(r["message_bytes"]), r["copy"], fmt_sig(r["copy_gbps"]),
                               fmt_sig(r["xxh3_gbps"]), fmt_sig(r["copy_and_xxh3_gbps"])]
                              for r in lim["receiver"]], "ll")]
    return page.join(*parts)


def limit_facts(lim: dict) -> list[Fact]:
    """The responder's copy out of shared memory and its XXH3 at the
    largest size measured."""
    found = []
    for loop, label in (("copy_shm", "responder copy from shm"), ("xxh3", "responder XXH3")):
        mine = [(i, p) for i, p in enumerate(lim["points"])
                if p["loop"] == loop and p["responder_gbps"]]
        if not mine:
            continue
        i, p = max(mine, key=lambda ip: ip[1]["message_bytes"])
        note = f"at {fmt_size(p['message_bytes'])}"
        if p["responder_over_initiator"] is not None:
            note += f", {ratio_mark(p['responder_over_initiator'])} the initiator's"
        found.append(Fact(label, fmt_sig(p["responder_gbps"]), "GB/s", p["responder_gbps"],
                          f"limits.points.{i}.responder_gbps", note))
    return found


def warnings(lim: dict) -> list[str]:
    return refused_lines(lim) if lim["loops_refused"] else []


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


def compare(summaries: list[dict], add) -> None:
    """Each size and loop: each side's GB/s."""
    per_run = [keyed((s.get("limits") or {"points": []})["points"],
                     lambda p: (p["message_bytes"], LOOPS.index(p["loop"])))
               for s in summaries]
    for key in sorted(set().union(*per_run)):
        (size, loop), repeat = key
        name = f"limits {LOOPS[loop]} {fmt_size(size)}" \
            + (f" (repeat {repeat + 1})" if repeat else "")
        per = [points.get(key) for points in per_run]
        for side in SIDES:
            add(f"{name} {side} GB/s", "GB/s", "higher",
                [p[f"{side}_gbps"] if p else None for p in per])


def headline_figure(name: str) -> bool:
    """The responder's copy out of the shared memory and its XXH3, per size."""
    return name.startswith(("limits copy_shm ", "limits xxh3 ")) \
        and name.endswith(" responder GB/s")


def plot_compare_limits(labels: list[str], runs: list, summaries: list[dict]):
    """Each run's speeds over the others': a panel per loop, a colour per
    run, solid for the initiator, dashed for the responder."""
    plt = pyplot()
    entries = [s.get("limits") or {"points": [], "loops": []} for s in summaries]
    loops = [l for l in LOOPS if any(l in e["loops"] for e in entries)]
    fig, axes = plt.subplots(1, len(loops), figsize=(6.2 * len(loops), 5.8),
                             constrained_layout=True, squeeze=False)
    compare_headline(fig, "Each side's speed by message size, runs overlaid (solid: initiator, "
                          "dashed: responder)", runs)
    for ax, loop in zip(axes[0], loops):
        sizes = []
        for i, (label, e) in enumerate(zip(labels, entries)):
            mine = [p for p in e["points"] if p["loop"] == loop]
            if not mine:
                continue
            sizes += [p["message_bytes"] for p in mine]
            for side in SIDES:
                limit_curve(ax, mine, f"{side}_gbps", ls=SIDE_STYLE[side],
                            label=f"[{i + 1}] {label}, {side}", **run_style(i))
        size_axes(ax, sizes, "GB/s (1e9 bytes/s)", f"{LOOP_STYLE[loop][2]} (higher is better)")
    return fig


def compare_plots(labels: list[str], runs: list, summaries: list[dict]) -> list[Plot]:
    if not any(s.get("limits") for s in summaries):
        return []
    return [Plot("comparison_limits.png",
                 "Each run's copy and XXH3 speed against message size, overlaid: a panel per "
                 "loop, a colour per run, solid for the initiator, dashed for the responder.",
                 lambda: plot_compare_limits(labels, runs, summaries))]


KIND = Kind(
    name="limits", key="limits", title="Each side's limits",
    files=((LIMITS, load_limits),),
    summarize=limits_stats, text=report_limits, html=html, plots=plots,
    headline=limit_facts, warnings=warnings, compare=compare,
    metric_text=lambda m, value, _unit: fmt_sig(value), compare_plots=compare_plots,
    headline_figure=headline_figure, always=False,
)
