"""
transport - ivshmem beside the other channels a host and a guest could use
(transport_results.csv, written by transport_bench): the same size-latency
ping-pong and the same stream over a pipe, a UNIX socket, TCP loopback, a
virtio-serial port, TCP over virtio-net or AF_VSOCK, every message through
one framing and check (common/xport.c), so the rows differ only in the
channel. The ivshmem rows are host_writer's of the same run
(size_latency_results.csv, and the h2g points of stream_results.csv),
plain or doorbell as run.json's mode says; every other figure gets its
ratio to ivshmem's at the same size.

transport_bench writes its own results directory, which a run puts in
transports/ beside host_writer's files, with its own run.json: it is read
from there (its status and row counts checked like the run's own) or, when
transport_bench's directory is analysed by itself, from the directory.
A transport that could not be set up, or was lost, is a row with its reason.

Each transport is set beside ivshmem on its own side (run_test.sh
--transports): in a run in a VM, the guest's channels (virtio-*, serial:,
vsock:) beside the VM's ivshmem rows, the host's (a pipe, a UNIX socket, TCP
loopback) beside ivshmem host-only of the same run, which run_test.sh puts
in host-ivshmem/; in a host-only run every transport beside the run's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import page
from analysis.kind import Fact, Flagged, Kind
from analysis.kinds.sizelat import SIZELAT, load_sizelat
from analysis.kinds.stream import STREAM, load_stream
from analysis.plots import (RUN_COLORS, Plot, headline, legend, pyplot, size_axes, size_curve)
from analysis.runinfo import RUN_JSON
from analysis.stats import keyed, ratio, records
from analysis.tables import (AGREE, MAX_MESSAGE, OPTIONAL, TEXT, Column, Loaded, Schema, Table,
                             check_distribution, first_bad, fmt_number, impossible, one_of,
                             read_table, row_frame, shown)
from analysis.units import fmt_sig, fmt_size, fmt_time, pick_unit, ratio_mark, ratio_text, table

MAX_ITERATIONS = 100_000_000   # transport_bench --lat-iterations: 10..100M round trips a size
SUBDIR = "transports"          # where a run keeps transport_bench's results
HOST_IVSHMEM = "host-ivshmem"  # a run in a VM: ivshmem host-only, beside the host's channels
# Names of the guest's channels (run_test.sh's, and transport_bench's specs).
GUEST_CHANNELS = ("virtio", "serial:", "vsock:")
TESTS = ("sizelat", "stream")  # a measured row's test
UNAVAILABLE = ("all", "failed")  # a row saying a transport could not be set up, or was lost
WHY = {"all": "not set up", "failed": "lost during the run"}
VERIFY = ("xxh3", "sha256", "none")
TIMES = ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns")
RATES = ("messages", "seconds", "msgs_per_s", "gbps")

TRANSPORT = Schema("transport", "transport_results.csv", dict(
    transport=Column(numeric=False, required=True),
    test=Column(numeric=False, required=True),
    message_bytes=Column(required=True, allow_empty=True, integer=True, minimum=1,
                         maximum=MAX_MESSAGE, why="IVB_MAX_MESSAGE, 64 MiB"),
    verify=TEXT,
    count=Column(required=True, allow_empty=True, integer=True, maximum=MAX_ITERATIONS,
                 why="--lat-iterations, at most 100M"),
    **{name: Column(required=True, allow_empty=True) for name in TIMES},
    messages=Column(required=True, allow_empty=True, integer=True),
    seconds=Column(required=True, allow_empty=True),
    msgs_per_s=Column(required=True, allow_empty=True),
    gbps=Column(required=True, allow_empty=True),
    errors=Column(required=True, allow_empty=True, integer=True),
    host_cpu_us_per_msg=OPTIONAL,
    peer_cpu_us_per_msg=OPTIONAL,
    available=Column(required=True, integer=True, maximum=1, why="a yes or no"),
    reason=Column(numeric=False, allow_empty=True),
), program="transport_bench")
TRANSPORT_CSV = TRANSPORT.file


@dataclass
class TransportData:
    """transport_bench's rows, where they came from, and ivshmem host-only
    of the same run when the run's own ivshmem is a VM's."""

    frame: pd.DataFrame
    source: str             # the CSV, relative to the run: "transports/transport_results.csv"
    info: dict | None       # its own run.json, when it is not the run's
    host_sizelat: pd.DataFrame | None = None  # host-ivshmem/size_latency_results.csv
    host_stream: pd.DataFrame | None = None   # host-ivshmem/stream_results.csv


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_transport(path: Path) -> Loaded:
    """Load transport_results.csv, checking each row as transport_bench
    writes it: a measured row (sizelat or stream, available 1) has its
    test's figures and no others; a row of a transport not available (all
    or failed, available 0) has a reason and no figure."""
    table = read_table(path, TRANSPORT.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    test, verify = cols["test"], cols["verify"]
    first_bad(table, "test", ~np.isin(test, TESTS + UNAVAILABLE),
              lambda v: f"expected {one_of(TESTS + UNAVAILABLE)}, got {shown(v)}")
    first_bad(table, "verify", (verify != "") & ~np.isin(verify, VERIFY),
              lambda v: f"expected {one_of(VERIFY)}, got {shown(v)}")
    check_transport_rows(table)
    df = row_frame(table)
    for name, column in TRANSPORT.columns.items():
        if column.integer and name in df and not df[name].isna().any():
            df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_transport_rows(table: Table) -> None:
    """Each row's figures as transport_bench writes them (see load_transport),
    percentiles in a distribution's order, and a stream point's rates as it
    computes them: msgs_per_s = messages / seconds and gbps = messages x
    message_bytes / seconds / 10^9, within the rounding of what it prints
    (seconds %.6f, msgs_per_s %.1f, gbps %.4f) and AGREE."""
    cols = table.columns
    test = cols["test"]
    measured = cols["available"] == 1
    sizelat, stream = test == "sizelat", test == "stream"
    first_bad(table, "available", measured != np.isin(test, TESTS),
              lambda i: f"{fmt_number(cols['available'][i])} with test {shown(test[i])}: a "
                        "measured row (sizelat, stream) has 1, a row saying a transport is "
                        "not available (all, failed) 0", by_row=True)
    first_bad(table, "reason", ~measured & (cols["reason"] == ""),
              lambda _: "empty: a transport not available says why")
    for name in ("message_bytes", "errors"):
        first_bad(table, name, measured & np.isnan(cols[name]),
                  lambda _: "empty value: a measured row has one")
    figures = ("count",) + TIMES + RATES + ("host_cpu_us_per_msg", "peer_cpu_us_per_msg")
    for name in figures:
        if name not in cols:
            continue
        first_bad(table, name, ~measured & ~np.isnan(cols[name]),
                  lambda v: f"{fmt_number(v)} in the row of a transport not available (it "
                            "has no figures)")
        wrong = stream if name in ("count",) + TIMES else sizelat if name in RATES else None
        if wrong is not None:
            other = "a stream" if name in ("count",) + TIMES else "a size-latency"
            first_bad(table, name, wrong & ~np.isnan(cols[name]),
                      lambda v, other=other: f"{fmt_number(v)} in a row of the other test "
                                             f"({other} row leaves it empty)")
    count = cols["count"]
    first_bad(table, "count", sizelat & np.isnan(count), lambda _: "empty value: a "
              "size-latency row says how many round trips it timed")
    with np.errstate(invalid="ignore"):
        timed = sizelat & (count > 0)
        for name in TIMES:
            first_bad(table, name, timed & np.isnan(cols[name]),
                      lambda _: "empty value: a row of timed round trips has every figure")
            first_bad(table, name, sizelat & (count == 0) & ~np.isnan(cols[name]),
                      lambda v: f"{fmt_number(v)} with no round trip timed (count 0)")
        first_bad(table, "errors", sizelat & (count == 0) & (cols["errors"] == 0),
                  lambda _: "0 with no round trip timed: a row of count 0 says every echo "
                            "was bad")
        check_distribution(table, ("min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"))
        for name in RATES:
            first_bad(table, name, stream & np.isnan(cols[name]),
                      lambda _: "empty value: a stream row has messages, seconds and rates")
        messages, secs = cols["messages"], cols["seconds"]
        rate, gbps, size = cols["msgs_per_s"], cols["gbps"], cols["message_bytes"]
        first_bad(table, "seconds", stream & ~(secs > 0),
                  lambda v: f"{fmt_number(v)}: a stream point lasts a measured time above 0")
        slack = 0.05 * secs + 5e-7 * (rate + 0.05) + AGREE * messages
        impossible(table, "msgs_per_s", stream & (np.abs(rate * secs - messages) > slack),
                   lambda i: f"{fmt_number(rate[i])} is not messages / seconds "
                             f"({fmt_number(messages[i])} in {fmt_number(secs[i])} s)")
        moved, ns = messages * size, secs * 1e9
        slack = 5e-5 * ns + 5e-7 * 1e9 * (gbps + 5e-5) + AGREE * moved
        impossible(table, "gbps", stream & (np.abs(gbps * ns - moved) > slack),
                   lambda i: f"{fmt_number(gbps[i])} is not messages x message_bytes / seconds "
                             f"/ 10^9 ({fmt_number(moved[i])} bytes in {fmt_number(secs[i])} s)")


def assemble(run, loaded: dict, prov, info_path: Path) -> TransportData | None:
    """The rows, where they came from (transports/ or the directory itself),
    from transports/ transport_bench's own run.json, and host-ivshmem/'s
    rows when there are any."""
    result = loaded.get(TRANSPORT_CSV)
    if result is None or result.frame is None:
        return None
    source = result.path.relative_to(run.directory).as_posix()

    def host(file):
        got = loaded.get(f"{HOST_IVSHMEM}/{file}")
        return got.frame if got is not None else None

    return TransportData(result.frame, source,
                         prov.info if info_path.parent != run.directory else None,
                         host(SIZELAT.file), host(STREAM.file))


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------

RENAME = {"p999_ns": "p99_9_ns"}
SIZE_RATIOS = (("p50", "p50_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"))
STREAM_RATIOS = (("msgs_per_s", "msgs_per_s"), ("gbps", "gbps"))
SIZE_KEYS = ("transport", "message_bytes", "verify", "count", "min_ns", "mean_ns", "p50_ns",
             "p90_ns", "p99_ns", "p99_9_ns", "max_ns", "errors", "host_cpu_us_per_msg",
             "peer_cpu_us_per_msg", "file", "line")
STREAM_KEYS = ("transport", "message_bytes", "verify", "messages", "seconds", "msgs_per_s",
               "gbps", "errors", "host_cpu_us_per_msg", "peer_cpu_us_per_msg", "file", "line")


def baseline_labels(info: dict | None, host: bool) -> tuple[str, str | None]:
    """The labels of ivshmem's rows: the run's own ("ivshmem (plain)", with
    ", VM" in a VM) and, when there are any, host-only's."""
    mode = (info or {}).get("mode")
    name = f"ivshmem ({mode})" if mode else "ivshmem"
    if (info or {}).get("target") != "vm":
        return name, None
    return f"{name}, VM", f"{name}, host-only" if host else None


