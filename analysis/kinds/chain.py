"""
chain - a forwarding chain, Rx -> NF -> Tx (chain_results.csv, written by
workloads/chain.c: one row per message size, batch and touch): the
initiator's sender puts messages on ring A, the responder (the network
function, in the guest or on the host) forwards each onto ring B, touching
it or not (none: one copy; read: and its XXH3 checked; write: checked, a
hop counter incremented, checked again), and the initiator's receiver takes
them off ring B and checks every one. Per point the rate through the chain
(messages received between two clock reads of the receiver), the latency
through it (sender's clock before its copy into ring A to the receiver's
after its copy out of ring B and its check: exact, or past chain.c's
sample limit from a histogram within 1/256), the responder's CPU per
message, and the messages that failed a check on either side, which make
the point's figures those of a chain that does not work. The figures are
host_writer's, read strictly and never recomputed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import page
from analysis.kind import Fact, Flagged, Kind
from analysis.plots import (PERCENTILE_STYLE, Plot, compare_headline, headline, pyplot,
                            run_style, size_axes, size_curve)
from analysis.stats import keyed, records
from analysis.tables import (AGREE, COUNT, MAX_SLOTS, MESSAGE_BYTES, NON_NEGATIVE, TEXT, Column,
                             Loaded, Schema, Table, check_distribution, first_bad, fmt_number,
                             impossible, one_of, read_table, row_frame, shown)
from analysis.units import (fmt_sig, fmt_size, fmt_time, pick_unit, row_time_unit,
                            settings_line, table)

TOUCHES = ("none", "read", "write")       # chain.c touch_names, in its order
METHODS = ("exact", "histogram")          # latency_method: chain.c's samples or hist.h's
CHAIN_MIN_MESSAGE = 24                    # chain.c: sequence number, send time, hop count
LATENCY_TIMES = ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns")
# A point without a whole message in its window has no latency: those cells
# are empty, and latency_count is 0.
LATENCY = Column(allow_empty=True)
CHAIN = Schema("chain", "chain_results.csv", dict(
    message_bytes=Column(required=True, integer=True, minimum=CHAIN_MIN_MESSAGE,
                         maximum=MESSAGE_BYTES.maximum,
                         why="--chain-sizes: 24 B (the stamp) to IVB_MAX_MESSAGE, 64 MiB"),
    batch=Column(required=True, integer=True, minimum=1, maximum=MAX_SLOTS,
                 why="--chain-batch"),
    slots=Column(required=True, integer=True, minimum=1, maximum=MAX_SLOTS,
                 why="--chain-slots, a power of two"),
    inflight=COUNT,
    touch=Column(numeric=False, required=True),
    verify=TEXT,
    wait=TEXT,
    messages=Column(required=True, integer=True),
    seconds=Column(required=True),
    msgs_per_s=Column(required=True),
    gbps=Column(required=True),
    latency_count=Column(required=True, integer=True),
    latency_method=Column(numeric=False, required=True),
    **{name: LATENCY for name in LATENCY_TIMES},
    errors=Column(required=True, integer=True),
    nf_errors=Column(required=True, integer=True),
    nf_cpu_us_per_msg=NON_NEGATIVE,
    receiver=Column(numeric=False, allow_empty=True),  # local (a thread) or remote (a process)
    clock_error_ns=Column(integer=True, allow_empty=True),  # remote: the two clocks' bound
))
CHAIN_CSV = CHAIN.file
RENAME = {"p999_ns": "p99_9_ns"}    # as the other kinds' percentiles are named


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_chain(path: Path) -> Loaded:
    """Load chain_results.csv, one row per size, batch and touch, figures
    as written. A point may repeat (--chain-sizes 64,64 measures it twice)."""
    table = read_table(path, CHAIN.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    for name, allowed in (("touch", TOUCHES), ("latency_method", METHODS)):
        first_bad(table, name, ~np.isin(cols[name], allowed),
                  lambda v, allowed=allowed: f"expected {one_of(allowed)}, got {shown(v)}")
    check_chain_rows(table)
    df = row_frame(table)
    for name, column in CHAIN.columns.items():
        if column.integer and name in df and not df[name].isna().any():
            df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_chain_rows(table: Table) -> None:
    """Each point's figures as chain.c's chain_row() computes them from one
    another, within the rounding of what it prints (seconds %.6f,
    msgs_per_s %.1f, gbps %.4f) and AGREE: a power-of-two ring; msgs_per_s
    = messages / seconds; gbps = messages x message_bytes / seconds / 10^9;
    no more latencies than messages received (only whole messages are
    timed); latency cells empty exactly when none was timed, and in a
    distribution's order (min <= p50 <= p90 <= p99 <= p99.9 <= max, the
    mean between min and max)."""
    cols = table.columns
    messages, secs = cols["messages"], cols["seconds"]
    rate, gbps = cols["msgs_per_s"], cols["gbps"]
    size = messages * cols["message_bytes"]
    count = cols["latency_count"]
    with np.errstate(invalid="ignore"):
        slots = cols["slots"].astype(np.int64)
        first_bad(table, "slots", slots & (slots - 1) != 0,
                  lambda v: f"{fmt_number(v)} is not a power of two (a ring's slots)")
        slack = 0.05 * secs + 5e-7 * (rate + 0.05) + AGREE * messages
        impossible(table, "msgs_per_s", np.abs(rate * secs - messages) > slack,
                   lambda i: f"{fmt_number(rate[i])} is not messages / seconds "
                             f"({fmt_number(messages[i])} in {fmt_number(secs[i])} s)")
        ns = secs * 1e9
        slack = 5e-5 * ns + 5e-7 * 1e9 * (gbps + 5e-5) + AGREE * size
        impossible(table, "gbps", np.abs(gbps * ns - size) > slack,
                   lambda i: f"{fmt_number(gbps[i])} is not messages x message_bytes / "
                             f"seconds / 10^9 ({fmt_number(size[i])} bytes in "
                             f"{fmt_number(secs[i])} s)")
        impossible(table, "latency_count", count > messages,
                   lambda i: f"{fmt_number(count[i])} latencies of "
                             f"{fmt_number(messages[i])} messages received")
        for name in LATENCY_TIMES:
            values = cols[name]
            impossible(table, name, np.isnan(values) & (count > 0),
                       lambda i: f"empty, with {fmt_number(count[i])} latencies timed")
            impossible(table, name, ~np.isnan(values) & (count == 0),
                       lambda i, values=values: f"{fmt_number(values[i])} with no latency "
                                                "timed (latency_count 0)")
    check_distribution(table, ("min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"))


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


# run.json's chain object: the settings the report repeats, as strings or numbers.
INFO_TEXT = ("receiver", "receiver_cpu_choice", "receiver_cpu_reason", "receiver_wait", "latency",
             "host_verify_impl", "guest_verify_impl", "host_copy_impl", "guest_copy_impl")
INFO_NUMBERS = ("sender_cpu", "receiver_cpu", "duration_ns", "warmup_ns", "points",
                "points_with_bad_messages")


def run_settings(run) -> dict:
    """What run.json's chain object says of the run, its types checked (it
    is input): only the strings and integers the report shows."""
    info = (run.info or {}).get("chain") if run is not None else None
    info = info if isinstance(info, dict) else {}
    found = {k: info[k][:600] for k in INFO_TEXT if isinstance(info.get(k), str) and info[k]}
    found.update({k: info[k] for k in INFO_NUMBERS
                  if isinstance(info.get(k), int) and not isinstance(info.get(k), bool)})
    # Where a remote receiver ran, as the run says (run_test.sh's --meta in vm-vm).
    where = (run.info or {}).get("chain_receiver") if run is not None else None
    if isinstance(where, str) and where:
        found["receiver_where"] = where[:300]
    return found


def point_key(p: dict) -> tuple:
    return TOUCHES.index(p["touch"]), p["batch"], p["message_bytes"]


def point_name(p: dict) -> str:
    """'none batch 16 4 KiB': a point as the comparison and bad_messages name it."""
    return f"{p['touch']} batch {p['batch']} {fmt_size(p['message_bytes'])}"


def point_text(p: dict) -> str:
    """'touch none, batch 16, 4 KiB messages': a point in a sentence."""
    return f"touch {p['touch']}, batch {p['batch']}, {fmt_size(p['message_bytes'])} messages"


def chain_stats(df: pd.DataFrame, run) -> dict:
    """The points as written, by touch, batch and size (a repeated point in
    the order measured); the highest rate of each touch; the bad ones."""
    points = records(df, CHAIN, RENAME)
    points.sort(key=point_key)
    for p in points:
        p["point"] = point_name(p)
        # The messages that failed a check: the receiver counts every one
        # the responder found bad too (it forwards them unable to pass).
        p["bad"] = max(p["errors"], p["nf_errors"])
    peaks = {}
    for touch in TOUCHES:
        mine = [p for p in points if p["touch"] == touch]
        if mine:
            top = max(mine, key=lambda p: p["msgs_per_s"])
            peaks[touch] = {"msgs_per_s": top["msgs_per_s"], "gbps": top["gbps"],
                            "message_bytes": top["message_bytes"], "batch": top["batch"]}
    bad = [p for p in points if p["bad"]]
    return {
        "touches": [t for t in TOUCHES if t in peaks],
        "batches": sorted({p["batch"] for p in points}),
        "sizes": sorted({p["message_bytes"] for p in points}),
        "points": points,
        "peaks": peaks,
        "settings": run_settings(run),
        "bad_points": len(bad),
        "errors": int(sum(p["errors"] for p in points)),
        "nf_errors": int(sum(p["nf_errors"] for p in points)),
    }


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


CHAIN_NOTE = (
    "A forwarding chain, Rx -> NF -> Tx: the sender puts messages on ring A, the "
    "responder forwards each onto ring B (touch none: one copy; read: and checks its "
    "XXH3; write: checks it, increments a hop counter, checks again), the receiver takes "
    "them off ring B and checks every one. msgs/s and GB/s (1e9 bytes/s): messages "
    "received in the measured window; latency: through the chain, each message's send "
    "to its receipt; NF us/msg: the responder's CPU per message; errors: messages the "
    "receiver found bad, NF errors: those the responder did.")
TABLE = (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"),
         ("max", "max_ns"))


def chain_unit(points: list[dict]) -> tuple[str, float, int]:
    """One unit for the latencies of a table or plot, from their p50s' median."""
    medians = [p["p50_ns"] for p in points if p["p50_ns"]]
    return pick_unit(float(np.median(medians)) if medians else 0)


