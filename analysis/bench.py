"""
bench - the page of `make bench` (results/bench/): every configuration's
round trip beside the limits measured in the same run (two host processes
polling shared memory, the eventfd wake-up floor), with its ratio to its
limit; the streams host-only and in the VMs with their ratios, each beside
its receiver's own copy and XXH3 speed measured in the same bench (the
limits workload); the knee of latency under load and the tail beside
co-runners; the curves overlaid; and each configuration's provenance. It
writes report.html and summary.json (the figures and ratios the page
shows) and the plots, into the bench directory or --output.

A bench directory is one that holds none of the results files itself but
the subdirectories run_test.sh --bench makes (host/, eventfd/, plain/, ...).
Each subdirectory with CSV files is read as a run (strictly, partial results
refused unless allowed); eventfd/ and eventfd-same-cpu/ have only run.json,
whose "latency" object eventfd_pingpong writes as host_writer does.

A subdirectory may be a run measured several times (`make bench` repeats
its latency and stream points: IVSHMEM_BENCH_REPEAT), merged as
run_test.sh --repeat merges them (repeated.py): each repetition is then
read as a run of its own, and each figure the bench shows from it (a
round trip's percentiles, a stream point's msgs/s and GB/s) is the median
over the repetitions with the exact interval of that median
(intervals.median_interval, at the run's --ci level, 95 % without one);
a ratio with such a figure on either side is the ratio of the medians
with a percentile-bootstrap interval (intervals.bootstrap_ratio). The
figures of a single run have no interval, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from analysis import intervals, page, repeated
from analysis.errors import PROG, DataError
from analysis.kind import Fact
from analysis.kinds import RESULT_FILES
from analysis.kinds import transport
from analysis.kinds.rate import QUIET, plot_compare_rate
from analysis.kinds.stream import plot_compare_stream
from analysis.plots import Plot, grouped_bars, headline, plain_log_ticks, pyplot, render
from analysis.report import (PERCENTILE_NOTE, check_bad_data, runs_part, tcg_warning, write_json,
                             write_text)
from analysis.run import Run, load_run, summarize
from analysis.runinfo import RUN_JSON, load_run_info
from analysis.tables import present
from analysis.units import fmt_sig, fmt_size, fmt_time, pick_unit, ratio_mark

# The round-trip configurations, in the order of the table: (directory,
# label, the limit its ratio is to: a directory, or None for a limit).
LATENCY = (
    ("host", "host-only, polling (the limit)", None),
    ("eventfd", "eventfd ping-pong (the wake-up floor)", None),
    ("eventfd-same-cpu", "eventfd ping-pong, one CPU", None),
    ("plain", "VM, plain", "host"),
    ("doorbell", "VM, doorbell", "eventfd"),
    ("vm-vm-plain", "guest A ↔ guest B, plain", "plain"),
    ("vm-vm-doorbell", "guest A ↔ guest B, doorbell", "doorbell"),
)
# The streams and the latency under load: (directory, label).
STREAMS = (("host-stream", "host-only"), ("plain-stream", "VM plain"),
           ("doorbell-stream", "VM doorbell"))
RATES = (("host-rate", "host-only"), ("plain-rate", "VM plain"))
LOADS = (("host-rate-load", "host-only"), ("plain-rate-load", "VM plain"))
# Each side's copy and XXH3 speed at the streams' sizes (the limits
# workload): (directory, label, the stream it bounds).
LIMITS = (("host-limits", "host-only", "host-stream"),
          ("plain-limits", "VM plain", "plain-stream"),
          ("doorbell-limits", "VM doorbell", "doorbell-stream"))
# The other channels beside ivshmem (run_test.sh --transports in the plain VM).
TRANSPORTS = (("plain-transports", "other transports, plain VM"),)
PARTS = tuple(d for d, *_ in LATENCY + STREAMS + LIMITS + RATES + LOADS + TRANSPORTS)
# What each limit is called beside a ratio to it.
LIMIT_NAMES = {"host": "host-only", "eventfd": "the eventfd floor",
               "plain": "host ↔ VM, plain", "doorbell": "host ↔ VM, doorbell"}
# The round trip's figures of a configuration, from its summary or run.json.
FIGURES = (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"))


def is_bench(directory: Path) -> bool:
    """A directory of `make bench`: no results of its own, a configuration's
    run.json in a subdirectory."""
    if not directory.is_dir() or any(present(directory / n) for n in RESULT_FILES):
        return False
    return any(present(directory / d / RUN_JSON) for d in PARTS)


@dataclass
class Config:
    """One configuration of the bench, as read."""

    name: str              # its directory's name: "plain"
    path: Path             # its directory
    label: str
    run: Run | None        # None: run.json only (eventfd)
    info: dict | None
    summary: dict | None   # a repeated run's: its figures the medians (repeated_summary())
    latency: dict | None   # count, p50_ns, p90_ns, p99_ns, p99_9_ns
    # A merged run of repetitions: each one's run and summary, and the
    # interval's level (percent); empty for a single run.
    reps: list[tuple[Run, dict]] = field(default_factory=list)
    level: float = repeated.DEFAULT_LEVEL

    @property
    def runs(self) -> list[Run]:
        """The runs read: each repetition, or the run itself."""
        return [run for run, _ in self.reps] if self.reps else [self.run] if self.run else []

    @property
    def summaries(self) -> list[dict]:
        return [s for _, s in self.reps] if self.reps else [self.summary] if self.summary else []


def eventfd_latency(path: Path, info: dict) -> dict:
    """The "latency" object eventfd_pingpong writes into run.json, checked:
    finite figures, not negative, in a distribution's order."""
    lat = info.get("latency")
    names = ("count", "p50_ns", "p90_ns", "p99_ns", "p999_ns")
    if not isinstance(lat, dict) or any(
            isinstance(lat.get(n), bool) or not isinstance(lat.get(n), (int, float))
            or not math.isfinite(lat[n]) or lat[n] < 0 for n in names):
        raise DataError(f"{path}: latency: expected an object with count, p50_ns, p90_ns, "
                        "p99_ns and p999_ns, numbers of at least 0")
    if not lat["p50_ns"] <= lat["p90_ns"] <= lat["p99_ns"] <= lat["p999_ns"]:
        raise DataError(f"{path}: latency: p50_ns, p90_ns, p99_ns, p999_ns out of order "
                        "(not a distribution)")
    return {"count": int(lat["count"]), "p50_ns": float(lat["p50_ns"]),
            "p90_ns": float(lat["p90_ns"]), "p99_ns": float(lat["p99_ns"]),
            "p99_9_ns": float(lat["p999_ns"]), "from": "run.json"}