def ivshmem_rows(sizelat: pd.DataFrame | None, stream: pd.DataFrame | None, label: str,
                 where: str = "") -> tuple[list[dict], list[dict]]:
    """host_writer's size-latency rows and h2g stream points as rows of
    this kind, labelled (the responder's CPU as the peer's)."""
    sizes, points = [], []
    if sizelat is not None:
        for r in records(sizelat.sort_values("message_bytes", kind="stable"), SIZELAT, RENAME):
            sizes.append({**{k: r.get(k) for k in SIZE_KEYS}, "transport": label,
                          "file": where + SIZELAT.file, "baseline": None,
                          "ratio_to_ivshmem": None})
    if stream is not None:
        h2g = stream[stream["direction"] == "h2g"].sort_values("message_bytes", kind="stable")
        for r in records(h2g, STREAM, {}):
            points.append({**{k: r.get(k) for k in STREAM_KEYS}, "transport": label,
                           "peer_cpu_us_per_msg": r["guest_cpu_us_per_msg"],
                           "file": where + STREAM.file, "baseline": None,
                           "ratio_to_ivshmem": None})
    return sizes, points


def side(name: str, vm: bool) -> str:
    """Which ivshmem a transport is set beside: "vm" for a guest's channel
    in a run in a VM, else "host"."""
    return "vm" if vm and name.startswith(GUEST_CHANNELS) else "host"


