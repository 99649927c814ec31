"""
compare - several runs side by side: every figure of every kind in one
table with its ratio to the first run (comparison.txt, comparison.json), the
overview of latency and frames as bars (comparison.png), each kind's curves
overlaid (comparison_stream.png, ...), and report.html with the table first
and the plots after it. Each kind adds its rows (Kind.compare) and says how
they are written (Kind.metric_text, Kind.metric_unit); a row whose point had
bad messages is marked BAD.

Runs of several repetitions (run_test.sh --repeat, merged; see
repeated.py) are compared too: the table's value of such a run is the
median of its repetitions, and a section of verdicts follows (comparison.txt,
comparison.json's "seed", "level" and "figures", the page): for each
headline figure the runs share, the ratio of each run's median to the first
run's, with a 95 % percentile bootstrap interval (each run's repetitions
resampled with replacement, the ratio of the medians, RESAMPLES times, a
fixed SEED), and the verdict: "faster" or "slower" when the interval
excludes 1 (which way is better depends on the figure: lower for a latency,
higher for a throughput), else "no difference detected"; a run of one
repetition gives "single run: no interval". A comparison of single runs
only is written as it always was, without that section. The plots and the
details of a repeated run are those of its representative repetition, the
one whose headline figures are nearest their medians.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analysis import page
from analysis.errors import PROG
from analysis.intervals import RESAMPLES, SEED, bootstrap_ratio, verdict
from analysis.kinds import KINDS
from analysis.plots import Plot, grouped_bars, headline, no_data, plain_log_ticks, pyplot, render
from analysis.report import (PERCENTILE_NOTE, check_bad_data, kind_links, runs_part,
                             tcg_warning, write_json, write_text)
from analysis.repeated import Repeated, load_any, metric_rows
from analysis.run import Run, entries, short_label
from analysis.runinfo import RUN_JSON
from analysis.stats import clean
from analysis.units import fmt_time, pick_unit, ratio_mark, ratio_text, table


def unique_labels(runs: list[Run]) -> list[str]:
    """Short labels, with the directory added where two runs would clash."""
    labels = [short_label(r) for r in runs]
    for i, label in enumerate(labels):
        if labels.count(label) > 1:
            labels[i] = f"{label} ({runs[i].directory})"
    return labels


def comparison_metrics(summaries: list[dict]) -> list[dict]:
    """Rows of the comparison: name, unit, better, values per run (None if
    absent), and each value's ratio to the first run's; in the order of the
    kinds. Each row remembers its kind (under "_kind", not written out)."""
    metrics = []
    for kind in KINDS:
        def add(name, unit, better, values, rows=None, kind=kind):
            """rows: the point or size of each value, whose errors mark the
            value as one of bad messages."""
            if any(v is not None for v in values):
                metrics.append({"metric": name, "unit": unit, "better": better,
                                "values": [clean(v) for v in values]})
                if rows is not None:
                    metrics[-1]["bad"] = [bool(r and r["errors"]) for r in rows]
                metrics[-1]["_kind"] = kind

        kind.compare(summaries, add)
    for m in metrics:
        base = m["values"][0]
        m["ratios"] = [None if v is None or not base else v / base for v in m["values"]]
    return metrics


def public(metrics: list[dict]) -> list[dict]:
    """The rows as comparison.json has them."""
    return [{k: v for k, v in m.items() if k != "_kind"} for m in metrics]


def comparison_unit(metrics: list[dict]) -> tuple[str, float, int]:
    """One latency unit for the whole table, from the largest median."""
    medians = [v for m in metrics if m["metric"] == "latency p50" for v in m["values"]
               if v is not None]
    return pick_unit(max(medians)) if medians else pick_unit(0)


def format_metric(m: dict, value, lat_unit) -> str:
    """A value as the table writes it: its kind's way, else a time in the
    table's unit, a share or a rate in GB/s."""
    if value is None:
        return "-"
    if m["_kind"].metric_text:
        return m["_kind"].metric_text(m, value, lat_unit)
    if m["unit"] == "ns":
        return fmt_time(value, lat_unit)
    if m["unit"] == "%":
        return f"{value:.1f}"
    return f"{value:.3f}"