def settings_lines(ch: dict) -> list[str]:
    """Where the three stages ran and what was timed, from run.json."""
    s = ch["settings"]
    out = []
    if s.get("receiver", "").startswith("remote"):
        if "sender_cpu" in s:
            out.append(f"Sender on CPU {s['sender_cpu']}." if s["sender_cpu"] >= 0
                       else "Sender unpinned.")
        out.append(f"Receiver: {s.get('receiver_where') or s['receiver']}.")
        errs = [p["clock_error_ns"] for p in ch["points"]
                if p.get("clock_error_ns") is not None and p["clock_error_ns"] == p["clock_error_ns"]]
        if errs:
            out.append(f"Its latencies come from two clocks, each within "
                       f"{fmt_time(max(errs), pick_unit(max(errs)))} {pick_unit(max(errs))[0]} "
                       f"(clock_error_ns).")
    elif "sender_cpu" in s or "receiver_cpu" in s:
        where = [f"{who} on CPU {s[key]}" if s[key] >= 0 else f"{who} unpinned"
                 for who, key in (("sender", "sender_cpu"), ("receiver", "receiver_cpu"))
                 if key in s]
        text = ", ".join(where)
        if "receiver_cpu_reason" in s:
            text += f" ({s['receiver_cpu_reason']})"
        out.append(text[0].upper() + text[1:] + ".")
    if "receiver_wait" in s and not s.get("receiver", "").startswith("remote"):
        out.append(f"The receiver waits: {s['receiver_wait']}.")
    if "latency" in s:
        out.append(f"Latency: {s['latency']}.")
    if "duration_ns" in s:
        text = f"Measured {s['duration_ns'] / 1e6:,.0f} ms per point"
        if "warmup_ns" in s:
            text += f" after {s['warmup_ns'] / 1e6:,.0f} ms of warm-up"
        out.append(text + ".")
    impl = [f"{side} {what} {s[f'{side}_{what}_impl']}" for side in ("host", "guest")
            for what in ("verify", "copy") if f"{side}_{what}_impl" in s]
    if impl:
        out.append("Implementations: " + ", ".join(impl) + ".")
    return out