def load_config(directory: Path, name: str, label: str, warn, allow_partial: bool):
    """A configuration's results, or None when the bench did not run it."""
    path = directory / name
    if not present(path / RUN_JSON):
        return None
    if not any(present(path / n) for n in RESULT_FILES):
        info = load_run_info(path / RUN_JSON)
        return Config(name, path, label, None, info, None,
                      eventfd_latency(path / RUN_JSON, info))
    if repeated.is_repeated(path):
        return load_repeated_config(path, name, label, warn, allow_partial)
    run = load_run(path, warn, allow_partial)
    summary = summarize(run)
    lat = None
    if summary["latency"]:
        rt = summary["latency"]["round_trip"]
        lat = {k: rt[k] for k in ("count", "p50_ns", "p90_ns", "p99_ns", "p99_9_ns")}
        lat["from"] = "latency_results.csv"
    return Config(name, path, label, run, run.info, summary, lat)


# --------------------------------------------------------------------------
# A configuration measured several times
# --------------------------------------------------------------------------


LATENCY_KEYS = ("p50_ns", "p90_ns", "p99_ns", "p99_9_ns")
STREAM_KEYS = ("msgs_per_s", "gbps", "doorbells_per_msg")


def median_of(values: list[float], level: float) -> dict:
    """The median of a figure's repetitions and its exact interval at level
    (percent): {"median", "values", "interval": [low, high], "coverage"
    (percent, what it achieves)}."""
    low, high, cover = intervals.median_interval(values, level / 100)
    return {"median": float(np.median(values)), "values": [float(v) for v in values],
            "interval": [low, high], "coverage": 100 * cover}


def load_repeated_config(path: Path, name: str, label: str, warn, allow_partial: bool):
    """A merged run of repetitions as a configuration: each repetition read
    as a run (repeated.load_repeated: every check, partial reasons), and
    its figures the medians over them (repeated_summary())."""
    rep = repeated.load_repeated(path, warn, allow_partial)
    reps = [(run, summary) for _, run, summary in rep.reps]
    summary = repeated_summary(rep, [s for _, s in reps])
    lat = None
    rts = [s["latency"]["round_trip"] for _, s in reps if s["latency"]]
    if rts:
        lat = {"count": int(sum(rt["count"] for rt in rts)),
               "from": f"latency_results.csv, median of {len(rts)} repetitions",
               "repetitions": len(rts), "level": rep.level, "intervals": {}}
        for key in LATENCY_KEYS:
            m = median_of([rt[key] for rt in rts], rep.level)
            lat[key] = m["median"]
            lat["intervals"][key] = m
    return Config(name, path, label, rep.whole, rep.whole.info, summary, lat, reps, rep.level)