def with_ratios(rows: list[dict], bases: dict, ratios) -> None:
    """Each row's figures over ivshmem's at the same size on its side
    (bases: side -> (label, rows)); None where that ivshmem has no row."""
    first = {s: (label, {}) for s, (label, _) in bases.items()}
    for s, (_, base) in bases.items():
        for b in base:
            first[s][1].setdefault(b["message_bytes"], b)
    for r in rows:
        label, mine = first.get(r["side"], (None, {}))
        b = mine.get(r["message_bytes"])
        r["baseline"] = label if b is not None else None
        r["ratio_to_ivshmem"] = None if b is None else {
            name: ratio(r[key], b[key]) for name, key in ratios}
        del r["side"]


def summarize(data: TransportData, run) -> dict:
    df = data.frame
    vm = (run.info or {}).get("target") == "vm"
    host_rows = data.host_sizelat is not None or data.host_stream is not None
    own_label, host_label = baseline_labels(run.info, host_rows)
    names = list(dict.fromkeys(df["transport"]))
    measured = df[df["available"] == 1]
    order = {n: i for i, n in enumerate(names)}

    def rows_of(test: str, keys) -> list[dict]:
        part = measured[measured["test"] == test]
        part = part.assign(_t=part["transport"].map(order)).sort_values(
            ["_t", "message_bytes"], kind="stable")
        return [{**{k: r.get(k) for k in keys}, "file": data.source,
                 "side": side(r["transport"], vm)}
                for r in records(part, TRANSPORT, RENAME)]

    own = ivshmem_rows(run.data.get("sizelat"), run.data.get("stream"), own_label)
    host = ivshmem_rows(data.host_sizelat, data.host_stream, host_label or "",
                        f"{HOST_IVSHMEM}/") if host_label else ([], [])
    # In a VM the host's channels go beside ivshmem host-only; without it, none.
    bases = {"vm": own, "host": host} if vm else {"host": own}
    labels = {"vm": own_label, "host": host_label} if vm else {"host": own_label}
    sizes, points = rows_of("sizelat", SIZE_KEYS), rows_of("stream", STREAM_KEYS)
    with_ratios(sizes, {s: (labels[s], b[0]) for s, b in bases.items()}, SIZE_RATIOS)
    with_ratios(points, {s: (labels[s], b[1]) for s, b in bases.items()}, STREAM_RATIOS)
    baselines = [label for label, rows in ((own_label, own), (host_label, host))
                 if label and (rows[0] or rows[1])]
    unavailable = [{"transport": r.transport, "test": r.test, "reason": r.reason,
                    "line": int(r.line)}
                   for r in df[df["available"] == 0].itertuples(index=False)]
    bad = [r for r in sizes + points if r["errors"]]
    info = data.info
    return {
        "source": data.source,
        "run": None if info is None else {k: info.get(k) for k in (
            "run_id", "status", "version", "program", "start_time", "end_time", "verify",
            "lat_iterations", "duration_ns")},
        "baselines": baselines,
        "transports": baselines + [n for n in names if (measured["transport"] == n).any()],
        "unavailable": unavailable,
        "sizes": own[0] + host[0] + sizes,
        "stream": own[1] + host[1] + points,
        "bad_points": len(bad),
        "errors": int(sum(r["errors"] for r in bad)),
        "ratio": "a transport's figure over ivshmem's at the same size on its side (in a VM: "
                 "the guest's channels over the VM's ivshmem, the host's over ivshmem "
                 "host-only; round trip: above 1 is slower; msgs/s and GB/s: below 1 is "
                 "slower)",
    }