def latency_cells(p: dict, unit: tuple) -> list[str]:
    return [fmt_time(p[key], unit) for _, key in TABLE]


def latencies_text(p: dict) -> str:
    """'455,033', or '20,000,000 (histogram)' past chain.c's sample limit."""
    return f"{p['latency_count']:,}" + (" (histogram)" if p["latency_method"] == "histogram"
                                         else "")


def peak_lines(ch: dict) -> list[str]:
    return [f"{touch}: {peak['msgs_per_s']:,.0f} msgs/s at "
            f"{fmt_size(peak['message_bytes'])}, batch {peak['batch']}"
            for touch, peak in ch["peaks"].items()]


def report_chain(ch: dict) -> list[str]:
    points = ch["points"]
    unit = chain_unit(points)
    lines = ["", "FORWARDING CHAIN", "----------------"] + textwrap.wrap(CHAIN_NOTE, 78)
    settings = settings_line(points, ("verify", "wait", "slots", "inflight"))
    if settings:
        lines.append("Settings: " + settings)
    lines += textwrap.wrap(" ".join(settings_lines(ch)), 78)
    head = ["touch", "batch", "size", "msgs/s", "GB/s", "latencies"] \
        + [f"{n} ({unit[0]})" for n, _ in TABLE] + ["NF us/msg", "errors", "NF errors", ""]
    rows = [head]
    for p in points:
        rows.append([p["touch"], str(p["batch"]), fmt_size(p["message_bytes"]),
                     f"{p['msgs_per_s']:,.0f}", fmt_sig(p["gbps"]), latencies_text(p)]
                    + latency_cells(p, unit)
                    + [fmt_sig(p["nf_cpu_us_per_msg"]), f"{p['errors']:,}",
                       f"{p['nf_errors']:,}",
                       f"<< BAD: {p['bad']:,} bad messages" if p["bad"] else ""])
    lines += [""] + ["  " + l for l in table(rows, "lrl")]
    lines += ["", "Peak per touch:"] + [f"  {l}" for l in peak_lines(ch)]
    return lines


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


