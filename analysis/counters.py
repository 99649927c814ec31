"""
counters - what the kernel counted for a thread over a measured interval
(common/counters.h), as the stream and rate rows end with it: context
switches, CPU migrations, page faults and the task clock of the initiator's
thread (host_) and of --watch-thread's (vcpu_, QEMU's vCPU thread), the
hardware counters where the machine has a PMU, and the initiator's context
switches per 1000 messages received. So that a tail can be told apart from
the sender being descheduled.

An empty cell is a counter that was not counted (never 0); run.json's
<workload>.counters says, once, what was counted and why the rest was not.
The columns are optional: rows of a host_writer before the counters have
none of them, and their reports stay as they were.
"""

from __future__ import annotations

import textwrap

import numpy as np

from analysis import page
from analysis.tables import AGREE, OPTIONAL, Column, Table, fmt_number, impossible

COUNTERS = ("ctx_switches", "migrations", "page_faults", "task_clock_ns", "cycles",
            "instructions", "cache_misses")     # counters.h enum ivb_ctr, in its order
THREADS = ("host", "vcpu")
PER_KMSG = "ctx_switches_per_kmsg"
# IVB_COUNTERS_COLUMNS, in its order: what a stream or rate row ends with.
COLUMNS = {**{f"{thread}_{name}": Column(integer=True, allow_empty=True)
              for thread in THREADS for name in COUNTERS},
           PER_KMSG: OPTIONAL}
# A thread's task clock may exceed its interval by this much: the counters
# are read one at a time after the interval's last clock read.
SLACK_S = 0.01
# run.json's counters object: (its key, what the report calls it).
AVAILABILITY = (("software", "host software"), ("hardware", "host hardware"),
                ("vcpu_software", "vCPU software"), ("vcpu_hardware", "vCPU hardware"))


def check_counters(table: Table, messages: np.ndarray, counted: str, most_s: np.ndarray,
                   interval: str) -> None:
    """The counters of each row against its other figures, as counters.c
    writes them: ctx_switches_per_kmsg = 1000 x host_ctx_switches /
    messages (counted: the column it divides by) within its rounding (%.3f)
    and AGREE, never without the switches or a message; and no thread's
    task clock longer than its interval (most_s, seconds; interval says
    what that is)."""
    cols = table.columns
    with np.errstate(invalid="ignore", divide="ignore"):
        if PER_KMSG in cols:
            per = cols[PER_KMSG]
            switches = cols.get("host_ctx_switches", np.full(table.rows, np.nan))
            given = ~np.isnan(per)
            impossible(table, PER_KMSG, given & np.isnan(switches),
                       lambda i: f"{fmt_number(per[i])} without host_ctx_switches")
            impossible(table, PER_KMSG, given & (messages == 0),
                       lambda i: f"{fmt_number(per[i])} with no message {counted}")
            want = 1000 * switches / messages
            impossible(table, PER_KMSG, given & (messages > 0)
                       & (np.abs(per - want) > 5e-4 + AGREE * want),
                       lambda i: f"{fmt_number(per[i])} is not 1000 x host_ctx_switches / "
                                 f"{counted} ({want[i]:.3f})")
        for thread in THREADS:
            name = f"{thread}_task_clock_ns"
            if name in cols:
                clock = cols[name]
                impossible(table, name, clock > most_s * 1e9,
                           lambda i: f"{fmt_number(clock[i])} ns is more time on a CPU than "
                                     f"{interval} allows (at most {most_s[i]:.3f} s)")


def present(df) -> list[str]:
    """The counter columns the rows have."""
    return [name for name in COLUMNS if name in df]


def drop_absent(points: list[dict], df) -> None:
    """Leave out of each point the counters its file has no column for: a
    file of a host_writer before the counters summarises as it always did."""
    absent = [name for name in COLUMNS if name not in df]
    for p in points:
        for name in absent:
            p.pop(name, None)


def shown(points: list[dict]) -> bool:
    """Whether any point has its context switches per 1000 messages."""
    return any(p.get(PER_KMSG) is not None for p in points)


def per_kmsg(value: float) -> str:
    """As counters.c's line says it: three decimals below 1."""
    return f"{value:.3f}" if value < 1 else f"{value:,.1f}"


def per_kmsg_text(p: dict, messages: int) -> str:
    """'0.064', or '1.2 (vCPU 512.0)' with the vCPU thread's, or '-'."""
    if p.get(PER_KMSG) is None:
        return "-"
    text = per_kmsg(p[PER_KMSG])
    if p.get("vcpu_ctx_switches") is not None and messages:
        text += f" (vCPU {per_kmsg(1000 * p['vcpu_ctx_switches'] / messages)})"
    return text


def availability(info: dict | None, workload: str) -> dict | None:
    """run.json's <workload>.counters: what was counted, as strings, or None."""
    section = (info or {}).get(workload)
    got = section.get("counters") if isinstance(section, dict) else None
    if not isinstance(got, dict):
        return None
    keys = [k for k, _ in AVAILABILITY] + ["interval"]
    found = {k: got[k][:300] for k in keys if isinstance(got.get(k), str) and got[k]}
    return found or None


def availability_text(counted: dict) -> str:
    """What was counted, per thread and kind, then the interval, in one
    sentence."""
    parts = [f"{label}: {counted[key]}" for key, label in AVAILABILITY if key in counted]
    if "interval" in counted:
        parts.append(f"interval: {counted['interval']}")
    return "Counters (run.json): " + "; ".join(parts) + "."


def availability_lines(counted: dict | None) -> list[str]:
    """availability_text() for the text report, wrapped; [] without it."""
    return textwrap.wrap(availability_text(counted), 78) if counted else []


def availability_html(counted: dict | None):
    """availability_text() as the page's note; '' without it."""
    return page.para(availability_text(counted), "note") if counted else ""


# The column's heading: the text report's, and the page's (a unit named).
HEADING = "ctx-sw/kmsg"
PAGE_HEADING = "ctx-sw/kmsg (per 1000 messages)"
NOTE = ("ctx-sw/kmsg: the initiator thread's context switches per 1000 messages received "
        "(in brackets the vCPU thread's, with --watch-thread).")
TAIL_NOTE = NOTE + " A tail that comes with many is the sender descheduled, not the channel."