def repeated_summary(rep, summaries: list[dict]) -> dict:
    """The last repetition's summary with what the bench reads of it made
    the medians over the repetitions: each stream point's msgs/s, GB/s and
    doorbells per message (with "repetitions" and "intervals"; its errors
    summed), and every repetition's bad messages."""
    out = dict(summaries[-1])
    out["label"] = repeated.label(rep)
    out["partial"], out["partial_reasons"] = bool(rep.whole.partial), rep.whole.partial
    out["bad_messages"] = [b for s in summaries for b in s["bad_messages"]]
    streams = [s["stream"] for s in summaries if s.get("stream")]
    if streams:
        points: dict[tuple, list[dict]] = {}
        for st in streams:
            for p in st["points"]:
                points.setdefault((p["direction"], p["message_bytes"]), []).append(p)
        merged = []
        for d in [d for d in ("h2g", "g2h", "bidir") if any(k[0] == d for k in points)]:
            for (direction, size), per in sorted((k, v) for k, v in points.items()
                                                 if k[0] == d):
                p = dict(per[-1])
                p["repetitions"], p["intervals"] = len(per), {}
                for key in STREAM_KEYS:
                    values = [q[key] for q in per if q[key] is not None]
                    if values:
                        m = median_of(values, rep.level)
                        p[key] = m["median"]
                        p["intervals"][key] = m
                p["errors"] = int(sum(q["errors"] for q in per))
                merged.append(p)
        out["stream"] = {**streams[-1], "points": merged,
                         "directions": [d for d in ("h2g", "g2h", "bidir")
                                        if any(p["direction"] == d for p in merged)]}
    return out


def ratio_interval(a: dict | None, b: dict | None, level: float) -> list[float] | None:
    """The bootstrap interval of median(b) / median(a) when either side is
    a figure over repetitions (median_of()); None for two single values."""
    if not a or not b or ("values" not in a and "values" not in b):
        return None
    va = a.get("values") or [a["median"]]
    vb = b.get("values") or [b["median"]]
    if not all(va):
        return None
    return list(intervals.bootstrap_ratio(va, vb, level / 100))


def figure(value, found: dict | None = None) -> dict | None:
    """A figure as ratio_interval() takes it: its repetitions' if it has them."""
    if value is None:
        return None
    return found if found and "values" in found else {"median": value}


def ratio(a, b):
    return a / b if a is not None and b else None


# --------------------------------------------------------------------------
# The figures of the bench
# --------------------------------------------------------------------------


def bench_summary(directory: Path, configs: dict) -> dict:
    """summary.json of the bench: each configuration's round trip and its
    ratios, the streams and the knees with theirs."""
    host = configs["host"].latency if "host" in configs else None
    rows = []
    for name, label, limit in LATENCY:
        c = configs.get(name)
        if c is None or c.latency is None:
            continue
        base = configs.get(limit) if limit else None
        row = {
            "config": name, "label": label, "results_dir": str(directory / name),
            **{k: c.latency[k] for k in ("count", "p50_ns", "p90_ns", "p99_ns", "p99_9_ns")},
            "from": c.latency["from"],
            "accel": (c.info or {}).get("accel"),
            "ratio_to_host_only": ratio(c.latency["p50_ns"], host and host["p50_ns"]),
            "limit": limit if base and base.latency else None,
            "ratio_to_limit": ratio(c.latency["p50_ns"], base.latency["p50_ns"])
            if base and base.latency else None,
        }
        if c.reps or (host and "intervals" in host) or (base and base.latency
                                                         and "intervals" in base.latency):
            row.update(repeated_latency(c, host, base))
        rows.append(row)
    streams = stream_rows(configs)
    limits = limit_rows(configs)
    rates = rate_figures(configs)
    partial = {n: c.run.partial for n, c in configs.items() if c.run and c.run.partial}
    return {
        "tool": PROG,
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bench_dir": str(directory),
        "partial": bool(partial),
        "partial_reasons": partial,
        "configurations": sorted(configs),
        "not_run": [d for d in PARTS if d not in configs],
        "latency": rows,
        "stream": streams,
        "limits": limits,
        "rate": rates,
        "transport": transports(configs),
        "ratio": "p50 / the limit's p50 (stream: VM / host-only; knee: VM / host-only; "
                 "limits: the stream's GB/s / its receiver's copy + XXH3 GB/s)",
    }