TOUCH_STYLE = {"none": ("tab:blue", "o"), "read": ("tab:green", "s"),
               "write": ("tab:purple", "^")}
PERCENTILE_LINES = {"p50_ns": "-", "p99_ns": "--", "p99_9_ns": ":"}


def plot_chain(ch: dict, title: str, partial: list[str]):
    """A row of panels per batch: msgs/s against message size, a curve per
    touch; and the latency's p50, p99 and p99.9 against message size, a
    colour per touch, a line style per percentile."""
    plt = pyplot()
    batches = ch["batches"]
    fig, axes = plt.subplots(len(batches), 2, figsize=(14, 5.2 * len(batches) + 0.6),
                             constrained_layout=True, squeeze=False)
    headline(fig, f"Forwarding chain by message size: {title}", partial)
    name, scale, _ = chain_unit(ch["points"])
    for (rate_ax, lat_ax), batch in zip(axes, batches):
        hidden_rate = hidden_lat = 0
        for touch in ch["touches"]:
            mine = [p for p in ch["points"] if p["touch"] == touch and p["batch"] == batch]
            color, marker = TOUCH_STYLE[touch]
            hidden_rate += size_curve(rate_ax, mine, "msgs_per_s", color=color, marker=marker,
                                      label=f"touch {touch}")
            for key, _, _ in PERCENTILE_STYLE:
                # One legend entry per touch; the line styles get their own below.
                hidden_lat += size_curve(lat_ax, mine, key, scale, color=color, marker=marker,
                                         ls=PERCENTILE_LINES[key],
                                         label=f"touch {touch}" if key == "p50_ns" else "_")
        for key, percentile, _ in PERCENTILE_STYLE:
            lat_ax.plot([], [], color="gray", ls=PERCENTILE_LINES[key], label=percentile)
        sizes = [p["message_bytes"] for p in ch["points"]]
        size_axes(rate_ax, sizes, "messages/s",
                  f"Batch {batch}: messages/s through the chain (higher is better)",
                  hidden_rate)
        size_axes(lat_ax, sizes, f"latency ({name})",
                  f"Batch {batch}: latency through the chain (lower is better)", hidden_lat)
    return fig


