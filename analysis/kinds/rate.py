"""
rate - latency under load (rate_results.csv, one row per offered rate and
interference set; rate_histograms.csv, each such point's latency histogram):
an open-loop sender offers messages at a rate whether or not the last was
answered, and each is timed from its scheduled send, so a stall shows in
every message queued behind it. Per interference set the knee (the highest
rate sustained below the two rates in a row not sustained where the sweep
stops, as workloads/rate.c's rate_rule() finds it; a lone point not
sustained below it does not lower it), each point's ratios to the quiet
point of the same rate,
and each point's percentile spectrum to p99.999 from its histogram, which
must agree with its row (within hist.h's 1/256).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import counters, page
from analysis.errors import DataError
from analysis.kind import Fact, Flagged, Kind
from analysis.plots import (PERCENTILE_STYLE, SET_COLORS, BAD_LABEL, Plot, compare_headline,
                            headline, legend, panel_grid, plain_log_ticks, comma_ticks, positive,
                            pyplot, run_style)
from analysis.stats import keyed, ratio, records
from analysis.tables import (AGREE, COUNT, NON_NEGATIVE, OFFERED, RATE_MAX_SIZE,
                             RATE_MIN_SIZE, TEXT, Column, Loaded, Schema, Table, check_distribution,
                             check_unique, first_bad, fmt_number, impossible, one_of, read_table,
                             row_frame, shown)
from analysis.units import (fmt_sig, fmt_time, nice, pick_unit, ratio_mark, ratio_text,
                            row_time_unit, settings_line, table)

# ("none" is the quiet run), figures computed by host_writer over every
# measured message (or, past its sample limit, from the histogram).
RATE_TIMES = ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns",
              "max_ns")
RATE_ARRIVALS = ("constant", "poisson", "closed")
RATE_PERCENTILES = ("exact", "histogram")
CORUNNERS = ("cpu", "membw", "cache")   # host_writer --interference, in its order
QUIET = "none"                          # the interference set of the quiet run
RATE = Schema("rate", "rate_results.csv", dict(
    interference=Column(numeric=False, required=True),
    arrivals=TEXT,
    offered_per_s=OFFERED,
    achieved_per_s=Column(required=True),
    message_bytes=Column(integer=True, minimum=RATE_MIN_SIZE, maximum=RATE_MAX_SIZE,
                         why="--rate-size"),
    verify=TEXT,
    wait=TEXT,
    duration_s=NON_NEGATIVE,
    messages=Column(required=True, integer=True),
    sent=Column(required=True, integer=True),
    received=Column(required=True, integer=True),
    unsent=Column(required=True, integer=True),
    late=Column(required=True, integer=True),
    sender_lag_p99_ns=NON_NEGATIVE,
    sender_lag_max_ns=NON_NEGATIVE,
    percentiles=Column(numeric=False, required=True),
    **{name: Column(required=True) for name in RATE_TIMES},
    errors=Column(required=True, integer=True),
    p99_bound_ns=COUNT,
    sustained=Column(required=True, integer=True, maximum=1, why="a yes or no"),
    p50_ratio=NON_NEGATIVE,
    p99_ratio=NON_NEGATIVE,
    p999_ratio=NON_NEGATIVE,
    **counters.COLUMNS,  # what the kernel counted over the point (analysis/counters.py)
))

# Each rate point's latency histogram (common/hist.h): one row per non-empty
# bucket, in bucket order, keyed by the point's interference and rate.
HIST_SUB_BITS = 7                        # 2^7 linear buckets per octave
HIST_MAX_NS = (1 << 37) - 1              # the largest value binned exactly
HIST_REL_ERROR = 1 / 256                 # a percentile's stated error bound
RATE_HIST = Schema("rate", "rate_histograms.csv", dict(
    interference=Column(numeric=False, required=True),
    offered_per_s=OFFERED,
    bucket_low_ns=Column(required=True, integer=True, maximum=HIST_MAX_NS,
                         why="hist.h IVB_HIST_MAX_NS"),
    bucket_high_ns=Column(required=True, integer=True, maximum=HIST_MAX_NS,
                          why="hist.h IVB_HIST_MAX_NS"),
    count=Column(required=True, integer=True, minimum=1),
    cumulative_count=Column(required=True, integer=True, minimum=1),
    percentile=Column(required=True, maximum=100, why="a percentile"),
))
RATE_CSV, RATE_HIST_CSV = RATE.file, RATE_HIST.file


@dataclass
class RateData:
    """The rate rows and the histogram of each point that fits its row."""

    frame: pd.DataFrame
    hists: dict            # point_name -> its checked Histogram


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def interference_problem(name: str) -> str | None:
    """Why name is not an interference set host_writer writes ("none", or
    co-runners joined by '+', each at most once), or None."""
    parts = name.split("+")
    if name == QUIET or (all(p in CORUNNERS for p in parts) and len(set(parts)) == len(parts)):
        return None
    return (f"expected {QUIET} or co-runners ({one_of(CORUNNERS)}) joined by '+', "
            f"got {shown(name)}")


def check_interference(table: Table) -> None:
    names = table.columns["interference"]
    first_bad(table, "interference",
              np.array([interference_problem(n) is not None for n in names], dtype=bool),
              lambda v: interference_problem(v) or "")


def point_name(interference: str, offered: float) -> str:
    """'10,000/s cpu': a rate point as the report and the errors name it."""
    return f"{int(offered):,}/s {interference}"


def load_rate(path: Path) -> Loaded:
    """Load rate_results.csv, one row per offered rate and interference set.
    Its figures must read as a distribution's, its counts must add up (sent
    <= messages, received <= sent, unsent = messages - sent), and each rate
    and set appears once."""
    table = read_table(path, RATE.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    check_interference(table)
    for name, allowed in (("arrivals", RATE_ARRIVALS), ("percentiles", RATE_PERCENTILES)):
        if name in cols:
            first_bad(table, name, ~np.isin(cols[name], allowed),
                      lambda v, allowed=allowed: f"expected {one_of(allowed)}, got {shown(v)}")
    check_distribution(table, ("min_ns",) + RATE_TIMES[2:])
    first_bad(table, "sent", cols["sent"] > cols["messages"],
              lambda i: f"{fmt_number(cols['sent'][i])} is more than messages "
                        f"({fmt_number(cols['messages'][i])}), the messages scheduled",
              by_row=True)
    first_bad(table, "received", cols["received"] > cols["sent"],
              lambda i: f"{fmt_number(cols['received'][i])} is more than sent "
                        f"({fmt_number(cols['sent'][i])})", by_row=True)
    first_bad(table, "unsent", cols["unsent"] != cols["messages"] - cols["sent"],
              lambda i: f"{fmt_number(cols['unsent'][i])} is not messages - sent "
                        f"({fmt_number(cols['messages'][i] - cols['sent'][i])})", by_row=True)
    check_rate_rows(table)
    keys = np.array([point_name(n, r) for n, r in zip(cols["interference"],
                                                      cols["offered_per_s"])], dtype=object)
    check_unique(table, keys, "point")
    df = row_frame(table)
    for name, column in RATE.columns.items():
        if column.integer and name in df and not df[name].isna().any():
            df[name] = df[name].astype(np.int64)
    return Loaded(path, df, table.rows, table.cut)


def check_rate_rows(table: Table) -> None:
    """Each point's figures as rate.c computes them from one another (within
    the rounding of what it prints, and AGREE): late <= sent (only measured
    sends are counted late); the sender lag's p99 <= its max; messages =
    offered_per_s x duration_s (llround of the schedule); nothing achieved
    without a message received; and, with constant or closed arrivals,
    achieved_per_s <= offered_per_s x received / messages (the rate is
    taken over at least the planned schedule)."""
    cols = table.columns
    offered, received, messages = cols["offered_per_s"], cols["received"], cols["messages"]
    achieved = cols["achieved_per_s"]
    with np.errstate(invalid="ignore"):
        impossible(table, "late", cols["late"] > cols["sent"],
                   lambda i: f"{fmt_number(cols['late'][i])} is more than sent "
                             f"({fmt_number(cols['sent'][i])})")
        if "sender_lag_p99_ns" in cols and "sender_lag_max_ns" in cols:
            p99, top = cols["sender_lag_p99_ns"], cols["sender_lag_max_ns"]
            impossible(table, "sender_lag_p99_ns", p99 > top,
                       lambda i: f"{fmt_number(p99[i])} is above sender_lag_max_ns "
                                 f"({fmt_number(top[i])})")
        if "duration_s" in cols:
            # duration_s is printed to 1 ms: messages within offered x 0.5 ms.
            planned = offered * cols["duration_s"]
            impossible(table, "messages",
                       np.abs(messages - planned) > 5e-4 * offered + 0.5 + AGREE * planned,
                       lambda i: f"{fmt_number(messages[i])} is not offered_per_s x "
                                 f"duration_s ({fmt_number(planned[i])})")
        impossible(table, "achieved_per_s", (received == 0) & (achieved > 0),
                   lambda i: f"{fmt_number(achieved[i])} with no message received")
        if "arrivals" in cols:
            paced = np.isin(cols["arrivals"], ("constant", "closed")) & (messages > 0)
            most = offered * received * (1 + AGREE) + 0.05 * messages
            impossible(table, "achieved_per_s", paced & (achieved * messages > most),
                       lambda i: f"{fmt_number(achieved[i])} is more than offered_per_s x "
                                 f"received / messages "
                                 f"({offered[i] * received[i] / messages[i]:.1f})")
    counters.check_counters(table, received, "received", counted_span(table),
                            "the point's schedule and its longest latency")


def counted_span(table: Table) -> np.ndarray:
    """The longest the counters' interval of each rate point can last, in
    seconds. It runs from the point's first measured send to its last
    echo, which comes at most max_ns after that message's scheduled time
    (latencies are timed from the schedule, however late the send): so the
    measured schedule (duration_s, to the 1 ms it is printed with, and 5 %;
    Poisson gaps add up to it only on average: 5 standard deviations more,
    1 / sqrt(messages) of it), then max_ns, then the counters' reading."""
    cols = table.columns
    messages = np.maximum(cols["messages"], 1)
    poisson = cols["arrivals"] == "poisson" if "arrivals" in cols else True
    room = 1.05 + np.where(poisson, 5 / np.sqrt(messages), 0)
    duration = cols["duration_s"] if "duration_s" in cols else messages / cols["offered_per_s"]
    return (duration + 5e-4) * room + cols["max_ns"] / 1e9 + counters.SLACK_S


