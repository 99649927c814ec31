"""
frames - video frames moved and verified (bandwidth_results.csv, one row per
transfer): the host copies a frame of random bytes into shared memory, the
responder copies it out and checks its SHA-256. Per frame size: how many
were verified, the bandwidth of the whole verified exchange, the host's copy
rate, the time of each phase; and overall. A run whose every transfer
failed is reported, then exits 1.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import page
from analysis.errors import DataError
from analysis.kind import Fact, Kind
from analysis.plots import Plot, headline, no_data, pyplot
from analysis.stats import clean, spread
from analysis.tables import (AGREE, MAX_ERROR_CODE, MAX_FRAME_SIDE, MAX_ITERATION, OPTIONAL,
                             Column, Loaded, Schema, Table, check_unique, first_bad, fmt_number,
                             impossible, read_table, shown)
from analysis.units import fmt_gbps, fmt_ms, fmt_pm, fmt_range, table

BANDWIDTH_INT_COLUMNS = ("width", "height", "iteration", "error_code")
BANDWIDTH_TIME_COLUMNS = (
    "copy_ns", "handoff_ns", "verify_ns", "guest_read_ns", "guest_hash_ns",
)
BANDWIDTH_RATE_COLUMNS = ("transfer_gbps", "bandwidth_gbps")
BANDWIDTH = Schema("frames", "bandwidth_results.csv", dict(
    frame=Column(numeric=False, required=True),
    width=Column(allow_empty=True, integer=True, minimum=1, maximum=MAX_FRAME_SIDE,
                 why="--frames WxH"),
    height=Column(allow_empty=True, integer=True, minimum=1, maximum=MAX_FRAME_SIDE,
                  why="--frames WxH"),
    bytes=Column(required=True, integer=True, minimum=1, maximum=3 * MAX_FRAME_SIDE ** 2,
                 why="--frames WxH: 3 bytes a pixel"),
    iteration=Column(allow_empty=True, integer=True, maximum=MAX_ITERATION),
    success=Column(numeric=False, required=True),
    error_code=Column(allow_empty=True, integer=True, maximum=MAX_ERROR_CODE,
                      why="a uint32_t enum ivb_error"),
    error_name=Column(numeric=False, allow_empty=True),
    copy_ns=OPTIONAL,
    handoff_ns=OPTIONAL,
    verify_ns=OPTIONAL,
    total_ns=Column(required=True, allow_empty=True),
    guest_read_ns=OPTIONAL,
    guest_hash_ns=OPTIONAL,
    transfer_gbps=OPTIONAL,
    bandwidth_gbps=OPTIONAL,
))


# --------------------------------------------------------------------------
# Loading and statistics
# --------------------------------------------------------------------------


def load_bandwidth(path: Path) -> Loaded:
    """Load bandwidth_results.csv, one row per transfer, gaps computed."""
    table = read_table(path, BANDWIDTH.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    first_bad(table, "success", ~np.isin(cols["success"], ["0", "1"]),
              lambda v: f"expected 0 or 1, got {shown(v)}")
    ok = cols["success"] == "1"
    df = pd.DataFrame({"frame": cols["frame"], "bytes": cols["bytes"], "success": ok})
    names = cols.get("error_name", np.full(table.rows, "", dtype=object))
    df["error_name"] = np.where(names != "", names, np.where(ok, "ok", "failed"))
    for col in ("total_ns",) + BANDWIDTH_INT_COLUMNS + BANDWIDTH_TIME_COLUMNS \
            + BANDWIDTH_RATE_COLUMNS:
        if col in cols:
            df[col] = cols[col]
    # Rates are bytes / time: below 1 ns a time is no measurement, and a
    # rate from it could overflow to infinity.
    first_bad(table, "total_ns", ok & ~(df["total_ns"].to_numpy() >= 1),
              lambda v: f"a successful transfer needs a time of at least 1 ns, "
                        f"got {'nothing' if math.isnan(v) else fmt_number(v)}")
    fill_rates(df)
    if "iteration" not in df or df["iteration"].isna().any():
        df["iteration"] = df.groupby("frame", sort=False).cumcount()
    else:
        keys = (df["frame"] + "#" + df["iteration"].astype(np.int64).astype(str)).to_numpy()
        check_unique(table, keys, "transfer")
    check_frame_sizes(path, df)
    check_frame_rows(table)
    return Loaded(path, df, table.rows, table.cut)


def check_frame_rows(table: Table) -> None:
    """Each transfer's figures as frames.c computes them from one another:
    bytes = width x height x 3, total_ns = copy_ns + handoff_ns + verify_ns,
    transfer_gbps = bytes / copy_ns and bandwidth_gbps = bytes / total_ns
    (GB/s = bytes per ns, printed to 4 decimals; within that and AGREE).
    Empty cells are not judged."""
    cols = table.columns
    size = cols["bytes"]
    with np.errstate(invalid="ignore"):
        if "width" in cols and "height" in cols:
            pixels = cols["width"] * cols["height"]
            impossible(table, "bytes", ~np.isnan(pixels) & (size != 3 * pixels),
                       lambda i: f"{fmt_number(size[i])} is not width x height x 3 "
                                 f"({fmt_number(3 * pixels[i])})")
        if all(c in cols for c in ("copy_ns", "handoff_ns", "verify_ns")):
            parts = cols["copy_ns"] + cols["handoff_ns"] + cols["verify_ns"]
            total = cols["total_ns"]
            impossible(table, "total_ns", np.abs(total - parts) > 0.5 + parts * 2.0 ** -50,
                       lambda i: f"{fmt_number(total[i])} is not copy_ns + handoff_ns + "
                                 f"verify_ns ({fmt_number(parts[i])})")
        for rate, time in (("transfer_gbps", "copy_ns"), ("bandwidth_gbps", "total_ns")):
            if rate in cols and time in cols:
                want = size / np.maximum(cols[time], 1)
                got = cols[rate]
                impossible(table, rate, np.abs(got - want) > 5e-5 + want * AGREE,
                           lambda i, got=got, want=want, time=time:
                               f"{fmt_number(got[i])} is not bytes / {time} ({want[i]:.4f})")


def fill_rates(df: pd.DataFrame) -> None:
    """Compute bandwidth_gbps and transfer_gbps of successful rows left empty."""
    ok = df["success"]
    computed = df["bytes"] / df["total_ns"]
    if "bandwidth_gbps" not in df:
        df["bandwidth_gbps"] = np.nan
    df["bandwidth_gbps"] = df["bandwidth_gbps"].where(df["bandwidth_gbps"].notna() | ~ok,
                                                      computed)
    if "copy_ns" in df:
        copy_rate = df["bytes"] / df["copy_ns"].where(df["copy_ns"] >= 1)
        if "transfer_gbps" not in df:
            df["transfer_gbps"] = np.nan
        df["transfer_gbps"] = df["transfer_gbps"].where(df["transfer_gbps"].notna() | ~ok,
                                                        copy_rate)


def check_frame_sizes(path: Path, df: pd.DataFrame) -> None:
    """A frame name must always mean the same number of bytes."""
    sizes = df.groupby("frame")["bytes"].nunique()
    mixed = sizes[sizes > 1]
    if not mixed.empty:
        raise DataError(
            f"{path}: frame {shown(mixed.index[0])} appears with different byte counts"
        )


def frame_order(df: pd.DataFrame) -> list[str]:
    """Frame names from the smallest to the largest frame."""
    sizes = df.groupby("frame")["bytes"].first()
    return sorted(sizes.index, key=lambda f: (sizes[f], f))


def frame_stats(frame: str, rows: pd.DataFrame) -> dict:
    """Success rate, bandwidth, host copy rate and durations of one frame size."""
    good = rows[rows["success"]]
    first = rows.iloc[0]
    failures = rows.loc[~rows["success"], "error_name"].value_counts()
    stats = {
        "frame": frame,
        "bytes": int(first["bytes"]),
        "width": clean(first.get("width")),
        "height": clean(first.get("height")),
        "attempts": int(len(rows)),
        "successes": int(len(good)),
        "failures": int(len(rows) - len(good)),
        "success_rate": len(good) / len(rows),
        "errors": {str(k): int(v) for k, v in failures.items()},
        "bandwidth_gbps": spread(good["bandwidth_gbps"]),
        "transfer_gbps": spread(good["transfer_gbps"]) if "transfer_gbps" in good else None,
        "duration_ns": spread(good["total_ns"]),
        "phase_mean_ns": {},
    }
    for col in BANDWIDTH_TIME_COLUMNS:
        if col in good and good[col].notna().any():
            stats["phase_mean_ns"][col.removesuffix("_ns")] = float(good[col].mean())
    for key in ("width", "height"):
        if stats[key] is not None:
            stats[key] = int(stats[key])
    return stats


def extreme(good: pd.DataFrame, column: str, largest: bool) -> dict:
    """The row with the largest/smallest value of column, as a small dict."""
    idx = good[column].idxmax() if largest else good[column].idxmin()
    row = good.loc[idx]
    return {"value": float(row[column]), "frame": row["frame"],
            "iteration": int(row["iteration"])}


def bandwidth_stats(df: pd.DataFrame) -> dict:
    """Per-frame statistics and the overall summary of all transfers."""
    frames = [frame_stats(f, df[df["frame"] == f]) for f in frame_order(df)]
    good = df[df["success"]]
    overall = {
        "total": int(len(df)),
        "successful": int(len(good)),
        "failed": int(len(df) - len(good)),
        "success_rate": len(good) / len(df),
        "peak_gbps": None, "lowest_gbps": None, "average_gbps": None,
        "aggregate_gbps": None, "fastest_ns": None, "slowest_ns": None,
    }
    if len(good):
        overall.update({
            "peak_gbps": extreme(good, "bandwidth_gbps", largest=True),
            "lowest_gbps": extreme(good, "bandwidth_gbps", largest=False),
            "average_gbps": float(good["bandwidth_gbps"].mean()),
            "aggregate_gbps": float(good["bytes"].sum() / good["total_ns"].sum()),
            "fastest_ns": extreme(good, "total_ns", largest=False),
            "slowest_ns": extreme(good, "total_ns", largest=True),
        })
    return {"frames": frames, "overall": overall}


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


def frame_caption(f: dict) -> str:
    """'1080p (1920x1080, 6.2 MB)'."""
    dims = f"{f['width']}x{f['height']}, " if f.get("width") and f.get("height") else ""
    return f"{f['frame']} ({dims}{f['bytes'] / 1e6:.1f} MB)"


def report_bandwidth(bw: dict) -> list[str]:
    lines = ["", "BANDWIDTH", "---------",
             "bandwidth = bytes / (copy + handoff + verify): the whole verified exchange",
             "host copy = bytes / copy: the host's write into shared memory",
             "GB/s = 1e9 bytes/s; durations in ms", ""]
    rows = [["frame", "success", "bandwidth GB/s", "range", "duration ms", "range",
             "host copy GB/s"]]
    for f in bw["frames"]:
        rows.append([
            frame_caption(f), f"{f['successes']}/{f['attempts']}",
            fmt_pm(f["bandwidth_gbps"], fmt_gbps), fmt_range(f["bandwidth_gbps"], fmt_gbps),
            fmt_pm(f["duration_ns"], fmt_ms), fmt_range(f["duration_ns"], fmt_ms),
            fmt_pm(f["transfer_gbps"], fmt_gbps) if f["transfer_gbps"] else "-",
        ])
    lines += ["  " + l for l in table(rows)]
    lines += report_phases(bw["frames"])
    errors = [f"{f['frame']}: " + ", ".join(f"{n} x{c}" for n, c in f["errors"].items())
              for f in bw["frames"] if f["errors"]]
    if errors:
        lines += ["", "Failures by error:"] + [f"  {e}" for e in errors]
    return lines + report_overall(bw["overall"])


def report_phases(frames: list[dict]) -> list[str]:
    """Mean time per phase of the successful transfers, in ms."""
    phases = [p for p in ("copy", "handoff", "verify", "guest_read", "guest_hash")
              if any(p in f["phase_mean_ns"] for f in frames)]
    if not phases:
        return []
    rows = [["frame"] + phases]
    for f in frames:
        rows.append([f["frame"]] + [fmt_ms(f["phase_mean_ns"].get(p)) for p in phases])
    return (["", "Mean time per phase of the successful transfers, ms:",
             "copy = host memcpy into shared memory, handoff = post -> RECEIVED,",
             "verify = RECEIVED -> PROCESSED (guest copies out and checks SHA-256),",
             "guest_read / guest_hash = the guest's own timing of those two steps", ""]
            + ["  " + l for l in table(rows)])


def report_overall(o: dict) -> list[str]:
    lines = ["", f"Overall: {o['total']} transfers, {o['successful']} successful "
             f"({100 * o['success_rate']:.1f}%), {o['failed']} failed"]
    if not o["successful"]:
        return lines + ["  no successful transfer: no bandwidth to report"]

    def where(e):
        return f"({e['frame']}, iteration {e['iteration']})"

    rows = [
        ["peak bandwidth", f"{o['peak_gbps']['value']:.3f} GB/s", where(o["peak_gbps"])],
        ["lowest bandwidth", f"{o['lowest_gbps']['value']:.3f} GB/s", where(o["lowest_gbps"])],
        ["average bandwidth", f"{o['average_gbps']:.3f} GB/s",
         "(mean over successful transfers)"],
        ["aggregate bandwidth", f"{o['aggregate_gbps']:.3f} GB/s",
         "(all bytes / all time)"],
        ["fastest transfer", f"{fmt_ms(o['fastest_ns']['value'])} ms", where(o["fastest_ns"])],
        ["slowest transfer", f"{fmt_ms(o['slowest_ns']['value'])} ms", where(o["slowest_ns"])],
    ]
    return lines + ["  " + l for l in table(rows, "lrl")]


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def frame_axis(ax, frames: list[dict]) -> None:
    """x axis with one category per frame size, named with its size in MB."""
    ax.set_xticks(range(len(frames)))
    ax.set_xticklabels([f"{f['frame']}\n{f['bytes'] / 1e6:.1f} MB" for f in frames])
    ax.set_xlim(-0.8, len(frames) - 0.2)


def plot_bandwidth(df: pd.DataFrame, stats: dict, title: str, partial: list[str]):
    plt = pyplot()
    frames = stats["frames"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), constrained_layout=True)
    headline(fig, f"Bandwidth: {title}", partial)
    good = df[df["success"]]
    if len(good):
        panel_distribution(axes[0, 0], good, frames)
        panel_scaling(axes[0, 1], frames)
        panel_duration(axes[1, 0], frames)
    else:
        for ax, t in ((axes[0, 0], "Bandwidth distribution"),
                      (axes[0, 1], "Scaling with frame size"),
                      (axes[1, 0], "Transfer duration")):
            ax.set_title(t)
            no_data(ax)
    panel_success(axes[1, 1], frames)
    return fig


def panel_distribution(ax, good: pd.DataFrame, frames: list[dict]) -> None:
    data = [good.loc[good["frame"] == f["frame"], "bandwidth_gbps"].to_numpy()
            for f in frames]
    pos = [i for i, d in enumerate(data) if d.size]
    ax.boxplot([data[i] for i in pos], positions=pos, widths=0.5, showfliers=False,
               medianprops={"color": "black"})
    rng = np.random.default_rng(0)
    for i in pos:
        ax.scatter(i + rng.uniform(-0.18, 0.18, data[i].size), data[i], s=8,
                   alpha=0.4, color="tab:blue", zorder=3)
    frame_axis(ax, frames)
    ax.set_title("Distribution per frame size (each dot one transfer)")
    ax.set_ylabel("bandwidth (GB/s)")


def panel_scaling(ax, frames: list[dict]) -> None:
    from matplotlib.ticker import FuncFormatter

    shown = [f for f in frames if f["successes"]]
    x = [f["bytes"] / 1e6 for f in shown]
    for key, label, color in (("bandwidth_gbps", "whole exchange (bytes / total)", "tab:blue"),
                              ("transfer_gbps", "host copy only (bytes / copy)", "tab:green")):
        if any(f[key] is None or f[key]["mean"] is None for f in shown):
            continue
        y = [f[key]["mean"] for f in shown]
        err = [f[key]["std"] or 0 for f in shown]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=4, color=color, label=label)
    for f, xi in zip(shown, x):
        ax.annotate(f["frame"], (xi, f["bandwidth_gbps"]["mean"]),
                    textcoords="offset points", xytext=(7, 5), ha="left", fontsize=9)
    values = [f[k]["mean"] for f in shown for k in ("bandwidth_gbps", "transfer_gbps")
              if f.get(k) and f[k]["mean"]]
    if values and max(values) / min(values) > 20:
        # A slow verified exchange next to a fast copy: a linear axis would
        # flatten the exchange line onto zero.
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylabel("bandwidth (GB/s, log scale)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("bandwidth (GB/s)")
    ax.margins(x=0.1, y=0.15)
    ax.set_title("Scaling with frame size (mean ± std)")
    ax.set_xlabel("frame size (MB, 1 MB = 1e6 bytes)")
    ax.legend(loc="best")


def panel_duration(ax, frames: list[dict]) -> None:
    x = np.arange(len(frames))
    phases = [("copy", "host copy", "tab:green"),
              ("handoff", "handoff (to RECEIVED)", "tab:orange"),
              ("verify", "verify (to PROCESSED)", "tab:purple")]
    have_phases = all(all(p in f["phase_mean_ns"] for p, _, _ in phases)
                      for f in frames if f["successes"])
    if have_phases:
        bottom = np.zeros(len(frames))
        for p, label, color in phases:
            h = np.array([f["phase_mean_ns"].get(p, 0) / 1e6 for f in frames])
            ax.bar(x, h, 0.55, bottom=bottom, color=color, label=label)
            bottom += h
    means = np.array([(f["duration_ns"]["mean"] or 0) / 1e6 for f in frames])
    stds = np.array([(f["duration_ns"]["std"] or 0) / 1e6 for f in frames])
    if not have_phases:
        ax.bar(x, means, 0.55, color="tab:blue", label="total")
    ax.errorbar(x, means, yerr=stds, fmt="none", ecolor="black", capsize=5,
                label="total: mean ± std")
    for xi, m, f in zip(x, means, frames):
        if f["successes"]:
            ax.annotate(f"{m:.2f} ms", (xi, m), textcoords="offset points",
                        xytext=(14, 2), fontsize=9)
    frame_axis(ax, frames)
    ax.set_ylim(0, max(means + stds) * 1.25 if len(means) else 1)
    ax.set_title("Transfer duration by phase (mean of successful transfers)")
    ax.set_ylabel("duration (ms)")
    ax.legend(loc="upper left")


def panel_success(ax, frames: list[dict]) -> None:
    x = np.arange(len(frames))
    rates = np.array([100 * f["success_rate"] for f in frames])
    colors = ["tab:green" if r == 100 else "tab:orange" if r > 0 else "tab:red"
              for r in rates]
    ax.bar(x, rates, 0.55, color=colors)
    for xi, r, f, c in zip(x, rates, frames, colors):
        text = f"{f['successes']}/{f['attempts']}"
        if f["errors"]:
            name, count = max(f["errors"].items(), key=lambda e: e[1])
            more = " ..." if len(f["errors"]) > 1 else ""
            text += f"\n{name} x{count}{more}"
        ax.text(xi, r + 2, text, ha="center", va="bottom", fontsize=9,
                color="black" if r else "tab:red")
    frame_axis(ax, frames)
    ax.set_ylim(0, 125)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title("Success rate (verified transfers / attempts)")
    ax.set_ylabel("success rate (%)")


def plots(df: pd.DataFrame, bw: dict, title: str, partial: list[str]) -> list[Plot]:
    return [Plot("bandwidth_analysis.png",
                 "Each frame transfer (copied into shared memory, handed over, copied out and "
                 "checked with SHA-256 by the responder): bandwidth per frame size, its scaling "
                 "with size, the time of each phase, and the share verified.",
                 lambda: plot_bandwidth(df, bw, title, partial))]


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(bw: dict) -> str:
    frames, o = bw["frames"], bw["overall"]
    rows = []
    for f in frames:
        dims = f"{f['width']} × {f['height']}" if f.get("width") and f.get("height") else "-"
        row = page.Row([f["frame"], dims, f"{f['bytes'] / 1e6:.3g}",
                        f"{f['successes']:,} of {f['attempts']:,}",
                        fmt_pm(f["bandwidth_gbps"], fmt_gbps),
                        fmt_range(f["bandwidth_gbps"], fmt_gbps),
                        fmt_pm(f["duration_ns"], fmt_ms), fmt_range(f["duration_ns"], fmt_ms),
                        fmt_pm(f["transfer_gbps"], fmt_gbps) if f["transfer_gbps"] else "-"],
                       "bad" if f["failures"] else "")
        rows.append(row)
    parts = [page.para("Bandwidth = bytes / (copy + handoff + verify): the whole verified "
                       "exchange. Host copy = bytes / copy: the host's write into shared "
                       "memory. GB/s = 10^9 bytes/s."),
             page.table(["frame", "pixels", "size (MB)", "verified (transfers)",
                         "bandwidth mean ± std (GB/s)", "bandwidth range (GB/s)",
                         "duration mean ± std (ms)", "duration range (ms)",
                         "host copy mean ± std (GB/s)"], rows, "lrrrrrrrr")]
    phases = [p for p in ("copy", "handoff", "verify", "guest_read", "guest_hash")
              if any(p in f["phase_mean_ns"] for f in frames)]
    if phases:
        parts += [page.tag("h3", "Mean time per phase of the verified transfers"),
                  page.table(["frame"] + [f"{p.replace('_', ' ')} (ms)" for p in phases],
                             [[f["frame"]] + [fmt_ms(f["phase_mean_ns"].get(p)) for p in phases]
                              for f in frames]),
                  page.para("copy: the host's memcpy into shared memory; handoff: post to "
                            "RECEIVED; verify: RECEIVED to PROCESSED (the responder copies "
                            "the frame out and checks its SHA-256); guest read and hash: the "
                            "responder's own timing of those two steps.", "note")]
    errors = [f"{f['frame']}: " + ", ".join(f"{n} ×{c}" for n, c in f["errors"].items())
              for f in frames if f["errors"]]
    if errors:
        parts += [page.tag("h3", "Failures by error"), page.items(errors)]
    summary = [("transfers", f"{o['total']:,}, {o['successful']:,} verified "
                             f"({100 * o['success_rate']:.1f} %), {o['failed']:,} failed")]
    if o["successful"]:
        def where(e):
            return f"({e['frame']}, iteration {e['iteration']})"

        summary += [
            ("peak bandwidth", f"{o['peak_gbps']['value']:.3f} GB/s {where(o['peak_gbps'])}"),
            ("lowest bandwidth",
             f"{o['lowest_gbps']['value']:.3f} GB/s {where(o['lowest_gbps'])}"),
            ("average bandwidth", f"{o['average_gbps']:.3f} GB/s (mean over verified "
                                  "transfers)"),
            ("aggregate bandwidth", f"{o['aggregate_gbps']:.3f} GB/s (all bytes / all time)"),
            ("fastest transfer", f"{fmt_ms(o['fastest_ns']['value'])} ms "
                                 f"{where(o['fastest_ns'])}"),
            ("slowest transfer", f"{fmt_ms(o['slowest_ns']['value'])} ms "
                                 f"{where(o['slowest_ns'])}"),
        ]
    parts += [page.tag("h3", "Overall"), page.pairs(summary)]
    return page.join(*parts)


def headline_facts(bw: dict) -> list[Fact]:
    o = bw["overall"]
    found = [Fact("frames verified", f"{o['successful']:,}", f"of {o['total']:,}",
                  o["successful"], "bandwidth.overall.successful",
                  f"{o['failed']:,} failed" if o["failed"] else "each checked with SHA-256")]
    if o["peak_gbps"]:
        peak = o["peak_gbps"]
        found.append(Fact("frame bandwidth, peak", f"{peak['value']:.3f}", "GB/s", peak["value"],
                          "bandwidth.overall.peak_gbps.value",
                          f"{peak['frame']}, the whole verified exchange"))
    return found


def warnings(bw: dict) -> list[str]:
    o = bw["overall"]
    if not o["failed"]:
        return []
    names = ", ".join(f"{f['frame']}: " + ", ".join(f"{n} ×{c}" for n, c in f["errors"].items())
                      for f in bw["frames"] if f["errors"])
    return [f"{o['failed']:,} of {o['total']:,} frame transfers failed ({names})"]


def failures(directory: Path, bw: dict) -> list[str]:
    """Every transfer failed: no bandwidth to show, and the exit status is 1."""
    o = bw["overall"]
    if o["successful"] == 0:
        return [f"{directory / BANDWIDTH.file}: every frame transfer failed "
                f"(0/{o['total']} successful), no bandwidth to show"]
    return []


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


def compare(summaries: list[dict], add) -> None:
    frames = {}
    for s in summaries:
        for f in (s["bandwidth"] or {"frames": []})["frames"]:
            frames.setdefault(f["frame"], f["bytes"])
    for frame in sorted(frames, key=lambda f: (frames[f], f)):
        per = [next((f for f in (s["bandwidth"] or {"frames": []})["frames"]
                     if f["frame"] == frame), None) for s in summaries]
        add(f"bandwidth {frame} mean", "GB/s", "higher",
            [f["bandwidth_gbps"]["mean"] if f else None for f in per])
        add(f"host copy {frame} mean", "GB/s", "higher",
            [f["transfer_gbps"]["mean"] if f and f["transfer_gbps"] else None for f in per])
        add(f"duration {frame} mean", "ns", "lower",
            [f["duration_ns"]["mean"] if f else None for f in per])
        add(f"success {frame}", "%", "higher",
            [100 * f["success_rate"] if f else None for f in per])

    def overall(s, key):
        o = (s["bandwidth"] or {}).get("overall")
        if not o or o.get(key) is None:
            return None
        return o[key]["value"] if isinstance(o[key], dict) else o[key]

    add("bandwidth peak", "GB/s", "higher", [overall(s, "peak_gbps") for s in summaries])
    add("bandwidth average", "GB/s", "higher", [overall(s, "average_gbps") for s in summaries])


def metric_text(m: dict, value, _lat_unit) -> str:
    if m["metric"].startswith("duration"):
        return f"{value / 1e6:,.3f}"
    return f"{value:.1f}" if m["unit"] == "%" else f"{value:.3f}"


def metric_unit(m: dict, _lat_unit) -> str:
    return "ms" if m["metric"].startswith("duration") else m["unit"]


def headline_figure(name: str) -> bool:
    """Each frame size's mean verified bandwidth."""
    return name.startswith("bandwidth ") and name.endswith(" mean")


KIND = Kind(
    name="frames", key="bandwidth", title="Frames",
    files=((BANDWIDTH, load_bandwidth),),
    summarize=lambda df, _run: bandwidth_stats(df), text=report_bandwidth, html=html,
    plots=plots, headline=headline_facts, warnings=warnings, failures=failures,
    compare=compare, metric_text=metric_text, metric_unit=metric_unit,
    headline_figure=headline_figure,
)