def metric_unit(m: dict, lat_unit) -> str:
    if m["_kind"].metric_unit:
        return m["_kind"].metric_unit(m, lat_unit)
    return lat_unit[0] if m["unit"] == "ns" else m["unit"]


def cells(m: dict, lat_unit, runs: int, page: bool = False) -> list[str]:
    """A row's values, each after the first with its ratio, BAD marked; the
    ratios as the text or (page) as the page writes them."""
    out = []
    for i, (v, r) in enumerate(zip(m["values"], m["ratios"])):
        text = format_metric(m, v, lat_unit)
        if i and r is not None:
            text += f" ({ratio_mark(r) if page else ratio_text(r)})"
        if m.get("bad", [False] * runs)[i]:
            text += " BAD"
        out.append(text)
    return out


def render_comparison(labels: list[str], runs: list[Run], summaries: list[dict],
                      metrics: list[dict]) -> str:
    lat_unit = comparison_unit(metrics)
    lines = ["ivshmem-bench comparison", "========================",
             f"Ratios are against the first run ({labels[0]}): value / first value.", ""]
    lines += [f"  [{i + 1}] {label}: {r.directory}" for i, (label, r) in
              enumerate(zip(labels, runs))]
    for i, r in enumerate(runs):
        if r.partial:
            lines.append(f"  *** [{i + 1}] is PARTIAL: " + "; ".join(r.partial))
    for i, s in enumerate(summaries):
        if s["bad_messages"]:
            lines.append(f"  *** [{i + 1}] has BAD MESSAGES (errors > 0; marked BAD below): "
                         + "; ".join(f"{b['file']} line {b['line']}: {b['point']} "
                                     f"({b['errors']:,})" for b in s["bad_messages"]))
    lines.append("")
    rows = [["metric", "unit", "better"] + [f"[{i + 1}] {l}" for i, l in enumerate(labels)]]
    for m in metrics:
        rows.append([m["metric"], metric_unit(m, lat_unit), m["better"]]
                    + cells(m, lat_unit, len(labels)))
    lines += table(rows, "lll")
    lines += ["", PERCENTILE_NOTE]
    return "\n".join(lines) + "\n"


def plot_comparison(labels: list[str], runs: list[Run], metrics: list[dict]):
    """The overview: latency percentiles and each frame size's bandwidth
    as bars, a bar per run, ratios on top."""
    plt = pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6), constrained_layout=True)
    headline(fig, "Comparison (ratios against [1] " + labels[0] + ")",
             [f"[{i + 1}] {'; '.join(r.partial)}" for i, r in enumerate(runs) if r.partial])
    lat = [m for m in metrics if m["metric"] in
           ("latency p50", "latency p90", "latency p99", "latency p99.9")]
    bw = [m for m in metrics if m["metric"].startswith("bandwidth ")
          and m["metric"].endswith(" mean")]
    if lat:
        unit = comparison_unit(metrics)
        grouped_bars(ax1, [m["metric"].removeprefix("latency ") for m in lat], lat,
                     labels, scale=unit[1])
        values = [v for m in lat for v in m["values"] if v]
        if values and max(values) / min(values) > 20:
            ax1.set_yscale("log")
            plain_log_ticks(ax1.yaxis)
        ax1.set_ylabel(f"round-trip latency ({unit[0]}"
                       f"{', log scale' if ax1.get_yscale() == 'log' else ''})")
        ax1.set_title("Latency percentiles (lower is better)")
    else:
        ax1.set_title("Latency")
        no_data(ax1, "no latency results")
    if bw:
        grouped_bars(ax2, [m["metric"].split()[1] for m in bw], bw, labels, scale=1.0)
        ax2.set_ylabel("bandwidth (GB/s)")
        ax2.set_title("Bandwidth per frame size, mean (higher is better)")
    else:
        ax2.set_title("Bandwidth")
        no_data(ax2, "no successful transfers")
    return fig