def bucket_width(low: np.ndarray) -> np.ndarray:
    """Width in ns of the hist.h bucket that starts at each value of low: 1
    below 128 ns, then 1/128 of the octave [2^e, 2^(e+1)) it is in."""
    _, exponent = np.frexp(np.maximum(low, 1))  # low = m * 2^exponent, m in [0.5, 1)
    return np.where(low < 1 << HIST_SUB_BITS, 1.0,
                    np.ldexp(1.0, np.maximum(exponent - 1 - HIST_SUB_BITS, 0)))


def load_rate_hist(path: Path) -> Loaded:
    """Load rate_histograms.csv, checking each point's histogram as hist.h
    writes it: its rows together, in ascending order, each a bucket that
    exists, and the running count adding up. (The percentile column is
    checked against the point's row, which gives the total: a file cut
    short ends with a histogram short of its total.)"""
    table = read_table(path, RATE_HIST.columns)
    if table.rows == 0:
        return Loaded(path, None, 0, table.cut)
    cols = table.columns
    check_interference(table)
    low, high, count = cols["bucket_low_ns"], cols["bucket_high_ns"], cols["count"]
    width = bucket_width(low)
    first_bad(table, "bucket_low_ns", low % width != 0,
              lambda v: f"{fmt_number(v)} does not start a histogram bucket (hist.h: 1 ns "
                        "wide below 128 ns, then 128 buckets to an octave)")
    first_bad(table, "bucket_high_ns", high != low + width - 1,
              lambda i: f"{fmt_number(high[i])} does not end the bucket starting at "
                        f"{fmt_number(low[i])} (it ends at {fmt_number(low[i] + width[i] - 1)})",
              by_row=True)
    keys = np.array([point_name(n, r) for n, r in zip(cols["interference"],
                                                      cols["offered_per_s"])], dtype=object)
    start = np.ones(table.rows, dtype=bool)
    start[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(start)
    seen: dict[str, int] = {}
    for i in starts:
        if keys[i] in seen:
            raise DataError(f"{path}: line {table.line(i)}: the histogram of {keys[i]} "
                            f"goes on here after other rows (it began on line "
                            f"{table.line(seen[keys[i]])}): not one point's rows together")
        seen[keys[i]] = i
    first_bad(table, "bucket_low_ns", ~start & (low <= np.roll(high, 1)),
              lambda i: f"{fmt_number(low[i])} is not above the bucket before it (which "
                        f"ends at {fmt_number(high[i - 1])}): buckets repeated or out of "
                        "order", by_row=True)
    group = np.cumsum(start) - 1
    running = np.cumsum(count)
    before = np.concatenate(([0.0], running))[starts]  # counted before each histogram
    running -= before[group]
    cumulative = cols["cumulative_count"]
    first_bad(table, "cumulative_count", cumulative != running,
              lambda i: f"{fmt_number(cumulative[i])}, the counts so far add up to "
                        f"{fmt_number(running[i])}", by_row=True)
    df = row_frame(table)
    df["point"] = keys
    return Loaded(path, df, table.rows, table.cut)


@dataclass
class Histogram:
    """One rate point's latency histogram, as rate_histograms.csv gives it."""

    low: np.ndarray         # each non-empty bucket's lowest value, ns
    high: np.ndarray        # and its highest
    running: np.ndarray     # latencies counted up to the end of each bucket
    percentile: np.ndarray  # the percentile reached there, as written
    line: np.ndarray        # the line of each bucket in the file

    @property
    def total(self) -> int:
        return int(self.running[-1])

    @property
    def lines(self) -> tuple[int, int]:
        """Its first and last line."""
        return int(self.line[0]), int(self.line[-1])


def hist_percentiles(h: Histogram, low_ns: float, high_ns: float, ps) -> np.ndarray:
    """Percentiles ps (0..100) of a histogram as hist.h computes them: numpy's
    'linear' definition over the order statistics, each taken as its
    bucket's midpoint clamped to [low_ns, high_ns], the exact min and max;
    p 0 is the min and p 100 the max."""
    ps = np.asarray(ps, dtype=float)
    middle = np.clip((h.low + h.high) / 2, low_ns, high_ns)
    rank = ps / 100 * (h.total - 1)
    lo = np.floor(rank)
    a = middle[np.searchsorted(h.running, lo, side="right")]
    b = middle[np.minimum(np.searchsorted(h.running, lo + 1, side="right"), middle.size - 1)]
    b = np.where(lo + 1 >= h.total, a, b)
    values = a + (rank - lo) * (b - a)
    return np.where(ps <= 0, low_ns, np.where(ps >= 100, high_ns, values))


ROW_PERCENTILES = ((50, "p50_ns"), (90, "p90_ns"), (99, "p99_ns"), (99.9, "p999_ns"),
                   (99.99, "p9999_ns"))


def histogram_problem(h: Histogram, row) -> str | None:
    """What makes h not the histogram of the rate row, or None: another
    number of latencies, a percentile column that is not 100 * running /
    that number, a min or max outside its first or last bucket, or
    percentiles further from the row's than hist.h's bound (1/256 of the
    value, plus the row's rounding to 0.1 ns)."""
    if h.total != row.received:
        return (f"holds {h.total:,} latencies, its row {int(row.received):,} messages "
                "received")
    reached = 100 * h.running / h.total
    off = np.flatnonzero(np.abs(h.percentile - reached) > 1e-5)
    if off.size:
        i = off[0]
        return (f"has percentile {fmt_number(h.percentile[i])} on line {h.line[i]}, expected "
                f"{reached[i]:.6f} (100 * cumulative_count / its total)")
    if not h.low[0] <= row.min_ns <= h.high[0]:
        return (f"starts with the bucket {fmt_number(h.low[0])}-{fmt_number(h.high[0])} ns, "
                f"which does not hold its row's min_ns ({fmt_number(row.min_ns)})")
    top = HIST_MAX_NS if row.max_ns > HIST_MAX_NS else row.max_ns  # larger: the last bucket
    if not h.low[-1] <= top <= h.high[-1]:
        return (f"ends with the bucket {fmt_number(h.low[-1])}-{fmt_number(h.high[-1])} ns, "
                f"which does not hold its row's max_ns ({fmt_number(row.max_ns)})")
    ours = hist_percentiles(h, row.min_ns, row.max_ns, [p for p, _ in ROW_PERCENTILES])
    for (p, column), value in zip(ROW_PERCENTILES, ours):
        written = getattr(row, column)
        if abs(value - written) > written * HIST_REL_ERROR * (1 + 1e-9) + 0.1:
            return (f"gives p{p:g} {value:,.1f} ns, its row {written:,.1f} ns: further "
                    "apart than the histogram's error bound (1/256)")
    return None


def rate_histograms(rates: Loaded, hists: Loaded | None) -> tuple[dict, list[str]]:
    """Each rate point's histogram, by point_name, checked against its row
    in rate_results.csv (histogram_problem); and the problems found: a row
    with messages received and no histogram, a histogram without a row, a
    histogram that does not fit its row. Points with a problem are left
    out of the result."""
    groups = {} if hists is None or hists.frame is None else \
        {name: g for name, g in hists.frame.groupby("point", sort=False)}
    found, problems, rows = {}, [], set()
    for row in rates.frame.itertuples(index=False):
        name = point_name(row.interference, row.offered_per_s)
        rows.add(name)
        g = groups.get(name)
        if g is None:
            if row.received > 0:
                problems.append(f"{rates.path}: line {row.line}: {name} received "
                                f"{int(row.received):,} messages, but {RATE_HIST_CSV} has no "
                                "histogram of them")
            continue
        h = Histogram(g["bucket_low_ns"].to_numpy(float), g["bucket_high_ns"].to_numpy(float),
                      g["cumulative_count"].to_numpy(float), g["percentile"].to_numpy(float),
                      g["line"].to_numpy())
        problem = histogram_problem(h, row)
        if problem:
            problems.append(f"{hists.path}: lines {h.lines[0]}-{h.lines[1]}: the histogram of "
                            f"{name} {problem} ({RATE_CSV} line {row.line})")
        else:
            found[name] = h
    for name, g in groups.items():
        if name not in rows:
            problems.append(f"{hists.path}: line {int(g['line'].iloc[0])}: a histogram of "
                            f"{name}, which has no row in {RATE_CSV}")
    return found, problems


def set_order(df: pd.DataFrame) -> list[str]:
    """The interference sets of the rate rows: the quiet one first, then the
    others as they first appear (host_writer's order)."""
    names = list(dict.fromkeys(df["interference"]))
    return sorted(names, key=lambda n: n != QUIET)


RATE_STOP_AFTER = 2  # workloads/rate.c: rates in a row not sustained that end a sweep


@dataclass
class Knee:
    """What rate.c's rate_rule() makes of one interference set's rows."""

    knee: int            # the highest rate sustained below where the sweep stopped; 0: none
    stopped: bool        # it stopped on stop_after rates in a row not sustained
    above: list          # the rows not sustained above the knee (that run, or the last row)
    lone: list           # the rows not sustained below the knee, which do not lower it


def stop_after(info: dict | None) -> int:
    """How many rates in a row not sustained end a sweep: run.json's
    rate.stop_after_consecutive, else rate.c's RATE_STOP_AFTER."""
    rate = (info or {}).get("rate")
    n = rate.get("stop_after_consecutive") if isinstance(rate, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 64 \
        else RATE_STOP_AFTER


def knee_rule(rows: list, after: int) -> Knee:
    """rate.c's rate_rule() on one set's rows (rates rising): the sweep
    stops at the first `after` rows in a row not sustained; the knee is the
    highest rate sustained before that run (before the end, when it did
    not stop on one: it reached --sweep-to, ran out of rates, the quiet
    sweep stopped, or a single --rate); a row not sustained below the knee
    is a lone point that does not lower it. (A writer that stopped at the
    first rate not sustained, as host_writer did before the rule, gives the
    same knee: its rows never go on past one.)"""
    run, end, stopped = 0, len(rows), False
    for i, row in enumerate(rows):
        run = 0 if row.sustained else run + 1
        if run == after:
            end, stopped = i + 1 - after, True
            break
    knee = max((int(r.offered_per_s) for r in rows[:end] if r.sustained), default=0)
    upto = end + after if stopped else len(rows)
    return Knee(knee, stopped,
                [r for r in rows[:upto] if not r.sustained and r.offered_per_s > knee],
                [r for r in rows[:end] if not r.sustained and r.offered_per_s < knee])


def knees_from_rows(df: pd.DataFrame, after: int = RATE_STOP_AFTER) -> dict[str, Knee]:
    """Each interference set's knee as host_writer finds it (knee_rule())."""
    return {name: knee_rule(list(df[df["interference"] == name].sort_values(
        "offered_per_s", kind="stable").itertuples(index=False)), after)
        for name in set_order(df)}


def check_knees(path: Path, info: dict, df: pd.DataFrame) -> None:
    """run.json's rate.knee_per_s against the rows: the same knee for each
    interference set, and no set on one side only; and, when run.json lists
    them, the same lone rates not sustained below each knee
    (rate.not_sustained_below_knee). DataError otherwise."""
    rate = info.get("rate")
    if rate is None:
        return
    if not isinstance(rate, dict):
        raise DataError(f"{path}: rate: expected an object (the rate workload's settings)")
    recorded = rate.get("knee_per_s")
    if recorded is None:
        return
    if not isinstance(recorded, dict) or any(
            isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in recorded.values()):
        raise DataError(f"{path}: rate.knee_per_s: expected an object of interference set "
                        "to messages/s")
    found = knees_from_rows(df, stop_after(info))
    rows = {name: k.knee for name, k in found.items()}
    for name in list(dict.fromkeys(list(recorded) + list(rows))):
        if name not in rows:
            raise DataError(f"{path}: rate.knee_per_s has {shown(name)}, which has no row "
                            f"in {RATE_CSV}")
        if name not in recorded:
            raise DataError(f"{path}: rate.knee_per_s lacks {name}, which has rows in "
                            f"{RATE_CSV}")
        if recorded[name] != rows[name]:
            raise DataError(f"{path}: rate.knee_per_s.{name} is {recorded[name]:,}, but the "
                            f"rows of {RATE_CSV} put it at {rows[name]:,} messages/s "
                            f"({knee_rule_text(stop_after(info))})")
    lone = rate.get("not_sustained_below_knee")
    if lone is None:
        return
    if not isinstance(lone, dict) or any(
            not isinstance(v, list) or any(isinstance(r, bool) or not isinstance(r, int)
                                           for r in v) for v in lone.values()):
        raise DataError(f"{path}: rate.not_sustained_below_knee: expected an object of "
                        "interference set to a list of messages/s")
    for name, rates in lone.items():
        mine = [int(r.offered_per_s) for r in found[name].lone] if name in found else None
        if mine is None:
            raise DataError(f"{path}: rate.not_sustained_below_knee has {shown(name)}, which "
                            f"has no row in {RATE_CSV}")
        if sorted(rates) != mine:
            raise DataError(f"{path}: rate.not_sustained_below_knee.{name} is "
                            f"{rates_text(sorted(rates))}, but the rows of {RATE_CSV} have "
                            f"{rates_text(mine)} not sustained below the knee")


def rates_text(rates: list[int]) -> str:
    """'[5,000/s, 20,000/s]' for a message, '[]' for none."""
    return "[" + ", ".join(f"{r:,}/s" for r in rates) + "]"


def knee_rule_text(after: int) -> str:
    """The rule the knees are checked by, briefly."""
    return (f"the highest rate sustained below the first {after} rates in a row not "
            "sustained" if after > 1 else "the last rate sustained before the first not")


def assemble(run, loaded: dict, prov, info_path: Path) -> RateData | None:
    """The rate rows and their histograms, together: the histogram of each
    point that fits its row, and run.json's knees must be the rows' (for a
    complete run whose files it lists). A mismatch is an error, except in
    partial results, where the point's spectrum is left out with a note
    (the histogram file may stop short of its rows)."""
    rates, hists = loaded.get(RATE_CSV), loaded.get(RATE_HIST_CSV)
    if rates is None or rates.frame is None:
        if hists is not None and hists.frame is not None:
            if not run.partial:
                raise DataError(f"{hists.path}: histograms without the rows of {RATE_CSV} "
                                "they belong to")
            run.notes.append(f"{RATE_HIST_CSV} left out: no rows of {RATE_CSV} to tie its "
                             "histograms to")
        return None
    found, problems = rate_histograms(rates, hists)
    if problems and not run.partial:
        raise DataError(problems[0])
    for problem in problems:
        run.notes.append(f"percentile spectrum left out: {problem}")
    if not run.partial and prov.status == "complete" and RATE_CSV in (prov.files or {}):
        check_knees(info_path, run.info, rates.frame)
    return RateData(rates.frame, found)


def absent_notes(data: RateData, absent: list[str]) -> list[str]:
    """The histograms not found beside the rows: no spectrum."""
    if RATE_HIST_CSV not in absent:
        return []
    absent.remove(RATE_HIST_CSV)
    return [f"{RATE_HIST_CSV} not found: the percentile spectrum of the rate points (to "
            "p99.999) is skipped"]


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


SPECTRUM = ((50, "p50_ns", "p50"), (90, "p90_ns", "p90"), (99, "p99_ns", "p99"),
            (99.9, "p99_9_ns", "p99.9"), (99.99, "p99_99_ns", "p99.99"),
            (99.999, "p99_999_ns", "p99.999"))
# The rate row's figures that get a ratio to the quiet row of the same rate.
RATE_RATIOS = (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"),
               ("p99.99", "p99_99_ns"), ("max", "max_ns"))
RATE_RENAME = {"p999_ns": "p99_9_ns", "p9999_ns": "p99_99_ns", "p999_ratio": "p99_9_ratio"}


def resolved(samples: int, percentile: float) -> bool:
    """True when samples reach percentile: at least 1 / (1 - p) of them, so
    it is not just the top few interpolated (p99.9 needs 1,000)."""
    return samples * (1 - percentile / 100) >= 1 - 1e-9


def spectrum(h: Histogram, point: dict) -> dict:
    """A point's percentiles from p50 to p99.999 and its max, from its
    histogram; the highest one its samples resolve."""
    values = hist_percentiles(h, point["min_ns"], point["max_ns"], [p for p, _, _ in SPECTRUM])
    out = {"samples": h.total, "lines": list(h.lines)}
    out.update({key: float(v) for (_, key, _), v in zip(SPECTRUM, values)})
    out["max_ns"] = point["max_ns"]
    reached = [label for p, _, label in SPECTRUM if resolved(h.total, p)]
    out["resolved_to"] = reached[-1] if reached else None
    return out


def why_not_sustained(row, fraction: float) -> str:
    """Why host_writer marked a rate point not sustained, from its row."""
    reasons = []
    if row.achieved_per_s < fraction * row.offered_per_s:
        reasons.append(f"achieved {100 * row.achieved_per_s / row.offered_per_s:.1f} % of "
                       f"offered (below {100 * fraction:g} %)")
    bound = getattr(row, "p99_bound_ns", None)
    if bound is not None and not math.isnan(bound) and row.p99_ns > bound:
        reasons.append(f"p99 {row.p99_ns / 1e3:,.1f} us above the bound "
                       f"{bound / 1e3:,.1f} us")
    return "; ".join(reasons) or "marked not sustained by host_writer"


def stopped_point(row, fraction: float) -> dict:
    """A row not sustained as the knee's entry names it."""
    return {"offered_per_s": int(row.offered_per_s), "achieved_per_s": float(row.achieved_per_s),
            "p99_ns": float(row.p99_ns), "line": int(row.line),
            "why": why_not_sustained(row, fraction)}


# run.json's rate fields that only host_writer's two-in-a-row rule writes.
RULE_FIELDS = ("stop_after_consecutive", "stop_reason", "not_sustained_below_knee", "quiet_run")


def bound_used(info: dict) -> dict | None:
    """The p99 bound as run.json gives it (rate.c's rate_json): its value,
    where it came from ('given', or 10x the quiet p99.9), and the quiet run
    it came from; None without a p99_bound_ns."""
    ns = info.get("p99_bound_ns")
    if isinstance(ns, bool) or not isinstance(ns, int) or ns < 0:
        return None
    source = info.get("p99_bound_source")
    quiet = info.get("quiet_run")
    figures = ("offered_per_s", "duration_ns", "p50_ns", "p99_ns", "p99_9_ns")
    if not isinstance(quiet, dict) or any(
            isinstance(quiet.get(k), bool) or not isinstance(quiet.get(k), (int, float))
            or not math.isfinite(quiet[k]) or quiet[k] < 0 for k in figures):
        quiet = None
    return {"ns": ns, "source": source if isinstance(source, str) else None,
            "quiet_run": {k: quiet[k] for k in figures} if quiet else None}


def rate_stats(data: RateData, run) -> dict:
    """The rate points as written, by rate and then interference set (the
    quiet one first), each with its ratios to the quiet point of the same
    rate and its percentile spectrum; and each set's knee, from the rows
    by host_writer's rule (checked against run.json's when the run
    completed), with run.json's stop reason and p99 bound when it gives
    them. A run.json of a host_writer before the two-in-a-row rule, whose
    rows the old rule explains as well, gets the entry it always had."""
    df = data.frame
    sets = set_order(df)
    rows = df.assign(_set=df["interference"].map(sets.index)).sort_values(
        ["offered_per_s", "_set"], kind="stable")
    points = records(rows, RATE, RATE_RENAME)
    info = (run.info or {}).get("rate")
    info = info if isinstance(info, dict) else {}
    fraction = info.get("sustained_fraction", 0.99)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 < fraction <= 1:
        fraction = 0.99  # host_writer's RATE_SUSTAINED
    after = stop_after(run.info)
    found = knees_from_rows(df, after)
    reasons = info.get("stop_reason")
    reasons = reasons if isinstance(reasons, dict) else {}
    rule = any(k in info for k in RULE_FIELDS) or any(k.stopped or k.lone
                                                       for k in found.values())
    knees = {}
    for name, k in found.items():
        mine = [p["offered_per_s"] for p in points if p["interference"] == name]
        knees[name] = {
            "knee_per_s": k.knee,
            "highest_measured_per_s": max(mine),
            "first_not_sustained": stopped_point(k.above[0], fraction) if k.above else None,
        }
        if rule:
            reason = reasons.get(name)
            knees[name].update({
                "stopped_on_consecutive": k.stopped,
                "not_sustained_above_knee": [stopped_point(r, fraction) for r in k.above],
                "not_sustained_below_knee": [stopped_point(r, fraction) for r in k.lone],
                "stop_reason": reason[:400] if isinstance(reason, str) else None,
            })
    quiet = {p["offered_per_s"]: p for p in points if p["interference"] == QUIET}
    for p in points:
        p["point"] = point_name(p["interference"], p["offered_per_s"])
        p["sustained"] = bool(p["sustained"])
        p["at_knee"] = knees[p["interference"]]["knee_per_s"] == p["offered_per_s"]
        base = quiet.get(p["offered_per_s"])
        p["ratio_to_quiet"] = None if p["interference"] == QUIET or base is None else \
            {label: ratio(p[key], base[key]) for label, key in RATE_RATIOS}
        h = data.hists.get(p["point"])
        p["spectrum"] = spectrum(h, p) if h is not None else None
    counters.drop_absent(points, df)
    bad = [p for p in points if p["errors"]]
    criterion = f"achieved >= {100 * fraction:g} % of offered and p99 <= the bound"
    entry = {
        "sets": sets,
        "rates": sorted({p["offered_per_s"] for p in points}),
        "points": points,
        "knee_per_s": {name: k["knee_per_s"] for name, k in knees.items()},
        "knees": knees,
        "knee_rule": f"the highest rate sustained ({criterion}), going up from the first "
                     "rate; 0: not even the first",
        "sweep_to_per_s": info.get("sweep_to") if info.get("mode") == "sweep" else None,
        "bad_points": len(bad),
        "errors": int(sum(p["errors"] for p in bad)),
        "percentiles_from": "host_writer, over every measured message of each point (its "
                            "'percentiles' column says exact, or histogram past its sample "
                            "limit); the spectrum (to p99.999) from rate_histograms.csv, "
                            "within 1/256 of the exact value",
    }
    if rule:
        entry["knee_rule"] = (
            f"the rate offered, if sustained ({criterion}); 0: not sustained"
            if info.get("mode") == "single" else
            f"the highest rate sustained ({criterion}) below the first {after} rates in a "
            f"row not sustained, where the sweep stops (below its end when it stopped "
            f"otherwise: at --sweep-to, with the quiet sweep, or the run); a lone rate not "
            f"sustained below the knee does not lower it; 0: none")
        entry["stop_after_consecutive"] = after
        entry["p99_bound"] = bound_used(info)
    counted = counters.availability(run.info, "rate") if counters.present(df) else None
    if counted:
        entry["counters"] = counted
    return entry


# --------------------------------------------------------------------------
# The text report
# --------------------------------------------------------------------------


RATE_NOTE = [
    "Open loop: each message goes at its scheduled time whether or not the last",
    "was answered, and is timed from that time, so a stall delays every message",
    "queued behind it (no coordinated omission). achieved: messages/s received;",
    "late: messages sent more than one mean gap after their time; unsent: never",
    "sent (the sender fell too far behind). x quiet: the figure over the quiet",
    "point's of the same rate. Percentiles: host_writer's, over every measured",
    "message.",
]
RATE_TABLE = (("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"),
              ("p99.99", "p99_99_ns"), ("max", "max_ns"))


def rate_unit(points: list[dict]) -> tuple[str, float, int]:
    """One unit for a rate table or plot, from the median of the p50s above 0."""
    medians = [p["p50_ns"] for p in points if p["p50_ns"]]
    return pick_unit(float(np.median(medians)) if medians else 0)


def knee_text(name: str, k: dict) -> str:
    """What a set's knee is and why it is there, for the report: the rates
    not sustained above it (the run that stopped the sweep, or its last
    rate), and those below it that do not lower it."""
    above = k.get("not_sustained_above_knee")
    if above is None:  # an entry of the rule before two in a row
        above = [k["first_not_sustained"]] if k["first_not_sustained"] else []
    knee = k["knee_per_s"]
    if not above:
        text = (f"{knee:,}/s: sustained at every rate measured (up to "
                f"{k['highest_measured_per_s']:,}/s), so the knee may be higher")
    elif k.get("stopped_on_consecutive"):
        which = " and ".join(f"{p['offered_per_s']:,}/s [{p['why']}]" for p in above)
        text = (f"{knee:,}/s: the next {len(above)} rates in a row were not sustained: "
                if knee else f"none: its first {len(above)} rates were not sustained: ") + which
    elif not knee:
        text = (f"none: not sustained at its first rate, {above[0]['offered_per_s']:,}/s: "
                f"{above[0]['why']}")
    else:
        text = (f"{knee:,}/s: the next rate, {above[0]['offered_per_s']:,}/s, was not "
                f"sustained: {above[0]['why']}")
    lone = k.get("not_sustained_below_knee") or []
    if lone:
        text += ("; below it, a lone rate not sustained does not lower it (the rates above "
                 "were carried): " + ", ".join(f"{p['offered_per_s']:,}/s [{p['why']}]"
                                               for p in lone))
    return text


def time_text(ns: float) -> str:
    """'223.882 ms': a time in the unit that suits it."""
    unit = pick_unit(ns)
    return f"{fmt_time(ns, unit)} {unit[0]}"


def bound_text(rt: dict) -> str | None:
    """The p99 bound the points were held to and where it came from, as
    run.json gives it; None when it does not."""
    bound = rt.get("p99_bound")
    if not bound:
        return None
    text = f"p99 at most {time_text(bound['ns'])}"
    if bound["source"]:
        text += f" ({bound['source']})"
    q = bound["quiet_run"]
    if q:
        text += (f"; the quiet run at {q['offered_per_s']:,.0f}/s for "
                 f"{q['duration_ns'] / 1e9:g} s: p50 {time_text(q['p50_ns'])}, p99 "
                 f"{time_text(q['p99_ns'])}, p99.9 {time_text(q['p99_9_ns'])}")
    return text


def lone_points(rt: dict) -> set[str]:
    """The points not sustained below their set's knee, by point_name."""
    return {point_name(name, p["offered_per_s"]) for name, k in rt["knees"].items()
            for p in k.get("not_sustained_below_knee") or []}


def stop_reasons(rt: dict) -> list[list[str]]:
    """[set, why its sweep stopped] as run.json gives it."""
    return [[name, rt["knees"][name]["stop_reason"]] for name in rt["sets"]
            if rt["knees"][name].get("stop_reason")]


def table_head(unit: tuple, ctx: str) -> list[str]:
    """The percentiles' columns of the table of rate points, with the
    context switches per 1000 messages beside p99 (headed ctx) when
    counted."""
    head = []
    for name, key in RATE_TABLE:
        head.append(f"{name} ({unit[0]})")
        if ctx and key == "p99_ns":
            head.append(ctx)
    return head


def table_times(p: dict, unit: tuple, ctx: str) -> list[str]:
    """A point's cells of table_head()."""
    cells = []
    for _, key in RATE_TABLE:
        # No message received: the row's zeros are no latencies.
        cells.append(fmt_time(p[key] if p["received"] else None, unit))
        if ctx and key == "p99_ns":
            cells.append(counters.per_kmsg_text(p, p["received"]))
    return cells


def report_rate(rt: dict) -> list[str]:
    points = rt["points"]
    unit = rate_unit(points)
    sets = rt["sets"]
    lone = lone_points(rt)
    lines = ["", "LATENCY UNDER LOAD", "------------------"] + RATE_NOTE
    if counters.shown(points):
        lines += textwrap.wrap(counters.TAIL_NOTE, 78)
    settings = settings_line(points, ("arrivals", "message_bytes", "verify", "wait",
                                      "duration_s", "p99_bound_ns"))
    if settings:
        lines.append("Settings: " + settings)
    lines += counters.availability_lines(rt.get("counters"))
    bound = bound_text(rt)
    if bound:
        lines += textwrap.wrap(f"Sustained only with {bound}.", 78)
    lines += [""] + textwrap.wrap(f"Knee: {rt['knee_rule']}.", 78)
    lines += ["  " + l for l in table([[name, knee_text(name, rt["knees"][name])]
                                       for name in sets], "ll")]
    reasons = stop_reasons(rt)
    if reasons:
        lines += ["", "Where each sweep stopped (run.json's stop_reason):"]
        lines += ["  " + l for l in table(reasons, "ll")]
    loaded = len(sets) > 1
    ctx = counters.HEADING if counters.shown(points) else ""
    head = ["rate/s", "interference", "achieved/s"] + table_head(unit, ctx)
    head += ["late", "unsent", "errors", "sustained"]
    head += ["p50 x quiet", "p99 x quiet", "p99.9 x quiet", "max x quiet"] if loaded else []
    rows = [head + [""]]
    for p in points:
        cells = [f"{p['offered_per_s']:,}", p["interference"], f"{p['achieved_per_s']:,.0f}"]
        cells += table_times(p, unit, ctx)
        cells += [f"{p['late']:,}", f"{p['unsent']:,}", f"{p['errors']:,}",
                  "yes" if p["sustained"] else "NO"]
        if loaded:
            r = p["ratio_to_quiet"] or {}
            cells += [ratio_text(r[k]) if r.get(k) is not None else "-"
                      for k in ("p50", "p99", "p99.9", "max")]
        marks = (["<< knee"] if p["at_knee"] else []) + (
            ["<< lone, below the knee: not counted"] if p["point"] in lone else []) + (
            [f"<< BAD: {p['errors']:,} bad messages"] if p["errors"] else [])
        rows.append(cells + [", ".join(marks)])
    lines += [""] + ["  " + l for l in table(rows, "rl")]
    lines += report_spectrum(points, unit)
    return lines


def report_spectrum(points: list[dict], unit) -> list[str]:
    """The percentile spectrum of each point with a histogram."""
    shown_points = [p for p in points if p["spectrum"]]
    if not shown_points:
        return []
    rows = [["rate/s", "interference", "samples"]
            + [f"{label} ({unit[0]})" for _, _, label in SPECTRUM] + [f"max ({unit[0]})"]]
    beyond = False
    for p in shown_points:
        sp = p["spectrum"]
        cells = [f"{p['offered_per_s']:,}", p["interference"], f"{sp['samples']:,}"]
        for percentile, key, _ in SPECTRUM:
            text = fmt_time(sp[key], unit)
            if not resolved(sp["samples"], percentile):
                text += "*"
                beyond = True
            cells.append(text)
        rows.append(cells + [fmt_time(sp["max_ns"], unit)])
    lines = ["", "Percentile spectrum, from each point's histogram (rate_histograms.csv;",
             "within 1/256 of the exact value):"]
    if beyond:
        lines += ["* beyond what the samples resolve (p needs 1 / (1 - p) of them: p99.9",
                  "  needs 1,000): interpolated between the top few, not a measured tail."]
    return lines + [""] + ["  " + l for l in table(rows, "rl")]


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def tick_labels(rates: list[int], apart: float = 1.7) -> list[str]:
    """A label for each rate a tick marks: the 1-2-5 ladder's rungs and the
    first rate always; any other (a knee's refinement, between two rungs)
    only when it is `apart` times from every labelled one, else no label,
    so that no two labels overlap."""
    def rung(r):
        digits = str(int(r)).rstrip("0")
        return digits in ("1", "2", "5")
    ordered = sorted(set(rates))
    shown = {r for r in ordered if rung(r)} | set(ordered[:1])
    for r in ordered:
        if r not in shown and all(max(r, s) / min(r, s) >= apart for s in shown):
            shown.add(r)
    return [nice(r) if r in shown else "" for r in rates]


def rate_axes(ax, rates: list[int], ylabel: str) -> None:
    """Log-log axes with the measured rates as x ticks (labelled where the
    labels do not collide: tick_labels())."""
    from matplotlib.ticker import NullFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(rates)
    ax.set_xticklabels(tick_labels(rates), rotation=30 if len(rates) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    if len(rates) == 1:
        ax.set_xlim(rates[0] / 2, rates[0] * 2)
    plain_log_ticks(ax.yaxis)
    ax.set_xlabel("offered load (messages/s, log scale)")
    ax.set_ylabel(f"{ylabel} (log scale)")


def load_curve(ax, points: list[dict], key: str, scale: float, **style) -> None:
    """key against offered rate; points not sustained drawn hollow, points
    with bad messages crossed in red."""
    x = np.array([p["offered_per_s"] for p in points], dtype=float)
    y = positive(p[key] for p in points) / scale
    line, = ax.plot(x, y, ms=6, lw=1.6, **style)
    weak = [i for i, p in enumerate(points) if not p["sustained"]]
    if weak:
        ax.plot(x[weak], y[weak], ls="none", marker=style.get("marker", "o"), ms=6,
                mfc="white", mec=line.get_color(), zorder=3)
    bad = [i for i, p in enumerate(points) if p["errors"]]
    if bad:
        ax.scatter(x[bad], y[bad], marker="X", s=110, color="tab:red", zorder=4,
                   label=BAD_LABEL)


def mark_knee(ax, knee: int, color: str, label: str) -> None:
    if knee:
        ax.axvline(knee, color=color, ls="--", lw=1, alpha=0.8, label=label)


def plot_rate_load(rt: dict, title: str, partial: list[str]):
    """The hockey stick: p50, p99 and p99.9 against offered rate, a panel
    per interference set with its knee marked (and the quiet p99 behind the
    others), then the p99 of every set in one panel, side by side."""
    plt = pyplot()
    sets, points, rates = rt["sets"], rt["points"], rt["rates"]
    name, scale, _ = rate_unit(points)
    fig, axes = panel_grid(plt, len(sets) + (len(sets) > 1))
    headline(fig, f"Latency under load: {title}\n(hollow: not sustained; dashed: the knee, "
                  "the highest rate sustained)", partial)
    bound = [p["p99_bound_ns"] for p in points if p["p99_bound_ns"]]
    quiet = [p for p in points if p["interference"] == QUIET]
    for ax, s in zip(axes, sets):
        mine = [p for p in points if p["interference"] == s]
        if s != QUIET and quiet:
            ax.plot([p["offered_per_s"] for p in quiet],
                    positive(p["p99_ns"] for p in quiet) / scale, color="gray", lw=3,
                    alpha=0.3, label="quiet p99")
        for key, label, color in PERCENTILE_STYLE:
            load_curve(ax, mine, key, scale, color=color, marker="o", label=label)
        if bound:
            ax.axhline(max(bound) / scale, color="gray", ls=":", lw=1,
                       label=f"p99 bound {nice(max(bound) / scale)} {name}")
        knee = rt["knee_per_s"][s]
        mark_knee(ax, knee, "black", f"knee {knee:,}/s" if knee else "")
        rate_axes(ax, rates, f"latency ({name})")
        ax.set_title(f"{'quiet (no co-runner)' if s == QUIET else 'with ' + s}: "
                     + (f"knee {knee:,}/s" if knee else "no rate sustained"))
        legend(ax)
    if len(sets) > 1:
        ax = axes[-1]
        for i, s in enumerate(sets):
            color = SET_COLORS[i % len(SET_COLORS)]
            load_curve(ax, [p for p in points if p["interference"] == s], "p99_ns", scale,
                       color=color, marker="o", label=s)
            mark_knee(ax, rt["knee_per_s"][s], color, "")
        rate_axes(ax, rates, f"p99 ({name})")
        ax.set_title("p99 of each interference set, knees dashed")
        legend(ax)
    return fig


NINES = (50, 90, 99, 99.9, 99.99, 99.999, 99.9999, 99.99999)  # ticks; curves start at p0


def nines_position(percentile):
    """x of a percentile on the 'nines' axis: 1 / (1 - p), so 90, 99, 99.9
    are a decade apart (HdrHistogram's percentile plots)."""
    return 1 / (1 - np.asarray(percentile, dtype=float) / 100)


def spectrum_curve(ax, h: Histogram, point: dict, scale: float, **style) -> float:
    """A point's percentile curve from its histogram, from p0 up to where
    its samples reach (1 / (1 - p) = their number), ending at the max.
    Returns the rightmost x drawn."""
    x = np.geomspace(1, max(h.total, 2), 240)
    ps = 100 * (1 - 1 / x)
    y = hist_percentiles(h, point["min_ns"], point["max_ns"], ps)
    x = np.append(x, x[-1])
    y = np.append(y, point["max_ns"])
    ax.plot(x, positive(y) / scale, lw=1.6, **style)
    return float(x[-1])


def nines_axes(ax, reach: float, ylabel: str, log: bool) -> None:
    ticks = [p for p in NINES if nines_position(p) <= max(reach, 10) * 1.0001]
    ax.set_xscale("log")
    ax.set_xticks(nines_position(ticks))
    ax.set_xticklabels([f"{p:g}%" for p in ticks])
    ax.minorticks_off()
    ax.set_xlim(1, max(reach, 10) * 1.3)
    if log:
        ax.set_yscale("log")
        plain_log_ticks(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
        comma_ticks(ax.yaxis)
    ax.set_xlabel("percentile (log scale of 1 / (1 - p): each nine a decade)")
    ax.set_ylabel(f"{ylabel}{' (log scale)' if log else ''}")


def plot_rate_spectrum(rt: dict, hists: dict, title: str, partial: list[str]):
    """The percentile spectrum (p0 to the max, each nine a decade) of each
    rate point from its histogram: the quiet points of every rate in one
    panel, then (with co-runners) a panel per rate with the quiet curve and
    each interference set's side by side."""
    plt = pyplot()
    points = [p for p in rt["points"] if p["spectrum"]]
    rates = sorted({p["offered_per_s"] for p in points})
    loaded = len(rt["sets"]) > 1
    overview = len(rates) > 1 or not loaded
    name, scale, _ = rate_unit(points)
    # A log latency axis when the tail reaches far above the median; not
    # for the min, which the first messages of an open loop make tiny.
    medians = [p["spectrum"]["p50_ns"] for p in points if p["spectrum"]["p50_ns"] > 0]
    log = bool(medians) and max(p["max_ns"] for p in points) / min(medians) > 20
    fig, axes = panel_grid(plt, overview + (len(rates) if loaded else 0))
    headline(fig, f"Latency percentile spectrum under load: {title}", partial)
    panels = iter(axes)
    if overview:
        ax = next(panels)
        quiet = [p for p in points if p["interference"] == QUIET] or points
        cmap = plt.get_cmap("viridis")
        reach = 1.0
        for i, p in enumerate(quiet):
            color = cmap(i / max(len(quiet) - 1, 1) * 0.9)
            reach = max(reach, spectrum_curve(ax, hists[p["point"]], p, scale, color=color,
                                              label=f"{p['offered_per_s']:,}/s"))
        nines_axes(ax, reach, f"latency ({name})", log)
        ax.set_title("quiet points, one curve per offered rate"
                     if quiet[0]["interference"] == QUIET else "every point")
        legend(ax)
    if loaded:
        for rate in rates:
            ax = next(panels)
            reach = 1.0
            for i, s in enumerate(rt["sets"]):
                p = next((p for p in points if p["offered_per_s"] == rate
                          and p["interference"] == s), None)
                if p is not None:
                    reach = max(reach, spectrum_curve(ax, hists[p["point"]], p, scale,
                                                      color=SET_COLORS[i % len(SET_COLORS)],
                                                      label=s))
            nines_axes(ax, reach, f"latency ({name})", log)
            ax.set_title(f"{rate:,} messages/s offered: quiet and with co-runners")
            legend(ax)
    return fig


# --------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------


def compare(summaries: list[dict], add) -> None:
    """The comparison's rows of the rate points (per interference set, then
    rate: p50, p99, p99.9 and achieved) and of each set's knee."""
    rates = [keyed((s["rate"] or {"points": []})["points"],
                   lambda p: (p["interference"] != QUIET, p["interference"], p["offered_per_s"]))
             for s in summaries]
    for key in sorted(set().union(*rates)):
        (_, interference, offered), repeat = key
        name = "rate " + point_name(interference, offered) \
            + (f" (repeat {repeat + 1})" if repeat else "")
        per = [points.get(key) for points in rates]
        for column, label, _ in PERCENTILE_STYLE:
            add(f"{name} {label}", "ns", "lower", [p[column] if p else None for p in per], per)
        add(f"{name} achieved", "msgs/s", "higher",
            [p["achieved_per_s"] if p else None for p in per], per)
    sets = sorted({n for s in summaries for n in (s["rate"] or {"sets": []})["sets"]},
                  key=lambda n: (n != QUIET, n))
    for name in sets:
        add(f"rate knee {name}", "msgs/s", "higher",
            [(s["rate"] or {"knee_per_s": {}})["knee_per_s"].get(name) for s in summaries])


SET_LINES = ("-", "--", ":", "-.")  # line style of each interference set, quiet first


def plot_compare_rate(labels: list[str], runs: list, summaries: list[dict]):
    """Each run's latency-vs-load curves over the others': a panel per
    percentile (p50, p99, p99.9), a colour per run, a line style per
    interference set, each run's quiet knee dashed in its colour."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(18, 6.4), constrained_layout=True)
    compare_headline(fig, "Latency under load, runs overlaid (hollow: not sustained; "
                          "vertical: each run's quiet knee)", runs)
    tables = [(s["rate"] or {"points": [], "sets": []}) for s in summaries]
    name, scale, _ = rate_unit([p for t in tables for p in t["points"]])
    rates = sorted({p["offered_per_s"] for t in tables for p in t["points"]})
    for ax, (key, percentile, _) in zip(axes, PERCENTILE_STYLE):
        for i, (label, t) in enumerate(zip(labels, tables)):
            style = run_style(i)
            for j, s in enumerate(t["sets"]):
                mine = [p for p in t["points"] if p["interference"] == s]
                load_curve(ax, mine, key, scale, ls=SET_LINES[j % len(SET_LINES)],
                           label=f"[{i + 1}] {label}" + ("" if s == QUIET else f", {s}"),
                           **style)
            if t["points"]:
                mark_knee(ax, t["knee_per_s"].get(QUIET, 0), style["color"], "")
        rate_axes(ax, rates, f"{percentile} ({name})")
        ax.set_title(f"{percentile} against offered load (lower is better)")
        legend(ax)
    return fig


def compare_plots(labels: list[str], runs: list, summaries: list[dict]) -> list[Plot]:
    if not any(s["rate"] for s in summaries):
        return []
    return [Plot("comparison_rate.png",
                 "Each run's latency under load (timed from each message's scheduled send) "
                 "against the offered rate, overlaid: a panel per percentile, a colour per run, "
                 "a line style per interference set.",
                 lambda: plot_compare_rate(labels, runs, summaries))]


def plots(data: RateData, rt: dict, title: str, partial: list[str]) -> list[Plot]:
    found = [Plot("rate_latency_vs_load.png",
                  "Latency of messages sent open-loop at each offered rate, timed from each "
                  "one's scheduled send: p50, p99 and p99.9 against the rate (log-log), a "
                  "panel per interference set with its knee dashed; hollow points were not "
                  "sustained.", lambda: plot_rate_load(rt, title, partial))]
    if any(p["spectrum"] for p in rt["points"]):
        found.append(Plot("rate_percentile_spectrum.png",
                          "Each rate point's latencies from p0 to its maximum, from its "
                          "histogram, on a 'nines' axis (each nine a decade): quiet and beside "
                          "co-runners.",
                          lambda: plot_rate_spectrum(rt, data.hists, title, partial)))
    return found


# --------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------


def html(rt: dict) -> str:
    points = rt["points"]
    unit = rate_unit(points)
    sets = rt["sets"]
    lone = lone_points(rt)
    loaded = len(sets) > 1
    settings = settings_line(points, ("arrivals", "message_bytes", "verify", "wait",
                                      "duration_s", "p99_bound_ns"))
    reasons = dict(stop_reasons(rt))
    knees = page.table(["interference", "knee (msgs/s)", "why there"]
                       + (["where the sweep stopped (run.json)"] if reasons else []),
                       [[name, f"{rt['knees'][name]['knee_per_s']:,}",
                         knee_text(name, rt["knees"][name]).split(": ", 1)[-1]]
                        + ([reasons.get(name, "-")] if reasons else [])
                        for name in sets], "lrll")
    bound = bound_text(rt)
    ctx = counters.PAGE_HEADING if counters.shown(points) else ""
    head = ["offered (msgs/s)", "interference", "achieved (msgs/s)"] + table_head(unit, ctx) \
        + ["late (messages)", "unsent (messages)", "bad messages", "sustained"]
    head += ["p50 × quiet", "p99 × quiet", "p99.9 × quiet", "max × quiet"] if loaded else []
    rows = []
    for p in points:
        cells = [f"{p['offered_per_s']:,}", p["interference"], f"{p['achieved_per_s']:,.0f}"]
        cells += table_times(p, unit, ctx)
        cells += [f"{p['late']:,}", f"{p['unsent']:,}",
                  f"{p['errors']:,} BAD" if p["errors"] else "0",
                  ("yes" if p["sustained"] else "NO") + (" (knee)" if p["at_knee"] else "")
                  + (" (lone, below the knee)" if p["point"] in lone else "")]
        if loaded:
            r = p["ratio_to_quiet"] or {}
            cells += [ratio_mark(r[k]) if r.get(k) is not None else "-"
                      for k in ("p50", "p99", "p99.9", "max")]
        rows.append(page.Row(cells, "bad" if p["errors"] else "knee" if p["at_knee"] else ""))
    parts = [page.para("Open loop: each message goes at its scheduled time whether or not the "
                       "last was answered, and is timed from that time, so a stall delays "
                       "every message queued behind it (no coordinated omission). late: sent "
                       "more than one mean gap after its time; unsent: never sent. × quiet: "
                       "the figure over the quiet point's of the same rate."),
             page.para("Settings: " + settings, "note") if settings else "",
             counters.availability_html(rt.get("counters")),
             page.para(counters.TAIL_NOTE, "note") if ctx else "",
             page.tag("h3", "Knees"), page.para(f"Knee: {rt['knee_rule']}.", "note"),
             page.para(f"Sustained only with {bound}.", "note") if bound else "", knees,
             page.tag("h3", "Every rate point"), page.table(head, rows, "rl")]
    spectral = [p for p in points if p["spectrum"]]
    if spectral:
        srows, beyond = [], False
        for p in spectral:
            sp = p["spectrum"]
            cells = [f"{p['offered_per_s']:,}", p["interference"], f"{sp['samples']:,}"]
            for percentile, key, _ in SPECTRUM:
                text_ = fmt_time(sp[key], unit)
                if not resolved(sp["samples"], percentile):
                    text_ += "*"
                    beyond = True
                cells.append(text_)
            srows.append(cells + [fmt_time(sp["max_ns"], unit)])
        parts += [page.tag("h3", "Percentile spectrum, from each point's histogram"),
                  page.table(["offered (msgs/s)", "interference", "samples"]
                             + [f"{label} ({unit[0]})" for _, _, label in SPECTRUM]
                             + [f"max ({unit[0]})"], srows, "rl"),
                  page.para("From rate_histograms.csv, within 1/256 of the exact value."
                            + (" * beyond what the samples resolve (p needs 1 / (1 - p) of "
                               "them: p99.9 needs 1,000): interpolated between the top few, "
                               "not a measured tail." if beyond else ""), "note")]
    return page.join(*parts)


def knee_facts(rt: dict) -> list[Fact]:
    """The quiet knee (or the first set's)."""
    name = QUIET if QUIET in rt["knees"] else rt["sets"][0]
    k = rt["knees"][name]
    value = f"{k['knee_per_s']:,}" if k["knee_per_s"] else "none"
    above = k.get("not_sustained_above_knee") or (
        [k["first_not_sustained"]] if k["first_not_sustained"] else [])
    if not above:
        note = "sustained at every rate measured"
    elif k.get("stopped_on_consecutive"):
        note = (" and ".join(f"{p['offered_per_s']:,}/s" for p in above)
                + " not sustained: the sweep stopped")
    else:
        note = f"next rate {above[0]['offered_per_s']:,}/s not sustained"
    lone = k.get("not_sustained_below_knee") or []
    if lone:
        note += f"; {len(lone)} lone rate{'s' if len(lone) > 1 else ''} below not sustained"
    label = "knee" + ("" if name == QUIET else f" ({name})")
    return [Fact(label, value, "msgs/s" if k["knee_per_s"] else "", k["knee_per_s"],
                 f"rate.knee_per_s.{name}", note)]


def metric_text(m: dict, value, _lat_unit) -> str:
    return fmt_time(value, row_time_unit(m)) if m["unit"] == "ns" else fmt_sig(value)


def metric_unit(m: dict, _lat_unit) -> str:
    return row_time_unit(m)[0] if m["unit"] == "ns" else m["unit"]


FLAGGED = Flagged(
    file=RATE_CSV, rows=lambda rt: rt["points"], point=lambda p: f"rate {p['point']}",
    prefix="rate ", banner="rate point", counted="rate points")

def headline_figure(name: str) -> bool:
    """Each interference set's knee."""
    return name.startswith("rate knee ")


KIND = Kind(
    name="rate", key="rate", title="Latency under load",
    files=((RATE, load_rate), (RATE_HIST, load_rate_hist)),
    summarize=rate_stats, text=report_rate, html=html, assemble=assemble, plots=plots,
    headline=knee_facts, absent_notes=absent_notes, flagged=FLAGGED, compare=compare,
    metric_text=metric_text, metric_unit=metric_unit, compare_plots=compare_plots,
    headline_figure=headline_figure,
)