def plots(_df, ch: dict, title: str, partial: list[str]) -> list[Plot]:
    return [Plot("chain.png",
                 "The forwarding chain (sender, ring A, the responder's forward, ring B, "
                 "receiver) against message size, log-log, a row per batch: messages per "
                 "second received, and the latency from each message's send to its receipt "
                 "(p50, p99, p99.9), a colour per touch.",
                 lambda: plot_chain(ch, title, partial))]


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(ch: dict) -> str:
    points = ch["points"]
    unit = chain_unit(points)
    head = ["touch", "batch (messages)", "message size", "msgs/s", "GB/s",
            "latencies (messages timed)"] \
        + [f"{n} ({unit[0]})" for n, _ in TABLE] \
        + ["NF CPU (µs/msg)", "bad messages (receiver)", "bad messages (NF)"]
    rows = [page.Row([p["touch"], str(p["batch"]), fmt_size(p["message_bytes"]),
                      f"{p['msgs_per_s']:,.0f}", fmt_sig(p["gbps"]), latencies_text(p)]
                     + latency_cells(p, unit)
                     + [fmt_sig(p["nf_cpu_us_per_msg"]),
                        f"{p['errors']:,} BAD" if p["errors"] else "0",
                        f"{p['nf_errors']:,} BAD" if p["nf_errors"] else "0"],
                     "bad" if p["bad"] else "")
            for p in points]
    settings = settings_line(points, ("verify", "wait", "slots", "inflight"))
    return page.join(
        page.para(CHAIN_NOTE),
        page.para("Settings: " + settings, "note") if settings else "",
        page.para(" ".join(settings_lines(ch)), "note") if ch["settings"] else "",
        page.table(head, rows, "lrl"),
        page.tag("h3", "Peak per touch"), page.items(peak_lines(ch)))


def chain_facts(ch: dict) -> list[Fact]:
    """The highest rate through the chain, and the p50 of the first point
    (the smallest size, the lightest touch and batch)."""
    i, top = max(enumerate(ch["points"]), key=lambda ip: ip[1]["msgs_per_s"])
    found = [Fact("chain peak", f"{top['msgs_per_s']:,.0f}", "msgs/s", top["msgs_per_s"],
                  f"chain.points.{i}.msgs_per_s", point_text(top))]
    timed = [(i, p) for i, p in enumerate(ch["points"]) if p["p50_ns"] is not None]
    if timed:
        i, p = timed[0]
        unit = pick_unit(p["p50_ns"])
        found.append(Fact("chain latency p50", fmt_time(p["p50_ns"], unit), unit[0],
                          p["p50_ns"], f"chain.points.{i}.p50_ns", point_text(p)))
    return found


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


METRICS = (("msgs/s", "msgs_per_s", "msgs/s", "higher"),
           ("GB/s", "gbps", "GB/s", "higher"),
           ("p50", "p50_ns", "ns", "lower"),
           ("p99", "p99_ns", "ns", "lower"))