def p50_figure(lat: dict | None) -> dict | None:
    if not lat:
        return None
    return figure(lat["p50_ns"], (lat.get("intervals") or {}).get("p50_ns"))


def repeated_latency(c: Config, host: dict | None, base) -> dict:
    """A round trip's intervals when it or its limit was measured several
    times: each percentile's over its repetitions, the level, and the
    bootstrap interval of each ratio."""
    level = c.level if c.reps else (base.level if base else repeated.DEFAULT_LEVEL)
    found = {"repetitions": c.latency.get("repetitions", 1), "level": level,
             "intervals": {k: m["interval"] for k, m in
                           (c.latency.get("intervals") or {}).items()},
             "coverage": {k: m["coverage"] for k, m in
                          (c.latency.get("intervals") or {}).items()}}
    mine = p50_figure(c.latency)
    # (host-only over itself is 1, not a ratio of two measurements.)
    found["ratio_to_host_only_interval"] = ratio_interval(p50_figure(host), mine, level) \
        if host and c.name != "host" else None
    found["ratio_to_limit_interval"] = ratio_interval(p50_figure(base.latency), mine, level) \
        if base and base.latency else None
    return found


def stream_rows(configs: dict) -> list[dict]:
    """Each message size of the initiator-to-responder streams (h2g): each
    configuration's msgs/s and GB/s and its ratio to host-only."""
    points = {}
    for name, _ in STREAMS:
        c = configs.get(name)
        st = c.summary["stream"] if c and c.summary else None
        points[name] = {p["message_bytes"]: p for p in (st or {"points": []})["points"]
                        if p["direction"] == "h2g"}
    sizes = sorted(set().union(*(p.keys() for p in points.values())))
    host = points["host-stream"]
    rows = []
    for size in sizes:
        row = {"message_bytes": size}
        for name, _ in STREAMS:
            p = points[name].get(size)
            row[name] = None if p is None else {
                "msgs_per_s": p["msgs_per_s"], "gbps": p["gbps"],
                "doorbells_per_msg": p["doorbells_per_msg"], "errors": p["errors"],
                "ratio_to_host_only": ratio(p["msgs_per_s"], host.get(size, {}).get(
                    "msgs_per_s")) if name != "host-stream" else None}
            if p is not None and (p.get("intervals") or host.get(size, {}).get("intervals")):
                row[name].update(repeated_stream(p, host.get(size) if name != "host-stream"
                                                 else None, configs[name].level))
        rows.append(row)
    return rows


def stream_figure(p: dict | None, key: str) -> dict | None:
    if not p:
        return None
    return figure(p[key], (p.get("intervals") or {}).get(key))


def repeated_stream(p: dict, host: dict | None, level: float) -> dict:
    """A stream point's intervals when it or host-only's was measured
    several times: its msgs/s and GB/s over its repetitions, and the
    bootstrap interval of its msgs/s over host-only's."""
    mine = p.get("intervals") or {}
    found = {"repetitions": p.get("repetitions", 1), "level": level,
             "intervals": {k: mine[k]["interval"] for k in ("msgs_per_s", "gbps") if k in mine},
             "coverage": {k: mine[k]["coverage"] for k in ("msgs_per_s", "gbps") if k in mine}}
    if host is not None:
        found["ratio_to_host_only_interval"] = ratio_interval(
            stream_figure(host, "msgs_per_s"), stream_figure(p, "msgs_per_s"), level)
    return found


def limit_rows(configs: dict) -> list[dict]:
    """Each message size a limits run measured, per configuration: its
    receiver's (the responder's) copy out of shared memory (else its
    private copy), its XXH3 and the two as one speed, and the h2g stream of
    the same configuration at that size over that speed: how near the
    stream came to what its receiver's CPU can do."""
    rows = []
    for name, label, stream in LIMITS:
        c = configs.get(name)
        lim = (c.summary or {}).get("limits") if c else None
        if not lim:
            continue
        s = configs.get(stream)
        st = s.summary["stream"] if s and s.summary else None
        gbps = {p["message_bytes"]: p["gbps"] for p in (st or {"points": []})["points"]
                if p["direction"] == "h2g"}
        for r in lim["receiver"]:
            size = r["message_bytes"]
            rows.append({"config": name, "label": label, "message_bytes": size,
                         "copy": r["copy"], "copy_gbps": r["copy_gbps"],
                         "xxh3_gbps": r["xxh3_gbps"],
                         "copy_and_xxh3_gbps": r["copy_and_xxh3_gbps"],
                         "stream": stream if size in gbps else None,
                         "stream_gbps": gbps.get(size),
                         "stream_over_bound": ratio(gbps.get(size), r["copy_and_xxh3_gbps"])})
    return sorted(rows, key=lambda r: r["message_bytes"])