def comparison_plots(labels: list[str], runs: list[Run], summaries: list[dict],
                     metrics: list[dict]) -> list[Plot]:
    found = []
    if any(s["latency"] or s["bandwidth"] for s in summaries):
        found.append(Plot("comparison.png",
                          "Round-trip percentiles and each frame size's verified bandwidth, a "
                          "bar per run, each bar's ratio to [1] on top.",
                          lambda: plot_comparison(labels, runs, metrics)))
    for kind in KINDS:
        found += kind.compare_plots(labels, runs, summaries)
    return found


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def comparison_page(labels: list[str], runs: list[Run], summaries: list[dict],
                    metrics: list[dict], drawn: list, out: Path, plots: bool,
                    extra: list | None = None) -> str:
    """The page; extra: (title, markup) sections after the table (the
    verdicts of repeated runs)."""
    extra = extra or []
    lat_unit = comparison_unit(metrics)
    names = [f"[{i + 1}] {label}" for i, label in enumerate(labels)]
    banners = []
    for name, r, s in zip(names, runs, summaries):
        if r.partial:
            banners.append(page.banner(f"{name} is PARTIAL", r.partial, "bad"))
        if s["bad_messages"]:
            banners.append(page.banner(
                f"{name} has BAD MESSAGES (errors > 0; marked BAD in the table)",
                [f"{b['file']} line {b['line']}: {b['point']} ({b['errors']:,})"
                 for b in s["bad_messages"]], "bad"))
        if tcg_warning(r.info):
            banners.append(page.banner(f"{name}: {tcg_warning(r.info)}", []))
    legend = page.table(["run", "results directory", "status"],
                        [[n, str(r.directory), r.status or "no status recorded"]
                         for n, r in zip(names, runs)], "lll")
    tables, toc = [], [("Side by side", "side-by-side")]
    for kind in KINDS:
        mine = [m for m in metrics if m["_kind"] is kind]
        if not mine:
            continue
        rows = [page.Row([m["metric"], metric_unit(m, lat_unit), m["better"]]
                         + cells(m, lat_unit, len(labels), page=True),
                         "bad" if any(m.get("bad", [])) else "") for m in mine]
        tables += [page.tag("h3", kind.title),
                   page.table(["figure", "unit", "better"] + names, rows, "lll")]
    body = page.join(
        page.para(f"Each value after the first with its ratio to [1] {labels[0]}: value / "
                  "[1]'s value." + (" A run of several repetitions: the median of its "
                                    "repetitions." if extra else "")), legend, *tables)
    anchors = [(title, title.lower().replace(" ", "-")) for title, _ in extra]
    parts = [*banners, page.contents(anchors + toc + [("Plots", "plots"), ("Runs", "runs")]),
             *[page.section(title, markup, anchor)
               for (title, markup), (_, anchor) in zip(extra, anchors)],
             page.section("Side by side", body, "side-by-side"),
             page.section("Plots, the runs overlaid",
                          page.figures(drawn, "Plots not drawn (--no-plots)." if not plots
                                       else "No figure to overlay."), "plots"),
             page.section("Runs", runs_of(names, runs, summaries, out), "runs")]
    footer = (PERCENTILE_NOTE.replace("\n", " ") + f" Written by {PROG}; the figures are in "
              "comparison.json and comparison.txt beside this page.")
    return page.page("ivshmem-bench comparison", " · ".join(names), parts, footer)


def runs_of(names: list[str], runs: list[Run], summaries: list[dict], out: Path):
    """Each run's provenance, its files and its notes."""
    files = []
    for r, s in zip(runs, summaries):
        found = [link for kind, entry in entries(s) for link in kind_links(kind, r, entry)]
        if (r.directory / RUN_JSON).exists():
            found.append((RUN_JSON, str(r.directory / RUN_JSON)))
        files.append(found)
    notes = [f"{name}: {note}" for name, r in zip(names, runs) for note in r.notes]
    return page.join(runs_part(names, [r.info for r in runs], files, out),
                     page.tag("h3", "Notes") if notes else "", page.items(notes) if notes else "")