def others(rows: list[dict], tr: dict) -> list[dict]:
    """The rows of transport_bench's transports (not ivshmem's)."""
    return [r for r in rows if r["transport"] not in tr["baselines"]]


def beside_whom(r: dict, tr: dict) -> list[str]:
    """The ivshmem a row's ratios are to, as a cell, when there are two."""
    if len(tr["baselines"]) < 2:
        return []
    if r["transport"] in tr["baselines"]:
        return ["-"]
    return [(r["baseline"] or "-").split(", ")[-1]]


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


def size_unit(tr: dict) -> tuple[str, float, int]:
    """One unit for the round trips of every transport: from the median p50."""
    timed = [s["p50_ns"] for s in tr["sizes"] if s["count"]]
    return pick_unit(float(np.median(timed)) if timed else 0)


def ratio_of(r: dict, key: str, times: str = "x") -> str:
    """A row's ratio to ivshmem for the text ("x") or the page ("×")."""
    value = (r.get("ratio_to_ivshmem") or {}).get(key)
    if value is None:
        return "-"
    return ratio_mark(value) if times == "×" else ratio_text(value)


def text(tr: dict) -> list[str]:
    based, two = bool(tr["baselines"]), len(tr["baselines"]) > 1
    lines = ["", "OTHER TRANSPORTS", "----------------",
             "The size-latency ping-pong and the stream over other channels (transport_bench:",
             "one framing and check for all), beside ivshmem's of the same run.",
             "x ivshmem: the figure over ivshmem's at the same size (round trip: above 1 is",
             "slower; msgs/s and GB/s: below 1 is slower).",
             f"Source: {tr['source']}" + (f" (transport_bench run {tr['run']['status']})"
                                          if tr["run"] else "")]
    if not based:
        lines.append("No ivshmem rows in this run (size_latency_results.csv, stream_results.csv): "
                     "no ratios.")
    elif two:
        lines.append("In a VM: the guest's channels over the VM's ivshmem, the host's over "
                     "ivshmem host-only (over).")

    def bad(r):
        return [f"{r['errors']:,}", f"<< BAD: {r['errors']:,} bad messages" if r["errors"] else ""]

    over = ["over"] if two else []
    if tr["sizes"]:
        unit = size_unit(tr)
        rows = [["transport", "size", "round trips"]
                + [f"{n} ({unit[0]})" for n in ("p50", "p99", "p99.9", "max")]
                + (["p50 x ivshmem", "p99 x ivshmem"] if based else []) + over + ["errors", ""]]
        for s in tr["sizes"]:
            rows.append([s["transport"], fmt_size(s["message_bytes"]), f"{s['count']:,}"]
                        + [fmt_time(s[k], unit) for k in ("p50_ns", "p99_ns", "p99_9_ns",
                                                          "max_ns")]
                        + ([ratio_of(s, "p50"), ratio_of(s, "p99")] if based else [])
                        + beside_whom(s, tr) + bad(s))
        lines += ["", "Round trip by message size:", ""] + ["  " + l for l in table(rows, "ll")]
    if tr["stream"]:
        rows = [["transport", "size", "msgs/s", "GB/s", "host us/msg", "peer us/msg"]
                + (["x ivshmem"] if based else []) + over + ["errors", ""]]
        for p in tr["stream"]:
            rows.append([p["transport"], fmt_size(p["message_bytes"]), f"{p['msgs_per_s']:,.0f}",
                         fmt_sig(p["gbps"]), fmt_sig(p["host_cpu_us_per_msg"]),
                         fmt_sig(p["peer_cpu_us_per_msg"])]
                        + ([ratio_of(p, "msgs_per_s")] if based else [])
                        + beside_whom(p, tr) + bad(p))
        lines += ["", "Stream, initiator to responder" + (" (ivshmem: its h2g points):"
                                                          if based else ":"), ""] \
            + ["  " + l for l in table(rows, "ll")]
    if tr["unavailable"]:
        lines += ["", "Not available:"] + [f"  {u['transport']} ({WHY[u['test']]}): "
                                           f"{u['reason']}" for u in tr["unavailable"]]
    return lines


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def styles(tr: dict) -> dict:
    """Colour and marker of each transport: ivshmem black, the others in turn."""
    found = {}
    for i, name in enumerate(n for n in tr["transports"] if n not in tr["baselines"]):
        found[name] = {"color": RUN_COLORS[i % len(RUN_COLORS)], "marker": "sD^v<>ph*"[i % 9]}
    for name, color, marker in zip(tr["baselines"], ("black", "dimgray"), "oX"):
        found[name] = {"color": color, "marker": marker, "lw": 2.4}
    return found


