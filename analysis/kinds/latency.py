"""
latency - the round trip of an empty message (latency_results.csv, one row
per measured round trip): host_writer posts, the responder acknowledges
RECEIVED and then PROCESSED. Exact percentiles over every row (numpy's
'linear', the C harness's definition), the first acknowledgement beside the
round trip, the histogram, the trace and the percentile curve.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import page
from analysis.kind import Fact, Kind
from analysis.plots import Plot, comma_ticks, headline, plain_log_ticks, pyplot
from analysis.stats import sample_std
from analysis.tables import (MAX_ITERATION, NON_NEGATIVE, OPTIONAL, Column, Loaded, Schema,
                             check_unique, read_table)
from analysis.units import fmt_time, nice, pick_unit, table

LATENCY = Schema("latency", "latency_results.csv", dict(
    iteration=Column(required=True, integer=True, maximum=MAX_ITERATION),
    latency_ns=Column(required=True),
    latency_us=NON_NEGATIVE,
    received_ns=OPTIONAL,
    received_us=OPTIONAL,
))

KEY_PERCENTILES = (50, 90, 99, 99.9)


# --------------------------------------------------------------------------
# Loading and statistics
# --------------------------------------------------------------------------


def load_latency(path: Path) -> Loaded:
    """Load latency_results.csv into iteration, latency_ns[, received_ns]."""
    table = read_table(path, LATENCY.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    df = pd.DataFrame({
        "iteration": table.columns["iteration"].astype(np.int64),
        "latency_ns": table.columns["latency_ns"],
    })
    received = table.columns.get("received_ns")
    if received is not None and not np.isnan(received).all():
        df["received_ns"] = received
    check_unique(table, df["iteration"].to_numpy(), "iteration")
    return Loaded(path, df, table.rows, table.cut)


def latency_stats(values_ns) -> dict:
    """Count, extremes, mean, std, percentiles, IQR and one-way estimates (ns)."""
    v = np.asarray(values_ns, dtype=float)
    p25, p50, p75, p90, p95, p99, p999 = np.percentile(v, [25, 50, 75, 90, 95, 99, 99.9])
    mean = float(v.mean())
    return {
        "count": int(v.size),
        "min_ns": float(v.min()),
        "max_ns": float(v.max()),
        "mean_ns": mean,
        "median_ns": float(p50),
        "std_ns": sample_std(v),
        "p25_ns": float(p25),
        "p50_ns": float(p50),
        "p75_ns": float(p75),
        "p90_ns": float(p90),
        "p95_ns": float(p95),
        "p99_ns": float(p99),
        "p99_9_ns": float(p999),
        "iqr_ns": float(p75 - p25),
        "one_way_median_ns": float(p50) / 2,
        "one_way_mean_ns": mean / 2,
    }


def summarize(lat: pd.DataFrame, _run) -> dict:
    """Round trip and first acknowledgement, each over every row."""
    received = None
    if "received_ns" in lat:
        received = latency_stats(lat["received_ns"].dropna())
    return {"round_trip": latency_stats(lat["latency_ns"]), "received": received}


def data_notes(lat: pd.DataFrame) -> list[str]:
    if "received_ns" not in lat:
        return ["no received_ns column: first-acknowledgement statistics skipped"]
    return []


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


LATENCY_ROWS = [
    ("count", "count"), ("min", "min_ns"), ("median (p50)", "p50_ns"),
    ("mean", "mean_ns"), ("std dev", "std_ns"), ("p90", "p90_ns"),
    ("p95", "p95_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"), ("max", "max_ns"),
    ("IQR (p75 - p25)", "iqr_ns"), ("one-way est. (p50 / 2)", "one_way_median_ns"),
    ("one-way est. (mean / 2)", "one_way_mean_ns"),
]


def text(lat: dict) -> list[str]:
    rt, rc = lat["round_trip"], lat["received"]
    unit = pick_unit(rt["median_ns"])
    head = ["", f"round trip ({unit[0]})"]
    if rc:
        head.append(f"first ack ({unit[0]})")
    rows = [head]
    for name, key in LATENCY_ROWS:
        cells = [name]
        for s in (rt, rc) if rc else (rt,):
            cells.append(str(s["count"]) if key == "count" else fmt_time(s[key], unit))
        rows.append(cells)
    lines = ["", "LATENCY", "-------",
             "round trip: host posts a message -> guest's PROCESSED acknowledgement"]
    if rc:
        lines.append("first ack:  host posts a message -> guest's RECEIVED acknowledgement")
    lines.append("one-way estimate: half the round trip")
    return lines + [""] + ["  " + l for l in table(rows)]


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def sorted_percentile(ordered: np.ndarray, q) -> np.ndarray:
    """numpy's 'linear' percentiles of an already sorted array, O(1) each:
    the plots ask for hundreds of them of up to tens of millions of values."""
    q = np.asarray(q, dtype=float)
    h = (ordered.size - 1) * q / 100
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    return ordered[lo] + (h - lo) * (ordered[hi] - ordered[lo])


@dataclass
class LatencySeries:
    """The latency columns as arrays, in file order and sorted (once, for
    every plot), and the iteration of each row."""

    iteration: np.ndarray
    rt: np.ndarray
    rt_sorted: np.ndarray
    rc: np.ndarray | None         # first ack, empty cells dropped
    rc_sorted: np.ndarray | None
    rc_all: np.ndarray | None     # first ack in file order, NaN where empty

    @classmethod
    def of(cls, lat: pd.DataFrame) -> "LatencySeries":
        rt = lat["latency_ns"].to_numpy(float)
        rc_all = lat["received_ns"].to_numpy(float) if "received_ns" in lat else None
        rc = rc_all[~np.isnan(rc_all)] if rc_all is not None else None
        if rc is not None and rc.size == 0:
            rc = rc_all = None
        return cls(lat["iteration"].to_numpy(), rt, np.sort(rt), rc,
                   np.sort(rc) if rc is not None else None, rc_all)


def body_limit(ordered: np.ndarray) -> float:
    """Upper end of the bulk of a distribution: p75 + 5 IQR, within [p99, p99.5]
    so a thin but far tail does not squash the bulk into one bar."""
    p25, p75, p99, p995 = sorted_percentile(ordered, [25, 75, 99, 99.5])
    return float(min(p995, max(p99, p75 + 5 * (p75 - p25))))


def wide(ordered: np.ndarray) -> bool:
    """True when a distribution's tail is long enough to need a log axis."""
    lo, hi = sorted_percentile(ordered, [1, 100])
    return lo > 0 and hi / lo > 20