def transports(configs: dict) -> dict | None:
    """The transport kind's entry of the run with the other channels."""
    c = configs.get(TRANSPORTS[0][0])
    return (c.summary or {}).get("transport") if c else None


def rate_figures(configs: dict) -> dict:
    """The quiet knee host-only and in the plain VM, its ratio, and the p99
    at half the knee quiet and beside each co-runner."""
    knees = {}
    for name, _ in RATES:
        c = configs.get(name)
        rt = c.summary["rate"] if c and c.summary else None
        knees[name] = rt["knee_per_s"].get(QUIET) if rt else None
    loads = []
    for name, label in LOADS:
        c = configs.get(name)
        rt = c.summary["rate"] if c and c.summary else None
        for p in (rt or {"points": []})["points"]:
            loads.append({"config": name, "label": label, "offered_per_s": p["offered_per_s"],
                          "interference": p["interference"], "p99_ns": p["p99_ns"],
                          "ratio_to_quiet": (p["ratio_to_quiet"] or {}).get("p99"),
                          "errors": p["errors"]})
    return {"knee_per_s": knees,
            "knee_ratio": ratio(knees.get("plain-rate"), knees.get("host-rate")),
            "under_load": loads}


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def plot_latency(rows: list[dict]):
    """p50, p99 and p99.9 of each configuration as bars, log scale."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(12, 5.6), constrained_layout=True)
    headline(fig, "Round trip of each configuration of the bench", [])
    unit = pick_unit(min(r["p50_ns"] for r in rows))
    metrics = [{"metric": label, "values": [r[key] for r in rows], "ratios": [None] * len(rows)}
               for label, key in FIGURES[:1] + FIGURES[2:]]
    grouped_bars(ax, [m["metric"] for m in metrics], metrics, [r["label"] for r in rows],
                 scale=unit[1])
    values = [v for m in metrics for v in m["values"] if v]
    if values and max(values) / min(values) > 20:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    ax.set_xlabel("percentile of the round trip")
    ax.set_ylabel(f"round trip ({unit[0]}{', log scale' if ax.get_yscale() == 'log' else ''})")
    ax.set_title("lower is better; each configuration's ratio to its limit is in the table")
    return fig


def bench_plots(configs: dict, summary: dict) -> list[Plot]:
    found = []
    if summary["latency"]:
        found.append(Plot("bench_latency.png",
                          "The round trip (a message posted, to its acknowledgement) of each "
                          "configuration: p50, p99 and p99.9, a bar per configuration, beside "
                          "the host's own limits measured in the same run.",
                          lambda: plot_latency(summary["latency"])))
    for parts, file, plot, caption in (
            (STREAMS, "bench_stream.png", plot_compare_stream,
             "Streams initiator to responder, every message checked: messages/s and GB/s "
             "against message size, host-only and in the VMs overlaid."),
            (RATES, "bench_rate.png", plot_compare_rate,
             "Latency under load (open loop, timed from each message's scheduled send) "
             "against the offered rate, host-only and in the plain VM overlaid, each one's "
             "knee marked.")):
        have = [(label, configs[d]) for d, label in parts
                if d in configs and configs[d].summary]
        if have:
            labels = [label for label, _ in have]
            runs = [c.run for _, c in have]
            summaries = [c.summary for _, c in have]
            found.append(Plot(file, caption,
                              lambda p=plot, l=labels, r=runs, s=summaries: p(l, r, s)))
    c = configs.get(TRANSPORTS[0][0])
    if summary["transport"] and c is not None:
        found += transport.plots(c.run.data["transport"], summary["transport"],
                                 c.summary["label"], c.run.partial)
    return found


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def latency_part(summary: dict) -> page.Markup:
    rows = summary["latency"]
    if not rows:
        return page.para("No round trip was measured.", "note")
    unit = pick_unit(min(r["p50_ns"] for r in rows))
    body = []
    for r in rows:
        limit = LIMIT_NAMES.get(r["limit"], "")
        spans = r.get("intervals") or {}
        body.append(page.Row(
            [r["label"] + (f" ({r['accel']})" if r["accel"] and r["accel"] != "none" else "")
             + (f", {r['repetitions']} repetitions" if r.get("repetitions", 1) > 1 else ""),
             f"{r['count']:,}"]
            + [with_interval(fmt_time(r[k], unit), spans.get(k),
                             lambda v: fmt_time(v, unit)) for _, k in FIGURES]
            + [ratio_cell(r["ratio_to_host_only"], r.get("ratio_to_host_only_interval")),
               ratio_cell(r["ratio_to_limit"], r.get("ratio_to_limit_interval")),
               limit or "-"],
            "base" if r["limit"] is None and r["config"] in ("host", "eventfd") else ""))
    return page.join(
        page.para("Each configuration's round trip (a message posted, to its acknowledgement) "
                  "beside the limits measured in the same run: two host processes polling "
                  "shared memory (host-only) and two host threads waking each other through "
                  "eventfds (the floor of any interrupt-style wake-up). Ratio: p50 / the "
                  "limit's p50."),
        page.table(["configuration", "round trips"] + [f"{n} ({unit[0]})" for n, _ in FIGURES]
                   + ["p50 × host-only", "p50 × its limit", "its limit"], body, "lrrrrrrrl"),
        repeated_note(rows))


def ratio_cell(r, span=None) -> str:
    """×2.50, or with its interval ×2.50 [×2.41, ×2.62]; '-' when absent."""
    return "-" if r is None else with_interval(ratio_mark(r), span, ratio_mark)


def with_interval(text: str, span, fmt) -> str:
    """A figure's text followed by its interval, when it has one."""
    return text if not span else f"{text} [{fmt(span[0])}, {fmt(span[1])}]"