def plot_latency(tr: dict, title: str, partial: list[str]):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    headline(fig, f"Round trip by message size, ivshmem and the other transports: {title}",
             partial)
    name, scale, _ = size_unit(tr)
    look = styles(tr)
    for ax, (key, percentile) in zip(axes, (("p50_ns", "p50"), ("p99_ns", "p99"))):
        hidden = 0
        for t in tr["transports"]:
            mine = [s for s in tr["sizes"] if s["transport"] == t]
            if mine:
                style = dict(look[t])
                lw = style.pop("lw", None)
                hidden += size_curve(ax, mine, key, scale, label=t, **style)
                if lw:
                    ax.lines[-1].set_linewidth(lw)
        size_axes(ax, [s["message_bytes"] for s in tr["sizes"]], f"round trip {percentile} "
                  f"({name})", f"{percentile} of the round trip (lower is better)", hidden)
        legend(ax)
    return fig


def plot_throughput(tr: dict, title: str, partial: list[str]):
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    headline(fig, f"Stream throughput by message size, ivshmem and the other transports: "
                  f"{title}", partial)
    look = styles(tr)
    for ax, (key, ylabel, name) in zip(axes, (("msgs_per_s", "messages/s", "Messages per "
                                                "second"),
                                               ("gbps", "GB/s (1e9 bytes/s)", "Throughput"))):
        hidden = 0
        for t in tr["transports"]:
            mine = [p for p in tr["stream"] if p["transport"] == t]
            if mine:
                style = dict(look[t])
                lw = style.pop("lw", None)
                hidden += size_curve(ax, mine, key, label=t, **style)
                if lw:
                    ax.lines[-1].set_linewidth(lw)
        size_axes(ax, [p["message_bytes"] for p in tr["stream"]], ylabel,
                  f"{name} (higher is better)", hidden)
        legend(ax)
    return fig