# --------------------------------------------------------------------------
# Runs of several repetitions: medians and verdicts
# --------------------------------------------------------------------------

VERDICT_LEVEL = 0.95   # the bootstrap interval's level


def representative(rep: Repeated) -> dict:
    """The summary of the repetition whose headline figures are nearest
    their medians (the sum of |log(value / median)|), for the plots and the
    details; its bad messages those of every repetition."""
    rows = metric_rows(rep.summaries)

    def distance(i: int) -> float:
        total = 0.0
        for row in rows:
            present = [v for v in row["values"] if v]
            v = row["values"][i]
            if v and present:
                total += abs(math.log(v / float(np.median(present))))
        return total

    best = min(range(len(rep.reps)), key=distance)
    summary = dict(rep.summaries[best])
    summary["bad_messages"] = [b for s in rep.summaries for b in s["bad_messages"]]
    summary["results_dir"] = str(rep.whole.directory)
    return summary


def spans(loaded: list[Repeated]) -> list[slice]:
    """Where each run's repetitions are in the list of every summary."""
    out, start = [], 0
    for rep in loaded:
        out.append(slice(start, start + len(rep.reps)))
        start += len(rep.reps)
    return out


def median_metrics(loaded: list[Repeated]) -> list[dict]:
    """comparison_metrics() over every repetition of every run, each run's
    values made the median of its repetitions (BAD if any was), with the
    count of repetitions each median is of."""
    cuts = spans(loaded)
    metrics = comparison_metrics([s for rep in loaded for s in rep.summaries])
    for m in metrics:
        groups = [[v for v in m["values"][cut] if v is not None] for cut in cuts]
        m["values"] = [float(np.median(g)) if g else None for g in groups]
        m["repetitions"] = [len(g) for g in groups]
        if "bad" in m:
            m["bad"] = [any(m["bad"][cut]) for cut in cuts]
        base = m["values"][0]
        m["ratios"] = [None if v is None or not base else v / base for v in m["values"]]
    return metrics


def verdicts(labels: list[str], loaded: list[Repeated]) -> list[dict]:
    """Each headline figure the first run shares with another, against it
    (see the module's note)."""
    cuts = spans(loaded)
    found = []
    for row in metric_rows([s for rep in loaded for s in rep.summaries]):
        groups = [[v for v in row["values"][cut] if v is not None] for cut in cuts]
        a = groups[0]
        for i in range(1, len(loaded)):
            b = groups[i]
            if not a or not b:
                continue
            ma, mb = float(np.median(a)), float(np.median(b))
            entry = {"name": row["name"], "unit": row["unit"], "better": row["better"],
                     "run": labels[i], "a": ma, "b": mb, "ratio": mb / ma if ma else None,
                     "ci_low": None, "ci_high": None, "repetitions": [len(a), len(b)]}
            if not ma:
                entry["verdict"] = "no ratio: the first run's median is 0"
            elif len(a) < 2 or len(b) < 2:
                entry["verdict"] = "single run: no interval"
            else:
                entry["ci_low"], entry["ci_high"] = bootstrap_ratio(a, b, VERDICT_LEVEL)
                entry["verdict"] = verdict(entry["ci_low"], entry["ci_high"], row["better"])
            entry["_kind"] = row["kind"]
            found.append(entry)
    return found


def verdict_cells(v: dict, page_mode: bool = False) -> list[str]:
    """A verdict's row: figure, unit, better, the medians, ratio [interval], verdict."""
    m = {"metric": v["name"], "unit": v["unit"], "values": [v["a"], v["b"]],
         "_kind": v["_kind"]}
    unit = pick_unit(max(v["a"], v["b"]))
    mark = ratio_mark if page_mode else ratio_text
    ratio = "-" if v["ratio"] is None else mark(v["ratio"])
    if v["ci_low"] is not None:
        ratio += f" [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
    return [v["name"], metric_unit(m, unit), v["better"], v["run"],
            f"{format_metric(m, v['a'], unit)} ({v['repetitions'][0]})",
            f"{format_metric(m, v['b'], unit)} ({v['repetitions'][1]})", ratio, v["verdict"]]