def repeated_note(rows: list[dict], key: str = "repetitions") -> page.Markup | str:
    """How the figures of the configurations measured several times read."""
    levels = sorted({r["level"] for r in rows if r.get("level") is not None})
    if not levels:
        return ""
    return page.para(
        f"A configuration measured several times (its repetitions named): each figure "
        f"is the median over its repetitions, with the {repeated.INTERVAL} at "
        f"{', '.join(f'{v:g}' for v in levels)} % in brackets (with too few repetitions to "
        "reach that level, [min, max]); a ratio with such a figure on either side is the "
        "ratio of the medians, with a percentile-bootstrap interval "
        f"({intervals.RESAMPLES:,} resamples).", "note")


def stream_part(summary: dict) -> page.Markup:
    rows = summary["stream"]
    if not rows:
        return page.para("No stream was measured.", "note")
    head, body = ["message size"], []
    for name, label in STREAMS:
        head += [f"{label} (msgs/s)", f"{label} (GB/s)"]
        if name != "host-stream":
            head.append(f"{label} × host-only")
    head.append("VM doorbell: doorbells/msg")
    for r in rows:
        cells, bad = [fmt_size(r["message_bytes"])], False
        for name, _ in STREAMS:
            p = r[name]
            spans = (p or {}).get("intervals") or {}
            cells += ["-", "-"] if p is None else [
                with_interval(f"{p['msgs_per_s']:,.0f}", spans.get("msgs_per_s"),
                              lambda v: f"{v:,.0f}"),
                with_interval(fmt_sig(p["gbps"]), spans.get("gbps"), fmt_sig)]
            if name != "host-stream":
                cells.append(ratio_cell(p and p["ratio_to_host_only"],
                                        p and p.get("ratio_to_host_only_interval")))
            bad |= bool(p and p["errors"])
        bell = r["doorbell-stream"]
        cells.append(fmt_sig(bell["doorbells_per_msg"]) if bell else "-")
        body.append(page.Row(cells, "bad" if bad else ""))
    return page.join(page.para("Initiator to responder (h2g), every message copied in, "
                               "copied out and checked; ratio: the VM's msgs/s over "
                               "host-only's at the same size (the same for GB/s)."),
                     page.table(head, body),
                     repeated_note([p for r in rows for p in (r[n] for n, _ in STREAMS) if p]))