def compare(summaries: list[dict], add) -> None:
    """Each point (touch, batch, size): msgs/s, GB/s, p50 and p99."""
    per_run = [keyed((s.get("chain") or {"points": []})["points"], point_key)
               for s in summaries]
    for key in sorted(set().union(*per_run)):
        (touch, batch, size), repeat = key
        name = f"chain {TOUCHES[touch]} batch {batch} {fmt_size(size)}" \
            + (f" (repeat {repeat + 1})" if repeat else "")
        per = [points.get(key) for points in per_run]
        bad = [dict(p, errors=p["bad"]) if p else None for p in per]
        for label, column, unit, better in METRICS:
            add(f"{name} {label}", unit, better, [p[column] if p else None for p in per], bad)


def headline_figure(name: str) -> bool:
    """Each point's msgs/s and latency p50."""
    return name.startswith("chain ") and name.endswith((" msgs/s", " p50"))


def metric_text(m: dict, value, _lat_unit) -> str:
    return fmt_time(value, row_time_unit(m)) if m["unit"] == "ns" else fmt_sig(value)


def metric_unit(m: dict, _lat_unit) -> str:
    return row_time_unit(m)[0] if m["unit"] == "ns" else m["unit"]


def plot_compare_chain(labels: list[str], runs: list, summaries: list[dict]):
    """Each run's chain over the others': a row per touch, msgs/s and p50
    against message size, a colour per run, a line style per batch."""
    plt = pyplot()
    entries = [s.get("chain") or {"points": [], "touches": []} for s in summaries]
    touches = [t for t in TOUCHES if any(t in e["touches"] for e in entries)]
    fig, axes = plt.subplots(len(touches), 2, figsize=(14, 4.8 * len(touches)),
                             constrained_layout=True, squeeze=False)
    compare_headline(fig, "Forwarding chain by message size, runs overlaid", runs)
    name, scale, _ = chain_unit([p for e in entries for p in e["points"]])
    for (rate_ax, lat_ax), touch in zip(axes, touches):
        sizes = []
        for i, (label, e) in enumerate(zip(labels, entries)):
            batches = sorted({p["batch"] for p in e["points"]})
            for j, batch in enumerate(batches):
                mine = [p for p in e["points"] if p["touch"] == touch and p["batch"] == batch]
                if not mine:
                    continue
                sizes += [p["message_bytes"] for p in mine]
                style = dict(run_style(i), ls=("-", "--", ":", "-.")[j % 4],
                             label=f"[{i + 1}] {label}, batch {batch}")
                size_curve(rate_ax, mine, "msgs_per_s", **style)
                size_curve(lat_ax, mine, "p50_ns", scale, **style)
        size_axes(rate_ax, sizes, "messages/s", f"touch {touch}: msgs/s (higher is better)")
        size_axes(lat_ax, sizes, f"p50 ({name})", f"touch {touch}: p50 (lower is better)")
    return fig


def compare_plots(labels: list[str], runs: list, summaries: list[dict]) -> list[Plot]:
    if not any(s.get("chain") for s in summaries):
        return []
    return [Plot("comparison_chain.png",
                 "Each run's forwarding chain against message size, overlaid: a row per "
                 "touch, msgs/s and latency p50, a colour per run, a line style per batch.",
                 lambda: plot_compare_chain(labels, runs, summaries))]


FLAGGED = Flagged(
    file=CHAIN_CSV, rows=lambda ch: [dict(p, errors=p["bad"]) for p in ch["points"]],
    point=lambda p: f"chain {p['point']}", prefix="chain ", banner="chain point",
    counted="chain points")


KIND = Kind(
    name="chain", key="chain", title="Forwarding chain",
    files=((CHAIN, load_chain),),
    summarize=chain_stats, text=report_chain, html=html, plots=plots,
    headline=chain_facts, flagged=FLAGGED, compare=compare,
    metric_text=metric_text, metric_unit=metric_unit, compare_plots=compare_plots,
    headline_figure=headline_figure, always=False,
)
