"""
plots - what the kinds' plots share: pyplot set up once (headless, settings
that read well at a glance), log axes labelled with plain numbers, titles
that carry a run's PARTIAL reasons in red, message-size axes and curves,
legends without repeats, the colours of runs and interference sets; and
the rendering of each figure, once, to the PNG file beside the results and
to the inline SVG (or, when that would be huge, a PNG data URI) of the HTML
page.

A kind lists its figures as Plot(file, caption, draw): the file name of its
PNG, one sentence saying what was timed, and the function that draws it.
render() draws each and closes it; nothing here decides what a kind plots.
"""

from __future__ import annotations

import base64
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from analysis.units import fmt_size, nice, ratio_text

DPI = 110
# An inline SVG above this many bytes (a plot of many thousands of points
# that are not rasterized) is replaced by a PNG data URI on the page.
SVG_LIMIT = 1_500_000
# Fonts for the SVG's text when the reader's machine lacks matplotlib's.
SVG_FONTS = "'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif"


@dataclass(frozen=True)
class Plot:
    """One figure of a kind."""

    file: str                  # its PNG beside the results: "latency_histogram.png"
    caption: str               # one sentence for the page: what was timed, how it is drawn
    draw: Callable[[], object]  # draws it: returns a matplotlib Figure


@dataclass
class Drawn:
    """A figure rendered: the PNG written (or not) and its markup for the page."""

    file: str
    caption: str
    path: Path | None          # the PNG written; None when no PNG was asked for
    markup: str                # an inline <svg>, or an <img> of the PNG
    inches: float = 0.0        # its width as drawn


def pyplot():
    """Import pyplot lazily (slow) with settings that read well at a glance."""
    import matplotlib

    matplotlib.use("Agg")  # headless: must precede the pyplot import
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 11,
        "axes.labelsize": 10, "legend.fontsize": 9, "figure.titlesize": 13,
        # The page's SVG: text as text (searchable, sharp, small), and the
        # same ids from one analysis to the next.
        "svg.fonttype": "none", "svg.hashsalt": "ivshmem-bench",
    })
    return plt


# --------------------------------------------------------------------------
# Rendering: the PNG file and the page's inline SVG
# --------------------------------------------------------------------------


def render(plots: list[Plot], out: Path | None, page: bool) -> list[Drawn]:
    """Draw each plot once: its PNG into out (None: no file) and, for the
    page, its SVG made self-contained (ids made unique per figure, fonts with
    fallbacks); a figure whose SVG would be huge goes on the page as a PNG
    data URI instead. Each figure is closed as soon as it is written."""
    plt = pyplot()
    drawn = []
    for plot in plots:
        fig = plot.draw()
        inches = float(fig.get_size_inches()[0])
        try:
            path = out / plot.file if out is not None else None
            if path is not None:
                fig.savefig(path, dpi=DPI)
            markup = ""
            if page:
                svg = io.StringIO()
                fig.savefig(svg, format="svg", dpi=DPI, metadata={"Date": None})
                markup = inline_svg(svg.getvalue(), Path(plot.file).stem, plot.caption)
                if len(markup) > SVG_LIMIT:
                    png = io.BytesIO()
                    fig.savefig(png, format="png", dpi=DPI)
                    markup = (f'<img src="data:image/png;base64,'
                              f'{base64.b64encode(png.getvalue()).decode()}" '
                              f'alt="{escape(plot.caption)}">')
        finally:
            plt.close(fig)
        drawn.append(Drawn(plot.file, plot.caption, path, markup, inches))
    return drawn


# Where matplotlib's SVG names an id: its definitions and the two ways it
# refers to one (clip paths, and the <use> of a marker).
SVG_ID = re.compile(r'(id="|url\(#|href="#)')
# matplotlib's RDF block (creator, date, format): addresses no page needs.
SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)


def inline_svg(svg: str, prefix: str, caption: str) -> str:
    """matplotlib's SVG as an element of the page: no XML prolog and no RDF
    metadata, every id (and every reference to one) prefixed, so that two
    figures of one page never share an id, the text's fonts with fallbacks,
    and a label for screen readers."""
    svg = SVG_ID.sub(lambda m: f"{m.group(1)}{prefix}-", svg[svg.index("<svg"):])
    svg = SVG_METADATA.sub("", svg, count=1)
    svg = svg.replace("'DejaVu Sans'", SVG_FONTS)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(caption)}" ', 1)


def escape(text: str) -> str:
    """Text for an HTML attribute."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


# --------------------------------------------------------------------------
# Axes, titles and curves the kinds share
# --------------------------------------------------------------------------


def plain_log_ticks(axis) -> None:
    """Log-axis ticks at 1-2-5 steps written as plain numbers, not 10^3."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: nice(v)))
    axis.set_minor_formatter(NullFormatter())


