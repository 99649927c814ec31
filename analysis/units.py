"""
units - numbers as the reports write them: times in one unit per table (ns,
µs or ms, from the median), thousands separators, message sizes in binary
units where exact, rates to four significant digits, ratios as x2.00; and
text tables with aligned columns. The HTML page uses the same functions, so
a figure reads the same in performance_report.txt and in report.html.
"""

from __future__ import annotations


def pick_unit(median_ns: float) -> tuple[str, float, int]:
    """(unit, ns per unit, decimals) chosen from the median latency."""
    if median_ns < 10_000:
        return "ns", 1.0, 1
    if median_ns < 10_000_000:
        return "µs", 1e3, 3
    return "ms", 1e6, 3


def fmt_time(ns: float | None, unit: tuple[str, float, int]) -> str:
    """A time in the given unit, with thousands separators; '-' when absent."""
    if ns is None:
        return "-"
    _, scale, decimals = unit
    return f"{ns / scale:,.{decimals}f}"


def nice(value: float) -> str:
    """A number for a plot label: 18,078 or 541 or 0.37, never 1.8e+04."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def fmt_size(n: int) -> str:
    """A message size as people write it: 8 B, 100 B, 4 KiB, 1 MiB (binary
    units only where they are exact)."""
    for shift, unit in ((20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:,} B"


def fmt_sig(value: float | None) -> str:
    """A rate or cost to four significant digits, thousands separated:
    4,798,382 or 2.101 or 0.0007; '-' when absent."""
    if value is None:
        return "-"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def fmt_ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:,.3f}"


def fmt_gbps(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def fmt_pm(s: dict, fmt) -> str:
    """'mean ± std' of a spread() dict."""
    if s["mean"] is None:
        return "-"
    if s["std"] is None:
        return f"{fmt(s['mean'])} ± -"
    return f"{fmt(s['mean'])} ± {fmt(s['std'])}"


def fmt_range(s: dict, fmt) -> str:
    return "-" if s["min"] is None else f"{fmt(s['min'])} – {fmt(s['max'])}"


def table(rows: list[list[str]], align: str = "") -> list[str]:
    """Align rows into columns; align has 'l' or 'r' per column (default: the
    first column left, the others right)."""
    ncols = len(rows[0])
    align = (align or "l" + "r" * (ncols - 1)).ljust(ncols, "r")
    widths = [max(len(r[i]) for r in rows) for i in range(ncols)]
    lines = []
    for r in rows:
        cells = [c.ljust(w) if a == "l" else c.rjust(w)
                 for c, w, a in zip(r, widths, align)]
        lines.append("  ".join(cells).rstrip())
    return lines


def fmt_pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def ratio_mark(r: float) -> str:
    """A ratio as the page writes it: ×2.00, ×1,234.50, ×0.00016."""
    return f"×{r:,.2f}" if r >= 0.01 or r == 0 else f"×{r:.2g}"


def ratio_text(r: float) -> str:
    """x2.00, or for a ratio too small for two decimals x0.00016."""
    return f"x{r:.2f}" if r >= 0.01 or r == 0 else f"x{r:.2g}"


def settings_line(rows: list[dict], keys: tuple[str, ...]) -> str:
    """'verify xxh3, wait spin, slots 256' for the settings every row
    shares; a setting that differs between rows says so."""
    parts = []
    for key in keys:
        values = [str(v) for v in sorted({r[key] for r in rows if r.get(key) is not None})]
        if values:
            parts.append(f"{key} {values[0]}" if len(values) == 1
                         else f"{key} varies ({', '.join(values)})")
    return ", ".join(parts)


def row_time_unit(m: dict) -> tuple[str, float, int]:
    """A size-latency or rate row's unit, from its smallest value (which
    stays exact)."""
    return pick_unit(min(v for v in m["values"] if v is not None))
