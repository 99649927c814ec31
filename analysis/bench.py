"""
bench - the page of `make bench` (results/bench/): every configuration's
round trip beside the limits measured in the same run (two host processes
polling shared memory, the eventfd wake-up floor), with its ratio to its
limit; the streams host-only and in the VMs with their ratios; the knee of
latency under load and the tail beside co-runners; the curves overlaid; and
each configuration's provenance. It writes report.html and summary.json
(the figures and ratios the page shows) and the plots, into the bench
directory or --output.

A bench directory is one that holds none of the results files itself but
the subdirectories run_test.sh --bench makes (host/, eventfd/, plain/, ...).
Each subdirectory with CSV files is read as a run (strictly, partial results
refused unless allowed); eventfd/ and eventfd-same-cpu/ have only run.json,
whose "latency" object eventfd_pingpong writes as host_writer does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from analysis import page
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
# The other channels beside ivshmem (run_test.sh --transports in the plain VM).
TRANSPORTS = (("plain-transports", "other transports, plain VM"),)
PARTS = tuple(d for d, *_ in LATENCY + STREAMS + RATES + LOADS + TRANSPORTS)
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
    summary: dict | None
    latency: dict | None   # count, p50_ns, p90_ns, p99_ns, p99_9_ns


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
    run = load_run(path, warn, allow_partial)
    summary = summarize(run)
    lat = None
    if summary["latency"]:
        rt = summary["latency"]["round_trip"]
        lat = {k: rt[k] for k in ("count", "p50_ns", "p90_ns", "p99_ns", "p99_9_ns")}
        lat["from"] = "latency_results.csv"
    return Config(name, path, label, run, run.info, summary, lat)


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
        rows.append({
            "config": name, "label": label, "results_dir": str(directory / name),
            **{k: c.latency[k] for k in ("count", "p50_ns", "p90_ns", "p99_ns", "p99_9_ns")},
            "from": c.latency["from"],
            "accel": (c.info or {}).get("accel"),
            "ratio_to_host_only": ratio(c.latency["p50_ns"], host and host["p50_ns"]),
            "limit": limit if base and base.latency else None,
            "ratio_to_limit": ratio(c.latency["p50_ns"], base.latency["p50_ns"])
            if base and base.latency else None,
        })
    streams = stream_rows(configs)
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
        "rate": rates,
        "transport": transports(configs),
        "ratio": "p50 / the limit's p50 (stream: VM / host-only; knee: VM / host-only)",
    }


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
        rows.append(row)
    return rows


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
        body.append(page.Row(
            [r["label"] + (f" ({r['accel']})" if r["accel"] and r["accel"] != "none" else ""),
             f"{r['count']:,}"] + [fmt_time(r[k], unit) for _, k in FIGURES]
            + [ratio_cell(r["ratio_to_host_only"]), ratio_cell(r["ratio_to_limit"]),
               limit or "-"],
            "base" if r["limit"] is None and r["config"] in ("host", "eventfd") else ""))
    return page.join(
        page.para("Each configuration's round trip (a message posted, to its acknowledgement) "
                  "beside the limits measured in the same run: two host processes polling "
                  "shared memory (host-only) and two host threads waking each other through "
                  "eventfds (the floor of any interrupt-style wake-up). Ratio: p50 / the "
                  "limit's p50."),
        page.table(["configuration", "round trips"] + [f"{n} ({unit[0]})" for n, _ in FIGURES]
                   + ["p50 × host-only", "p50 × its limit", "its limit"], body, "lrrrrrrrl"))


def ratio_cell(r) -> str:
    return "-" if r is None else ratio_mark(r)


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
            cells += ["-", "-"] if p is None else [f"{p['msgs_per_s']:,.0f}", fmt_sig(p["gbps"])]
            if name != "host-stream":
                cells.append(ratio_cell(p and p["ratio_to_host_only"]))
            bad |= bool(p and p["errors"])
        bell = r["doorbell-stream"]
        cells.append(fmt_sig(bell["doorbells_per_msg"]) if bell else "-")
        body.append(page.Row(cells, "bad" if bad else ""))
    return page.join(page.para("Initiator to responder (h2g), every message copied in, "
                               "copied out and checked; ratio: the VM's msgs/s over "
                               "host-only's at the same size (the same for GB/s)."),
                     page.table(head, body))


def rate_part(summary: dict) -> page.Markup:
    rt = summary["rate"]
    knees = rt["knee_per_s"]
    if not any(v is not None for v in knees.values()) and not rt["under_load"]:
        return page.para("No latency under load was measured.", "note")
    rows = [[label, "-" if knees.get(name) is None else f"{knees[name]:,}"]
            for name, label in RATES]
    parts = [page.para("Open loop: messages offered at a rate whatever the answers, each "
                       "timed from its scheduled send. The knee: the highest rate sustained "
                       "(p99 under the bound, achieved at least 99 % of offered)."),
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
                              r["p50_ns"], f"latency.{i}.p50_ns", "the limit: polling"))
        elif r["ratio_to_limit"] is not None:
            unit = pick_unit(r["p50_ns"])
            found.append(Fact(f"{r['label']}: p50 over {LIMIT_NAMES[r['limit']]}'s",
                              ratio_cell(r["ratio_to_limit"]), "", r["ratio_to_limit"],
                              f"latency.{i}.ratio_to_limit",
                              f"p50 {fmt_time(r['p50_ns'], unit)} {unit[0]}"))
    for i, r in enumerate(summary["stream"]):
        p = r["plain-stream"]
        if p and p["ratio_to_host_only"] is not None and i == 0:
            found.append(Fact(f"VM plain stream at {fmt_size(r['message_bytes'])}: msgs/s "
                              "over host-only's", ratio_cell(p["ratio_to_host_only"]), "",
                              p["ratio_to_host_only"],
                              f"stream.{i}.plain-stream.ratio_to_host_only",
                              f"{p['msgs_per_s']:,.0f} msgs/s"))
    rt = summary["rate"]
    if rt["knee_ratio"] is not None:
        found.append(Fact("VM plain knee over host-only's", ratio_cell(rt["knee_ratio"]), "",
                          rt["knee_ratio"], "rate.knee_ratio",
                          f"{rt['knee_per_s']['plain-rate']:,} msgs/s"))
    return found


def bench_page(directory: Path, configs: dict, summary: dict, drawn: list, out: Path,
               plots: bool) -> str:
    banners = []
    for name, reasons in summary["partial_reasons"].items():
        banners.append(page.banner(f"{name}/ is PARTIAL", reasons, "bad"))
    for name, c in configs.items():
        if c.summary and c.summary["bad_messages"]:
            banners.append(page.banner(
                f"{name}/ has BAD MESSAGES (errors > 0)",
                [f"{b['file']} line {b['line']}: {b['point']} ({b['errors']:,})"
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
             page.section("Streams", stream_part(summary), "stream"),
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
    for name, label in [(d, l) for d, l, _ in LATENCY] + list(STREAMS + RATES + LOADS
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
    runs = [c.run for c in configs.values() if c.run]
    return check_bad_data(runs, [c.summary for c in configs.values() if c.run])