def limits_part(summary: dict) -> page.Markup:
    """What bounds each stream, below the streams: its receiver's own speed."""
    rows = summary["limits"]
    if not rows:
        return page.Markup("")
    body = [page.Row([fmt_size(r["message_bytes"]), r["label"], r["copy"],
                      fmt_sig(r["copy_gbps"]), fmt_sig(r["xxh3_gbps"]),
                      fmt_sig(r["copy_and_xxh3_gbps"]),
                      "-" if r["stream_gbps"] is None else fmt_sig(r["stream_gbps"]),
                      ratio_cell(r["stream_over_bound"])],
                     "bad" if r["stream_over_bound"] and r["stream_over_bound"] > 1 else "")
            for r in rows]
    beaten = [r for r in rows if r["stream_over_bound"] and r["stream_over_bound"] > 1]
    return page.join(
        page.tag("h3", "What bounds each stream: its receiver's own speed"),
        page.para("Each stream's receiver (the responder: guest_reader on the host or in the "
                  "guest) does two things per message: it copies the message out of shared "
                  "memory and checks it with XXH3. Measured alone at each size in the same "
                  "bench (the limits workload), the two as one speed (1 / (1/copy + "
                  "1/xxh3)) bound the stream's GB/s; the last column is the stream's GB/s "
                  "over that bound."),
        page.table(["message size", "configuration", "receiver's copy",
                    "copy (GB/s)", "xxh3 (GB/s)", "copy + xxh3 (GB/s)",
                    "stream h2g (GB/s)", "stream × copy + xxh3"], body, "lll"),
        page.para("Above ×1: the stream beat its receiver's own speed alone — the limits run "
                  "and the stream disagree (another CPU, another copy routine); explain "
                  "before trusting either.", "note") if beaten else "")


def rate_part(summary: dict) -> page.Markup:
    rt = summary["rate"]
    knees = rt["knee_per_s"]
    if not any(v is not None for v in knees.values()) and not rt["under_load"]:
        return page.para("No latency under load was measured.", "note")
    rows = [[label, "-" if knees.get(name) is None else f"{knees[name]:,}"]
            for name, label in RATES]
    parts = [page.para("Open loop: messages offered at a rate whatever the answers, each "
                       "timed from its scheduled send. The knee: the highest rate sustained "
                       "(p99 under the bound, achieved at least 99 % of offered) below the "
                       "two rates in a row not sustained where the sweep stopped."),
             page.table(["configuration", "knee, quiet (msgs/s)"], rows),
             page.para(f"VM plain knee / host-only knee: {ratio_cell(rt['knee_ratio'])}",
                       "note")]
    if rt["under_load"]:
        unit = pick_unit(min(p["p99_ns"] for p in rt["under_load"]))
        parts += [page.tag("h3", "At half the knee, quiet and beside co-runners"),
                  page.table(["configuration", "offered (msgs/s)", "interference",
                              f"p99 ({unit[0]})", "p99 × quiet"],
                             [page.Row([p["label"], f"{p['offered_per_s']:,}",
                                        p["interference"], fmt_time(p["p99_ns"], unit),
                                        ratio_cell(p["ratio_to_quiet"])],
                                       "bad" if p["errors"] else "")
                              for p in rt["under_load"]], "lrlrr")]
    return page.join(*parts)


def bench_facts(summary: dict) -> list[Fact]:
    found = []
    for i, r in enumerate(summary["latency"]):
        if r["config"] == "host":
            unit = pick_unit(r["p50_ns"])
            found.append(Fact("host-only round trip p50", fmt_time(r["p50_ns"], unit), unit[0],
                              r["p50_ns"], f"latency.{i}.p50_ns", "the limit: polling"
                              + interval_note((r.get("intervals") or {}).get("p50_ns"),
                                              r.get("level"),
                                              lambda v: f"{fmt_time(v, unit)} {unit[0]}")))
        elif r["ratio_to_limit"] is not None:
            unit = pick_unit(r["p50_ns"])
            found.append(Fact(f"{r['label']}: p50 over {LIMIT_NAMES[r['limit']]}'s",
                              ratio_cell(r["ratio_to_limit"]), "", r["ratio_to_limit"],
                              f"latency.{i}.ratio_to_limit",
                              f"p50 {fmt_time(r['p50_ns'], unit)} {unit[0]}"
                              + interval_note(r.get("ratio_to_limit_interval"),
                                              r.get("level"))))
    for i, r in enumerate(summary["stream"]):
        p = r["plain-stream"]
        if p and p["ratio_to_host_only"] is not None and i == 0:
            found.append(Fact(f"VM plain stream at {fmt_size(r['message_bytes'])}: msgs/s "
                              "over host-only's", ratio_cell(p["ratio_to_host_only"]), "",
                              p["ratio_to_host_only"],
                              f"stream.{i}.plain-stream.ratio_to_host_only",
                              f"{p['msgs_per_s']:,.0f} msgs/s"
                              + interval_note(p.get("ratio_to_host_only_interval"),
                                              p.get("level"))))
    rt = summary["rate"]
    if rt["knee_ratio"] is not None:
        found.append(Fact("VM plain knee over host-only's", ratio_cell(rt["knee_ratio"]), "",
                          rt["knee_ratio"], "rate.knee_ratio",
                          f"{rt['knee_per_s']['plain-rate']:,} msgs/s"))
    return found