def plots(_data, tr: dict, title: str, partial: list[str]) -> list[Plot]:
    found = []
    if tr["sizes"]:
        found.append(Plot("transport_latency.png",
                          "The round trip of one message of each size (sent, echoed, and "
                          "read back and checked) over each transport, ivshmem in black (in a "
                          "VM, ivshmem host-only in grey): p50 and p99 against message size, "
                          "log-log.",
                          lambda: plot_latency(tr, title, partial)))
    if tr["stream"]:
        found.append(Plot("transport_throughput.png",
                          "Messages per second and GB/s of a stream of checked messages, "
                          "initiator to responder, over each transport, ivshmem in black (in a "
                          "VM, ivshmem host-only in grey), against message size, log-log.",
                          lambda: plot_throughput(tr, title, partial)))
    return found


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(tr: dict) -> str:
    based, two = bool(tr["baselines"]), len(tr["baselines"]) > 1
    parts = [page.para("The same size-latency ping-pong and the same stream over the other "
                       "channels (transport_bench: one framing and check for all)"
                       + (", beside ivshmem's of the same run. × ivshmem: the figure over "
                          "ivshmem's at the same size (round trip: above 1 is slower; msgs/s "
                          "and GB/s: below 1 is slower)." if based else "."))]
    if not based:
        parts.append(page.para("No ivshmem rows in this run (size_latency_results.csv, "
                               "stream_results.csv beside these results): no ratios.", "note"))
    elif two:
        parts.append(page.para("In a VM each channel is set beside ivshmem on its own side: "
                               "the guest's channels (virtio-*) over the VM's ivshmem, the "
                               "host's over ivshmem host-only, measured in the same run "
                               "(host-ivshmem/).", "note"))
    if tr["unavailable"]:
        parts += [page.tag("h3", "Not available"),
                  page.items([f"{u['transport']} ({WHY[u['test']]}): {u['reason']}"
                              for u in tr["unavailable"]])]

    def mark(r):
        return "bad" if r["errors"] else "base" if r["transport"] in tr["baselines"] else ""

    def bad(r):
        return [f"{r['errors']:,} BAD" if r["errors"] else "0"]

    if tr["sizes"]:
        unit = size_unit(tr)
        ratios = ["p50 × ivshmem", "p99 × ivshmem"] if based else []
        rows = [page.Row([s["transport"], fmt_size(s["message_bytes"]), f"{s['count']:,}"]
                         + [fmt_time(s[k], unit) for k in ("p50_ns", "p99_ns", "p99_9_ns",
                                                           "max_ns")]
                         + ([ratio_of(s, "p50", "×"), ratio_of(s, "p99", "×")] if based else [])
                         + beside_whom(s, tr) + bad(s), mark(s)) for s in tr["sizes"]]
        parts += [page.tag("h3", "Round trip by message size"),
                  page.table(["transport", "message size", "round trips"]
                             + [f"{n} ({unit[0]})" for n in ("p50", "p99", "p99.9", "max")]
                             + ratios + (["× ivshmem of"] if two else []) + ["bad messages"],
                             rows, "ll" + "r" * (5 + len(ratios)) + "l" * two + "r")]
    if tr["stream"]:
        ratios = ["msgs/s × ivshmem"] if based else []
        rows = [page.Row([p["transport"], fmt_size(p["message_bytes"]),
                          f"{p['msgs_per_s']:,.0f}", fmt_sig(p["gbps"]),
                          fmt_sig(p["host_cpu_us_per_msg"]), fmt_sig(p["peer_cpu_us_per_msg"])]
                         + ([ratio_of(p, "msgs_per_s", "×")] if based else [])
                         + beside_whom(p, tr) + bad(p), mark(p)) for p in tr["stream"]]
        parts += [page.tag("h3", "Stream, initiator to responder"),
                  page.table(["transport", "message size", "msgs/s", "GB/s",
                              "initiator CPU (µs/msg)", "responder CPU (µs/msg)"] + ratios
                             + (["× ivshmem of"] if two else []) + ["bad messages"], rows,
                             "ll" + "r" * (4 + len(ratios)) + "l" * two + "r")]
        if based:
            parts.append(page.para("ivshmem's rows are host_writer's h2g stream points; its "
                                   "responder CPU is the guest's (or, host-only, guest_reader's "
                                   "on the host).", "note"))
    return page.join(*parts)