VERDICT_HEAD = ["figure", "unit", "better", "run", "[1] median (reps)", "median (reps)",
                "ratio [95 % interval]", "verdict"]


def verdict_note(labels: list[str]) -> str:
    return (f"Verdicts: each run's median against [1] {labels[0]}'s, ratio = median / [1]'s "
            f"median, with a {100 * VERDICT_LEVEL:g} % percentile bootstrap interval (each run's "
            f"repetitions resampled with replacement, {RESAMPLES:,} resamples, seed {SEED}); "
            "faster or slower when the interval excludes 1, else no difference detected.")


def verdict_text(labels: list[str], found: list[dict]) -> list[str]:
    lines = ["", "VERDICTS", "--------", verdict_note(labels), ""]
    if not found:
        return lines + ["  (no headline figure shared with [1])"]
    return lines + ["  " + l for l in table([VERDICT_HEAD] + [verdict_cells(v) for v in found],
                                            "llllrrrl")]


def verdict_page(labels: list[str], found: list[dict]) -> page.Markup:
    rows = [page.Row(verdict_cells(v, True), {"slower": "bad", "faster": "knee"}.get(
        v["verdict"], "")) for v in found]
    return page.join(page.para(verdict_note(labels)),
                     page.table(VERDICT_HEAD, rows, "llllrrrl") if rows else
                     page.para("No headline figure shared with [1].", "note"))


def compare(dirs: list[Path], out: Path, plots: bool, allow_partial: bool, say,
            warn) -> int:
    loaded = [load_any(d, warn, allow_partial) for d in dirs]
    repeated = any(rep.merged for rep in loaded)
    runs = [rep.whole for rep in loaded]
    labels = unique_labels(runs)
    if repeated:
        summaries = [representative(rep) for rep in loaded]
        metrics = median_metrics(loaded)
        found = verdicts(labels, loaded)
    else:
        summaries = [rep.summaries[0] for rep in loaded]
        metrics = comparison_metrics(summaries)
    text = render_comparison(labels, runs, summaries, metrics)
    if repeated:
        text = text.removesuffix("\n").removesuffix(PERCENTILE_NOTE) \
            + "\n".join(verdict_text(labels, found)[1:]) + "\n\n" + PERCENTILE_NOTE + "\n"
    out.mkdir(parents=True, exist_ok=True)
    written = [write_text(out / "comparison.txt", text)]
    payload = {
        "tool": PROG,
        "baseline": labels[0],
        "ratio": "value / value of the first run",
        "latency_unit": "ns",
        "duration_unit": "ns",
        "partial": any(r.partial for r in runs),
        "runs": [{"label": l, "results_dir": str(r.directory), "run": r.info,
                  "run_id": r.run_id, "status": r.status, "partial": bool(r.partial),
                  "partial_reasons": r.partial, "notes": r.notes}
                 for l, r in zip(labels, runs)],
        "metrics": public(metrics),
        "summaries": summaries,
    }
    if repeated:
        for entry, rep in zip(payload["runs"], loaded):
            entry["repetitions"] = len(rep.reps)
        payload.update(seed=SEED, level=round(100 * VERDICT_LEVEL), resamples=RESAMPLES,
                       value="the median of each run's repetitions",
                       figures=public(found))
    written.append(write_json(out / "comparison.json", payload))
    drawn = []
    if plots:
        drawn = render(comparison_plots(labels, runs, summaries, metrics), out, page=True)
        written += [d.path for d in drawn]
    extra = [("Verdicts", verdict_page(labels, found))] if repeated else []
    written.append(write_text(out / page.PAGE_FILE, comparison_page(
        labels, runs, summaries, metrics, drawn, out, plots, extra)))
    say(text)
    say("Wrote: " + ", ".join(str(p) for p in written))
    return check_bad_data([run for rep in loaded for _, run, _ in rep.reps],
                          [s for rep in loaded for s in rep.summaries])