def plot_latency_histogram(lat: LatencySeries, title: str, partial: list[str]):
    """Counts from np.histogram over every sample, drawn as steps: the cost
    of drawing does not grow with the number of samples."""
    plt = pyplot()
    rt, rc = lat.rt_sorted, lat.rc_sorted
    name, scale, _ = pick_unit(sorted_percentile(rt, 50))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    headline(fig, f"Latency distribution: {title}", partial)

    cut = body_limit(rt)
    hidden = rt.size - int(np.searchsorted(rt, cut, side="right"))
    lo = min(rt[0], rc[0] if rc is not None else rt[0])
    edges = np.linspace(lo, max(cut, lo + 1e-9 * scale), 61)
    ax1.stairs(np.histogram(rt, edges)[0], edges / scale, fill=True, color="tab:blue",
               alpha=0.75, label="round trip")
    if rc is not None:
        ax1.stairs(np.histogram(rc, edges)[0], edges / scale, color="tab:orange", lw=1.5,
                   label="first ack (RECEIVED)")
    ax1.set_title(f"Linear scale: the bulk, up to {nice(cut / scale)} {name}\n"
                  f"({hidden:,} slower round trips not shown, see right)")
    ax1.set_xlabel(f"latency ({name})")
    comma_ticks(ax1.xaxis)
    comma_ticks(ax1.yaxis)  # 1,000,000 rather than an offset "1e6" over the axis
    ax1.set_ylabel("samples")

    positive = rt[rt > 0]
    lo2 = max(positive[0] if positive.size else 1.0, 1.0)
    hi2 = max(rt[-1], lo2 * 1.01)
    logedges = np.geomspace(lo2, hi2, 61)
    ax2.stairs(np.histogram(rt, logedges)[0], logedges / scale, fill=True,
               color="tab:blue", alpha=0.75, label="round trip")
    if rc is not None:
        ax2.stairs(np.histogram(rc, logedges)[0], logedges / scale, color="tab:orange",
                   lw=1.5, label="first ack (RECEIVED)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_title("Log scales: the full range, tail included\n ")
    plain_log_ticks(ax2.xaxis)
    plain_log_ticks(ax2.yaxis)
    ax2.set_xlabel(f"latency ({name}, log scale)")
    ax2.set_ylabel("samples (log scale)")

    for ax in (ax1, ax2):
        for p, style in ((50, "--"), (99, ":")):
            v = sorted_percentile(rt, p) / scale
            ax.axvline(v, color="black", ls=style, lw=1, label=f"p{p} = {nice(v)} {name}")
        ax.legend(loc="upper right")
    return fig


SCATTER_LIMIT = 100_000  # up to this many round trips, every one is a dot
TIME_BINS = 2_000        # beyond it, this many bins of consecutive round trips


def bin_rows(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Split values (in order) into bins of equal size, the remainder in one
    more; return (index of each bin's middle row, rows as a list of arrays)."""
    size = values.size // bins
    full = values[:size * bins].reshape(bins, size)
    parts = [full] + ([values[size * bins:][None, :]] if values.size % bins else [])
    middles = np.arange(bins) * size + size // 2
    if values.size % bins:
        middles = np.append(middles, size * bins + (values.size % bins) // 2)
    return middles, parts


def binned(values: np.ndarray, bins: int, how) -> np.ndarray:
    """how(rows, axis=1) of each bin of bin_rows(). A bin of nothing but
    empty cells gives NaN (a gap in the line), without numpy's warning."""
    _, parts = bin_rows(values, bins)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.concatenate([how(p, axis=1) for p in parts])


def plot_latency_over_time(lat: LatencySeries, title: str, partial: list[str]):
    """Each round trip as a dot with a rolling median; above SCATTER_LIMIT,
    bins of consecutive round trips instead: the min-max band of each bin
    (so no outlier disappears) and its median, in time linear in the rows."""
    plt = pyplot()
    rt = lat.rt
    name, scale, _ = pick_unit(sorted_percentile(lat.rt_sorted, 50))
    fig, ax = plt.subplots(figsize=(12, 5), constrained_layout=True)
    if rt.size <= SCATTER_LIMIT:
        dense = rt.size > 20_000  # thinner, fainter dots so a long run stays legible
        ax.scatter(lat.iteration, rt / scale, s=1 if dense else 4,
                   alpha=max(0.03, min(0.35, 3000 / rt.size)), color="tab:blue",
                   label="round trip (each sample)", rasterized=True)
        window = max(5, rt.size // 50)
        ax.plot(lat.iteration, pd.Series(rt).rolling(window, center=True, min_periods=1)
                .median() / scale, color="black", lw=1.5,
                label=f"round trip, rolling median of {window}")
        if lat.rc_all is not None:
            ax.plot(lat.iteration, pd.Series(lat.rc_all).rolling(
                window, center=True, min_periods=1).median() / scale,
                color="tab:orange", lw=1.5,
                label=f"first ack (RECEIVED), rolling median of {window}")
        drawn = ""
    else:
        middles, _ = bin_rows(rt, TIME_BINS)
        x = lat.iteration[middles]
        per_bin = rt.size // TIME_BINS
        ax.fill_between(x, binned(rt, TIME_BINS, np.min) / scale,
                        binned(rt, TIME_BINS, np.max) / scale, color="tab:blue",
                        alpha=0.3, lw=0, label=f"round trip, min-max of each {per_bin:,}")
        ax.plot(x, binned(rt, TIME_BINS, np.median) / scale, color="black", lw=1.2,
                label=f"round trip, median of each {per_bin:,}")
        if lat.rc_all is not None:
            ax.plot(x, binned(lat.rc_all, TIME_BINS, np.nanmedian) / scale,
                    color="tab:orange", lw=1.2,
                    label=f"first ack (RECEIVED), median of each {per_bin:,}")
        drawn = f"\n{rt.size:,} round trips drawn as {len(x):,} bins of consecutive ones"
    p99 = sorted_percentile(lat.rt_sorted, 99) / scale
    ax.axhline(p99, color="tab:red", ls=":", lw=1, label=f"p99 = {nice(p99)} {name}")
    log = wide(lat.rt_sorted)
    if log:
        ax.set_yscale("log")
    ax.set_title(f"Latency over time: {title}{drawn}",
                 color="tab:red" if partial else "black")
    if partial:
        headline(fig, "", partial)
    ax.set_xlabel("iteration (measured round trips, warm-up excluded)")
    comma_ticks(ax.xaxis)
    ax.set_ylabel(f"latency ({name}{', log scale' if log else ''})")
    plain_log_ticks(ax.yaxis) if log else comma_ticks(ax.yaxis)
    legend = ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=4,
                       markerscale=3, frameon=False)
    handles = getattr(legend, "legend_handles", None) or legend.legendHandles  # mpl 3.6
    for handle in handles:
        handle.set_alpha(1)  # the faint dots would make an invisible legend entry
    return fig


def tail_position(percentile):
    """x position of a percentile on a tail axis: 90, 99, 99.9 evenly spaced."""
    return -np.log10(1 - np.asarray(percentile, dtype=float) / 100)


def plot_latency_percentiles(lat: LatencySeries, title: str, partial: list[str]):
    plt = pyplot()
    rt = lat.rt_sorted
    name, scale, _ = pick_unit(sorted_percentile(rt, 50))
    n = rt.size
    top = min(99.99, 100 * (1 - 1 / max(n, 2)))  # no further than the data reaches
    ps = np.unique(np.concatenate([np.linspace(0, 90, 91),
                                   100 - np.geomspace(10, 100 - top, 200)]))
    ps = ps[ps <= top]
    fig, ax = plt.subplots(figsize=(11, 6), constrained_layout=True)
    ax.plot(tail_position(ps), sorted_percentile(rt, ps) / scale, color="tab:blue", lw=2,
            label="round trip")
    if lat.rc_sorted is not None:
        ax.plot(tail_position(ps), sorted_percentile(lat.rc_sorted, ps) / scale,
                color="tab:orange", lw=1.5, label="first ack (RECEIVED)")
    for p in KEY_PERCENTILES:
        if p > top + 1e-9:
            continue
        v = sorted_percentile(rt, p) / scale
        x = tail_position(p)
        ax.plot(x, v, "o", color="tab:red", zorder=3)
        ax.annotate(f"p{p:g} = {nice(v)} {name}", (x, v), textcoords="offset points",
                    xytext=(8, -16), ha="left", fontsize=9,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "alpha": 0.8})
    ax.axhline(rt[-1] / scale, color="gray", ls="--", lw=1,
               label=f"max = {nice(rt[-1] / scale)} {name}")
    ticks = [p for p in (0, 50, 90, 99, 99.9, 99.99) if p <= top + 1e-9]
    ax.set_xticks(tail_position(ticks))
    ax.set_xticklabels([f"p{p:g}" for p in ticks])
    ax.set_xlim(0, tail_position(top) * 1.02)
    log = wide(rt)
    if log:
        ax.set_yscale("log")
    plain_log_ticks(ax.yaxis) if log else comma_ticks(ax.yaxis)
    ax.set_title(f"Latency percentiles: {title}  ({n:,} samples)",
                 color="tab:red" if partial else "black")
    if partial:
        headline(fig, "", partial)
    ax.set_xlabel("percentile (tail stretched: p90, p99, p99.9 equally spaced)")
    ax.set_ylabel(f"latency ({name}{', log scale' if log else ''})")
    ax.legend(loc="upper left")
    return fig


def plots(lat: pd.DataFrame, entry: dict, title: str, partial: list[str]) -> list[Plot]:
    series = LatencySeries.of(lat)
    n = f"{entry['round_trip']['count']:,}"
    return [
        Plot("latency_histogram.png",
             f"How the {n} round trips (host posts a message, to the responder's PROCESSED "
             "acknowledgement) are distributed: the bulk on a linear scale, every one on log "
             "scales.", lambda: plot_latency_histogram(series, title, partial)),
        Plot("latency_over_time.png",
             f"Each of the {n} round trips in the order measured (warm-up excluded), with a "
             "running median: drift, bursts and outliers over the run.",
             lambda: plot_latency_over_time(series, title, partial)),
        Plot("latency_percentiles.png",
             "The round trip at every percentile, the tail stretched so that p90, p99 and "
             "p99.9 are evenly spaced; the maximum dashed.",
             lambda: plot_latency_percentiles(series, title, partial)),
    ]


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(lat: dict) -> str:
    rt, rc = lat["round_trip"], lat["received"]
    unit = pick_unit(rt["median_ns"])
    head = ["statistic", f"round trip ({unit[0]})"] + ([f"first ack ({unit[0]})"] if rc else [])
    rows = []
    for name, key in LATENCY_ROWS:
        cells = [name]
        for s in (rt, rc) if rc else (rt,):
            cells.append(f"{s['count']:,}" if key == "count" else fmt_time(s[key], unit))
        rows.append(cells)
    intro = ("Round trip: host_writer posts a message, to the responder's PROCESSED "
             "acknowledgement" + ("; first ack: to its RECEIVED acknowledgement" if rc else "")
             + ". Percentiles are exact, over every round trip; the one-way estimate is half "
             "the round trip.")
    return page.join(page.para(intro), page.table(head, rows))


def headline_facts(lat: dict) -> list[Fact]:
    """p50 and p99 of the round trip, each in the unit that suits it."""
    rt = lat["round_trip"]
    return [Fact(f"round trip {label}", fmt_time(rt[key], pick_unit(rt[key])),
                 pick_unit(rt[key])[0], rt[key], f"latency.round_trip.{key}",
                 f"over {rt['count']:,} round trips" if i == 0 else "host posts → PROCESSED")
            for i, (label, key) in enumerate((("p50", "p50_ns"), ("p99", "p99_ns")))]


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


def compare(summaries: list[dict], add) -> None:
    def lat(s, part, key):
        section = (s["latency"] or {}).get(part)
        return section[key] if section else None

    for part, prefix in (("round_trip", "latency"), ("received", "first ack")):
        for label, key in (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"),
                           ("p99.9", "p99_9_ns"), ("mean", "mean_ns"), ("min", "min_ns")):
            add(f"{prefix} {label}", "ns", "lower", [lat(s, part, key) for s in summaries])


def headline_figure(name: str) -> bool:
    """The round trip's p50, p99 and p99.9: what a repetition must settle."""
    return name in ("latency p50", "latency p99", "latency p99.9")


KIND = Kind(
    name="latency", key="latency", title="Round-trip latency",
    files=((LATENCY, load_latency),),
    summarize=summarize, text=text, html=html, plots=plots, headline=headline_facts,
    data_notes=data_notes, compare=compare, headline_figure=headline_figure,
)