def headline_facts(tr: dict) -> list[Fact]:
    """The fastest other transport's round trip at the smallest size (one
    ivshmem measured too, when there is an ivshmem), and the fastest other
    stream in GB/s, each with its ratio to ivshmem's when there is one."""
    found = []
    timed = [s for s in others(tr["sizes"], tr) if s["count"]
             and (s["ratio_to_ivshmem"] or not tr["baselines"])]
    if timed:
        size = min(s["message_bytes"] for s in timed)
        best = min((s for s in timed if s["message_bytes"] == size), key=lambda s: s["p50_ns"])
        unit = pick_unit(best["p50_ns"])
        found.append(Fact(f"fastest other round trip p50, {fmt_size(size)}",
                          fmt_time(best["p50_ns"], unit), unit[0], best["p50_ns"],
                          f"transport.sizes.{tr['sizes'].index(best)}.p50_ns",
                          best["transport"] + (f": {ratio_of(best, 'p50', '×')} ivshmem's"
                                               if tr["baselines"] else "")))
    streams = [p for p in others(tr["stream"], tr)
               if p["ratio_to_ivshmem"] or not tr["baselines"]]
    if streams:
        best = max(streams, key=lambda p: p["gbps"])
        found.append(Fact(f"fastest other stream, {fmt_size(best['message_bytes'])}",
                          fmt_sig(best["gbps"]), "GB/s", best["gbps"],
                          f"transport.stream.{tr['stream'].index(best)}.gbps",
                          best["transport"] + (f": {ratio_of(best, 'gbps', '×')} ivshmem's"
                                               if tr["baselines"] else "")))
    return found