def interval_note(span, level, fmt=ratio_mark) -> str:
    """'; 95 % interval [×2.41, ×2.62]' for a headline figure's note."""
    if not span:
        return ""
    return f"; {level:g} % interval [{fmt(span[0])}, {fmt(span[1])}]"


def bench_page(directory: Path, configs: dict, summary: dict, drawn: list, out: Path,
               plots: bool) -> str:
    banners = []
    for name, reasons in summary["partial_reasons"].items():
        banners.append(page.banner(f"{name}/ is PARTIAL", reasons, "bad"))
    for name, c in configs.items():
        if c.summary and c.summary["bad_messages"]:
            banners.append(page.banner(
                f"{name}/ has BAD MESSAGES (errors > 0)",
                [(f"repetition {b['repetition']}: " if "repetition" in b else "")
                 + f"{b['file']} line {b['line']}: {b['point']} ({b['errors']:,})"
                 for b in c.summary["bad_messages"]], "bad"))
    tcg = sorted(n for n, c in configs.items() if tcg_warning(c.info))
    if tcg:
        banners.append(page.banner(tcg_warning({"accel": "tcg"}),
                                   [f"under TCG: {', '.join(tcg)}"]))
    if summary["not_run"]:
        banners.append(page.banner("Not measured in this bench: "
                                   + ", ".join(summary["not_run"]), [], "warn"))
    toc = [("Round trip", "latency"), ("Streams", "stream"), ("Latency under load", "rate")]
    toc += [("Other transports", "transport")] if summary["transport"] else []
    toc += [("Plots", "plots"), ("Configurations", "configurations")]
    parts = [page.facts(bench_facts(summary)), *banners, page.contents(toc),
             page.section("Round trip", latency_part(summary), "latency"),
             page.section("Streams", page.join(stream_part(summary), limits_part(summary)),
                          "stream"),
             page.section("Latency under load", rate_part(summary), "rate"),
             page.section("Other transports", transport.html(summary["transport"]), "transport")
             if summary["transport"] else "",
             page.section("Plots", page.figures(drawn, "Plots not drawn (--no-plots)."
                                                if not plots else ""), "plots"),
             page.section("Configurations", configs_part(configs, out), "configurations")]
    footer = (PERCENTILE_NOTE.replace("\n", " ") + f" Written by {PROG} at "
              f"{summary['generated']}; the figures are in summary.json beside this page.")
    return page.page("ivshmem-bench: the benchmark", str(directory), parts, footer)


def configs_part(configs: dict, out: Path) -> page.Markup:
    names = [n for n in PARTS if n in configs]
    files = [[(f, str(configs[n].path / f)) for f in (configs[n].run.files
                                                     if configs[n].run else [])]
             + [(RUN_JSON, str(configs[n].path / RUN_JSON))] for n in names]
    return runs_part([f"{n}/" for n in names], [configs[n].info for n in names], files, out)


def bench(directory: Path, out: Path, plots: bool, allow_partial: bool, say, warn) -> int:
    """report.html, summary.json and the plots of a bench directory."""
    configs = {}
    for name, label in [(d, l) for d, l, _ in LATENCY + LIMITS] + list(STREAMS + RATES + LOADS
                                                                       + TRANSPORTS):
        c = load_config(directory, name, label, warn, allow_partial)
        if c is not None:
            configs[name] = c
    summary = bench_summary(directory, configs)
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "summary.json", summary)]
    drawn = []
    if plots:
        drawn = render(bench_plots(configs, summary), out, page=True)
        written += [d.path for d in drawn]
    written.append(write_text(out / page.PAGE_FILE,
                              bench_page(directory, configs, summary, drawn, out, plots)))
    say("Wrote: " + ", ".join(str(p) for p in written))
    # A configuration measured several times: each repetition as its own run.
    runs = [run for c in configs.values() for run in c.runs]
    return check_bad_data(runs, [s for c in configs.values() for s in c.summaries])