def comma_ticks(axis) -> None:
    """Linear-axis tick labels with thousands separators, like the log axes."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: nice(v) if v else "0"))


def headline(fig, text: str, partial: list[str]) -> None:
    """The figure's title; for partial results a second line in red says why,
    so the picture cannot be taken for a whole run."""
    if not partial:
        fig.suptitle(text)
        return
    why = "; ".join(partial)
    why = why if len(why) <= 110 else why[:107] + "..."
    fig.suptitle("\n".join(filter(None, [text, f"PARTIAL RESULTS: {why}"])),
                 color="tab:red")


def no_data(ax, text="no successful transfers"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            fontsize=12, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


BAD_LABEL = "errors > 0: bad messages"
PERCENTILE_STYLE = (("p50_ns", "p50", "tab:blue"), ("p99_ns", "p99", "tab:orange"),
                    ("p99_9_ns", "p99.9", "tab:purple"))


def size_curve(ax, points: list[dict], key: str, scale: float = 1.0, **style) -> int:
    """Draw points' key against their message size, marking the points with
    bad messages with a red cross. A log axis cannot show 0: such values
    are left out of the line; returns how many were."""
    x = np.array([p["message_bytes"] for p in points], dtype=float)
    y = np.array([np.nan if p[key] is None else p[key] for p in points], dtype=float) / scale
    hidden = int(np.count_nonzero(~(y > 0)))
    y = np.where(y > 0, y, np.nan)
    ax.plot(x, y, ms=5, lw=1.5, **style)
    bad = [i for i, p in enumerate(points) if p["errors"] and y[i] > 0]
    if bad:
        ax.scatter(x[bad], y[bad], marker="X", s=110, color="tab:red", zorder=4,
                   label=BAD_LABEL)
    return hidden


def size_labels(sizes: list[int]) -> list[str]:
    """Tick labels of the measured sizes (ascending); a size too close to
    the last labelled one to be read beside it keeps its tick unlabelled."""
    span = math.log10(sizes[-1] / sizes[0]) if len(sizes) > 1 else 1.0
    labels, last = [], None
    for n in sizes:
        if last is not None and math.log10(n / last) < span / 14:
            labels.append("")
            continue
        labels.append(fmt_size(n))
        last = n
    return labels


def size_axes(ax, sizes, ylabel: str, title: str, hidden: int = 0) -> None:
    """Log-log axes with the measured message sizes as x ticks, and a
    legend without repeated entries."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_title(title + (f"\n({hidden} point{'s' if hidden > 1 else ''} at 0 not drawn "
                          "on this log axis)" if hidden else ""))
    if not any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()
               for line in ax.lines):
        no_data(ax, "nothing above 0 to draw on a log axis")
        return
    sizes = sorted(set(sizes))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels(size_labels(sizes), rotation=30 if len(sizes) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(sizes) == 1:
        ax.set_xlim(sizes[0] / 2, sizes[0] * 2)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("message size (bytes, log scale)")
    ax.set_ylabel(f"{ylabel} (log scale)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)


SET_COLORS = ("black", "tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink",
              "tab:olive", "tab:cyan", "tab:gray")  # the quiet set first, in black


def panel_grid(plt, panels: int, width: float = 6.2, height: float = 4.8):
    """A figure of panels laid out three to a row; the unused ones hidden."""
    cols = 2 if panels == 4 else min(panels, 3)
    rows = math.ceil(panels / cols)
    if panels == 1:
        width, height = 9.0, 5.6  # room for a two-line title
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows + 0.6),
                             constrained_layout=True, squeeze=False)
    flat = list(axes.flat)
    for ax in flat[panels:]:
        ax.set_visible(False)
    return fig, flat[:panels]


def positive(values) -> np.ndarray:
    """Values as floats, 0 and absent as NaN: a log axis cannot show them."""
    y = np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.where(y > 0, y, np.nan)


def legend(ax) -> None:
    """A legend without repeated or empty entries."""
    handles, labels = ax.get_legend_handles_labels()
    unique = {l: h for l, h in zip(labels, handles) if l and not l.startswith("_")}
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize=8)


# --------------------------------------------------------------------------
# Several runs in one figure
# --------------------------------------------------------------------------


def grouped_bars(ax, groups: list[str], metrics: list[dict], labels: list[str],
                 scale: float) -> None:
    """One group of bars per metric, one bar per run, ratios written on top."""
    n = len(labels)
    width = 0.8 / n
    x = np.arange(len(groups))
    for i, label in enumerate(labels):
        vals = np.array([(m["values"][i] or 0) / scale for m in metrics])
        bars = ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=f"[{i + 1}] {label}")
        if i == 0 or n > 5:
            continue
        for b, m in zip(bars, metrics):
            r = m["ratios"][i]
            if r is not None:
                ax.annotate(ratio_text(r), (b.get_x() + b.get_width() / 2, b.get_height()),
                            textcoords="offset points", xytext=(0, 2), ha="center",
                            fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.margins(y=0.12)
    ax.legend(loc="upper left", fontsize=8)


RUN_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown",
              "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def run_style(i: int) -> dict:
    """Colour and marker of the i-th run in the overlays (the colours cycle
    past nine runs; the markers keep them apart)."""
    return {"color": RUN_COLORS[i % len(RUN_COLORS)], "marker": "osD^v<>ph"[i % 9]}


def compare_headline(fig, text: str, runs: list) -> None:
    headline(fig, text, [f"[{i + 1}] {'; '.join(r.partial)}"
                         for i, r in enumerate(runs) if r.partial])