def warnings(tr: dict) -> list[str]:
    return [f"{u['transport']}: lost during the run: {u['reason']}" for u in tr["unavailable"]
            if u["test"] == "failed"]


def links(tr: dict) -> list[tuple[str, str]]:
    """The files read from transports/ (the run's own are linked already)."""
    if tr["source"] == TRANSPORT_CSV:
        return []
    found = [(tr["source"], tr["source"])]
    if tr["run"] is not None:
        found.append((f"{SUBDIR}/{RUN_JSON}", f"{SUBDIR}/{RUN_JSON}"))
    return found


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


def compare(summaries: list[dict], add) -> None:
    """Each other transport's p50 and p99 by size and its stream's msgs/s
    and GB/s, run by run (ivshmem's are the size-latency and stream rows)."""
    for test, keys in (("sizes", (("p50", "p50_ns", "ns", "lower"),
                                  ("p99", "p99_ns", "ns", "lower"))),
                       ("stream", (("msgs/s", "msgs_per_s", "msgs/s", "higher"),
                                   ("GB/s", "gbps", "GB/s", "higher")))):
        tables = [keyed(others(s["transport"][test], s["transport"]) if s.get("transport")
                        else [], lambda r: (r["transport"], r["message_bytes"]))
                  for s in summaries]
        for key in sorted(set().union(*tables), key=lambda k: (k[0][0], k[0][1], k[1])):
            (name, size), repeat = key
            title = f"transport {name} {'stream ' if test == 'stream' else ''}{fmt_size(size)}" \
                + (f" (repeat {repeat + 1})" if repeat else "")
            per = [rows.get(key) for rows in tables]
            for label, column, unit, better in keys:
                add(f"{title} {label}", unit, better,
                    [r[column] if r and (test == "stream" or r["count"]) else None for r in per],
                    per)


def metric_text(m: dict, value, _lat_unit) -> str:
    return fmt_time(value, pick_unit(min(v for v in m["values"] if v is not None))) \
        if m["unit"] == "ns" else fmt_sig(value)


def metric_unit(m: dict, _lat_unit) -> str:
    return pick_unit(min(v for v in m["values"] if v is not None))[0] if m["unit"] == "ns" \
        else m["unit"]


FLAGGED = Flagged(
    file=lambda tr: tr["source"],
    rows=lambda tr: others(tr["sizes"], tr) + others(tr["stream"], tr),
    point=lambda r: f"transport {r['transport']} {'round trip' if 'count' in r else 'stream'} "
                    f"{fmt_size(r['message_bytes'])}",
    prefix="transport ", banner="transport point", counted="transport points")

def headline_figure(name: str) -> bool:
    """Each other transport's p50 by size and its stream's GB/s."""
    return name.startswith("transport ") and name.endswith((" p50", " GB/s"))


KIND = Kind(
    name="transport", key="transport", title="ivshmem and the other transports",
    files=((TRANSPORT, load_transport),),
    summarize=summarize, text=text, html=html, assemble=assemble, plots=plots,
    headline=headline_facts, warnings=warnings, flagged=FLAGGED, compare=compare,
    metric_text=metric_text, metric_unit=metric_unit, subdir=SUBDIR, always=False,
    extra=((HOST_IVSHMEM, ((SIZELAT, load_sizelat), (STREAM, load_stream))),),
    links=links, headline_figure=headline_figure,
)
