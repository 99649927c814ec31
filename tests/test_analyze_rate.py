# timeout: 150
"""analyze_results.py on the rate workload (latency under load): two real
host-only runs of host_writer -t rate (guest_reader on a shared-memory file
in /dev/shm, no VM), one at a single rate and a short sweep of three rates
(with a CPU co-runner when stress-ng is there), analysed and checked against
the CSV files: the rows, the ratios to the quiet point, the knees against
run.json, the percentile spectrum against an independent computation from
the histogram file; a point with bad messages flagged and exit 1; malformed
rate and histogram files refused with one line; a histogram file cut short
refused as partial (3) and analysed with --allow-partial; and --compare of
the two runs, their latency-vs-load curves overlaid.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_rate.py
"""

import csv
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from analyze_common import SCRIPT, assert_one_line_error, build, host_writer_run, package, png, skip, write_rows

SHM_SIZE = 64 << 20
RATE_CSV = "rate_results.csv"
HIST_CSV = "rate_histograms.csv"
SWEEP = (5000, 10000, 20000)
# The row's percentile columns and the spectrum's keys for them.
ROW_SPECTRUM = (("p50_ns", "p50_ns", 50), ("p90_ns", "p90_ns", 90), ("p99_ns", "p99_ns", 99),
                ("p999_ns", "p99_9_ns", 99.9), ("p9999_ns", "p99_99_ns", 99.99))


def run(*args):
    """The script with this interpreter, as a separate process."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def run_all(dirs, *args):
    """run(d, *args) for each directory, four processes at a time."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda d: run(d, *args), dirs))


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def copy_run(source, directory, rate_rows=None, hist_rows=None, **info):
    """A copy of a results directory with the rate rows or histogram rows
    replaced (lists of dicts) and run.json's fields changed; run.json's
    files list the new row counts."""
    directory.mkdir()
    for name, rows in ((RATE_CSV, rate_rows), (HIST_CSV, hist_rows)):
        write_rows(directory / name, rows if rows is not None else read_rows(source / name))
    meta = {**json.loads((source / "run.json").read_text()), **info}
    meta["files"] = {n: len(read_rows(directory / n)) for n in (RATE_CSV, HIST_CSV)}
    (directory / "run.json").write_text(json.dumps(meta))
    return directory


# ------------------------------------------------------------------- fixtures


def host_run(out, *args):
    """One host_writer -t rate session against guest_reader --once on a
    64 MiB file in /dev/shm (mode 0600, removed afterwards)."""
    host_writer_run(out, SHM_SIZE, "-t", "rate", *args, timeout=120)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A single rate (5k/s for 200 ms) and a sweep of 5k, 10k, 20k/s (200 ms
    each, a p99 bound of 10 s so a busy machine still climbs the ladder),
    with a CPU co-runner when stress-ng is installed; each analysed."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        skip("no writable /dev/shm")
    build()
    root = tmp_path_factory.mktemp("rate")
    single = host_run(root / "single", "--rate", "5k", "--rate-duration", "200ms")
    corunner = ["--interference", "cpu"] if shutil.which("stress-ng") else []
    sweep = host_run(root / "sweep", "--rate-sweep", "--sweep-from", "5k", "--sweep-to", "20k",
                     "--rate-duration", "200ms", "--p99-bound", "10s", *corunner)
    analyses = run_all([single, sweep])
    return {"single": single, "sweep": sweep, "analyses": dict(zip(("single", "sweep"),
                                                                    analyses))}


def summary_of(directory):
    return json.loads((directory / "summary.json").read_text())


# ------------------------------------------------------------------ real runs


def test_single_rate_analysed_cleanly(runs):
    out, proc = runs["single"], runs["analyses"]["single"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    summary = summary_of(out)
    assert summary["partial"] is False and summary["notes"] == []
    assert summary["bad_messages"] == []
    rate = summary["rate"]
    assert rate["sets"] == ["none"] and rate["rates"] == [5000]
    [point] = rate["points"]
    [row] = read_rows(out / RATE_CSV)
    assert point["line"] == 2 and point["point"] == "5,000/s none"
    for column, value in row.items():
        key = {"p999_ns": "p99_9_ns", "p9999_ns": "p99_99_ns",
               "p999_ratio": "p99_9_ratio"}.get(column, column)
        if column in ("interference", "arrivals", "verify", "wait", "percentiles"):
            assert point[key] == value, column
        elif column == "sustained":
            assert point[key] is (value == "1")
        elif value == "":  # a counter not counted (no PMU, no --watch-thread)
            assert point[key] is None, column
        else:
            assert point[key] == float(value), column
    assert point["messages"] == 1000 and point["errors"] == 0
    assert point["ratio_to_quiet"] is None
    info = json.loads((out / "run.json").read_text())
    assert rate["knee_per_s"] == info["rate"]["knee_per_s"]
    assert point["at_knee"] is (rate["knee_per_s"]["none"] == 5000)
    report = (out / "performance_report.txt").read_text()
    assert report in proc.stdout + "\n"
    assert "LATENCY UNDER LOAD" in report and "Percentile spectrum" in report
    assert "BAD" not in report
    for name in ("rate_latency_vs_load.png", "rate_percentile_spectrum.png"):
        assert png(out / name) > 10_000, name
    assert sorted(p.name for p in out.glob("*.png")) == [
        "rate_latency_vs_load.png", "rate_percentile_spectrum.png"]


def histogram_percentiles(rows, low, high, ps):
    """numpy's 'linear' percentiles of the histogram's values, each bucket's
    values taken as its midpoint clamped to [low, high] (hist.h's rule),
    computed here the plain way: every value repeated, then np.percentile."""
    mids = np.clip([(float(r["bucket_low_ns"]) + float(r["bucket_high_ns"])) / 2 for r in rows],
                   low, high)
    values = np.repeat(mids, [int(r["count"]) for r in rows])
    return np.percentile(values, ps)


@pytest.mark.parametrize("which", ["single", "sweep"])
def test_spectrum_from_the_histogram(runs, which):
    """Each point's spectrum is its histogram's percentiles (the same as a
    plain np.percentile over the bucket midpoints), within 1/256 of the
    row's exact ones, in order, ending at the row's max."""
    out = runs[which]
    hist = read_rows(out / HIST_CSV)
    points = summary_of(out)["rate"]["points"]
    assert {p["point"] for p in points} == {
        f"{int(r['offered_per_s']):,}/s {r['interference']}" for r in hist}
    for p in points:
        mine = [r for r in hist if r["interference"] == p["interference"]
                and int(r["offered_per_s"]) == p["offered_per_s"]]
        sp = p["spectrum"]
        assert sp["samples"] == p["received"] == int(mine[-1]["cumulative_count"])
        expected = histogram_percentiles(mine, p["min_ns"], p["max_ns"],
                                         [50, 90, 99, 99.9, 99.99, 99.999])
        got = [sp[k] for k in ("p50_ns", "p90_ns", "p99_ns", "p99_9_ns", "p99_99_ns",
                               "p99_999_ns")]
        assert got == pytest.approx(expected, rel=1e-9)
        for _, key, _ in ROW_SPECTRUM:
            assert abs(sp[key] - p[key]) <= p[key] / 256 + 0.1, (p["point"], key)
        assert got == sorted(got) and got[-1] <= sp["max_ns"] == p["max_ns"]
        assert sp["resolved_to"] == ("p99.9" if p["received"] >= 1000 else "p99")


def test_sweep_rows_ratios_and_knees(runs):
    out, proc = runs["sweep"], runs["analyses"]["sweep"]
    assert proc.returncode == 0, proc.stderr
    rate = summary_of(out)["rate"]
    rows = read_rows(out / RATE_CSV)
    info = json.loads((out / "run.json").read_text())
    assert rate["knee_per_s"] == info["rate"]["knee_per_s"]
    assert rate["rates"] == [r for r in SWEEP if r <= max(rate["rates"])]
    sets = ["none", "cpu"] if shutil.which("stress-ng") else ["none"]
    assert rate["sets"] == sets
    # By rate, then the quiet point first: host_writer's order, here.
    assert [(p["offered_per_s"], p["interference"]) for p in rate["points"]] == [
        (int(r["offered_per_s"]), r["interference"]) for r in rows]
    quiet = {p["offered_per_s"]: p for p in rate["points"] if p["interference"] == "none"}
    for p in rate["points"]:
        if p["interference"] == "none":
            assert p["ratio_to_quiet"] is None
            continue
        q = quiet[p["offered_per_s"]]
        for label, key in (("p50", "p50_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns"),
                           ("max", "max_ns")):
            assert p["ratio_to_quiet"][label] == pytest.approx(p[key] / q[key])
        # host_writer's ratio comes from unrounded figures and is printed to
        # 3 decimals; ours from the rounded ones: they agree to a part in 10^4
        # of the ratio (large ratios) or the last printed digit (small ones).
        for name in ("p50", "p99"):
            printed = p[name + "_ratio"]
            assert p["ratio_to_quiet"][name] == pytest.approx(printed, rel=1e-4, abs=6e-4)
    for name in sets:
        mine = [p for p in rate["points"] if p["interference"] == name]
        knee = rate["knees"][name]
        assert knee["highest_measured_per_s"] == max(p["offered_per_s"] for p in mine)
        assert [p["offered_per_s"] for p in mine if p["at_knee"]] == (
            [knee["knee_per_s"]] if knee["knee_per_s"] else [])
        # host_writer's rule: the points not sustained above the knee are
        # what stopped the sweep; those below it are lone, not counted.
        above = [p["offered_per_s"] for p in mine
                 if not p["sustained"] and p["offered_per_s"] > knee["knee_per_s"]]
        below = [p["offered_per_s"] for p in mine
                 if not p["sustained"] and p["offered_per_s"] < knee["knee_per_s"]]
        stop = knee["first_not_sustained"]
        assert (stop and stop["offered_per_s"]) == (above[0] if above else None)
        assert [p["offered_per_s"] for p in knee["not_sustained_below_knee"]] == below
        assert below == info["rate"]["not_sustained_below_knee"][name]
        assert knee["stop_reason"] == info["rate"]["stop_reason"][name]
    report = (out / "performance_report.txt").read_text()
    table = [l for l in report.splitlines() if l.strip().startswith(("5,000 ", "10,000 ",
                                                                      "20,000 "))]
    assert len(table) >= len(rate["points"])  # the main table, then the spectrum's
    if rate["knee_per_s"]["none"]:
        assert "<< knee" in report
    assert "Where each sweep stopped (run.json's stop_reason):" in report
    assert "Sustained only with p99 at most 10,000.000 ms (given)." in report
    if len(sets) > 1:
        assert "p99 x quiet" in report


# --------------------------------------------------------------- bad messages


def test_bad_rate_point_flagged_and_exit_1(runs, tmp_path):
    """Messages that failed their check in a rate point: the report opens
    with BAD MESSAGES, the row is marked, summary.json lists it, the plots
    are drawn, and the exit status is 1 with one line."""
    rows = read_rows(runs["sweep"] / RATE_CSV)
    rows[-1]["errors"] = "4"
    bad = copy_run(runs["sweep"], tmp_path / "bad", rate_rows=rows)
    proc = run(bad, "-q")
    assert proc.returncode == 1, proc.stderr
    name = f"{int(rows[-1]['offered_per_s']):,}/s {rows[-1]['interference']}"
    assert_one_line_error(proc, f"{RATE_CSV}: bad messages (errors > 0) in 1 of {len(rows)} "
                                f"rate points: {name} (line {len(rows) + 1}, 4)")
    report = (bad / "performance_report.txt").read_text()
    head = report[:report.index("Results:")]
    assert "*** BAD MESSAGES: 1 rate point had messages that failed their check" in head
    assert f"{RATE_CSV} line {len(rows) + 1}: rate {name}: 4 bad messages" in head
    assert [l.split()[:2] for l in report.splitlines() if "<< BAD" in l] == [
        [f"{int(rows[-1]['offered_per_s']):,}", rows[-1]["interference"]]]
    summary = summary_of(bad)
    assert [(b["file"], b["errors"]) for b in summary["bad_messages"]] == [(RATE_CSV, 4)]
    assert summary["rate"]["bad_points"] == 1
    png(bad / "rate_latency_vs_load.png")


# ------------------------------------------------------------- malformed files


def edit(rows, index, **values):
    """A copy of rows with values set in row index."""
    rows = [dict(r) for r in rows]
    rows[index].update({k: str(v) for k, v in values.items()})
    return rows


def rescaled(rows):
    """Histogram rows with each percentile recomputed from the running
    counts, as host_writer writes it."""
    total = int(rows[-1]["cumulative_count"])
    return [dict(r, percentile=f"{100 * int(r['cumulative_count']) / total:.6f}") for r in rows]


def malformed_cases(single):
    """(name, rate rows or None to leave out the file, histogram rows or
    None, fragments of the error) built from the single run's files."""
    rate, hist = read_rows(single / RATE_CSV), read_rows(single / HIST_CSV)
    row = rate[0]
    p50, p90 = float(row["p50_ns"]), float(row["p90_ns"])
    n = len(hist)
    wide = next(i for i, r in enumerate(hist) if int(r["bucket_low_ns"]) >= 512
                and int(r["bucket_high_ns"]) > int(r["bucket_low_ns"]))
    low = int(hist[wide]["bucket_low_ns"])
    other = edit(rate, 0, interference="cpu")
    return [
        ("interference", edit(rate, 0, interference="gpu"), hist,
         "line 2: column interference: expected none or co-runners (cpu, membw or cache) "
         "joined by '+', got 'gpu'"),
        ("arrivals", edit(rate, 0, arrivals="burst"), hist,
         "line 2: column arrivals: expected constant, poisson or closed, got 'burst'"),
        ("percentiles", edit(rate, 0, percentiles="approx"), hist,
         "line 2: column percentiles: expected exact or histogram, got 'approx'"),
        ("rate-zero", edit(rate, 0, offered_per_s=0), hist,
         "line 2: column offered_per_s: value 0 is below 1"),
        ("sustained", edit(rate, 0, sustained=2), hist,
         "line 2: column sustained: 2 is out of range (more than 1)"),
        ("order", edit(rate, 0, p99_ns=p90 - 1), hist,
         "line 2: column p99_ns: ", " is below p90_ns (columns out of order"),
        ("sent", edit(rate, 0, sent=int(row["messages"]) + 1), hist,
         f"line 2: column sent: {int(row['messages']) + 1} is more than messages"),
        ("received", edit(rate, 0, received=int(row["sent"]) + 1), hist,
         f"line 2: column received: {int(row['sent']) + 1} is more than sent"),
        ("unsent", edit(rate, 0, unsent=3), hist,
         "line 2: column unsent: 3 is not messages - sent"),
        ("twice", rate + rate, hist * 2,
         "line 3: point 5,000/s none appears twice (first on line 2)"),
        ("bucket-start", rate, edit(hist, wide, bucket_low_ns=low + 1),
         f"line {wide + 2}: column bucket_low_ns: {low + 1} does not start a histogram bucket"),
        ("bucket-end", rate, edit(hist, wide, bucket_high_ns=low),
         f"line {wide + 2}: column bucket_high_ns: {low} does not end the bucket starting at "
         f"{low}"),
        ("bucket-order", rate, [hist[1], hist[0]] + hist[2:],
         "line 3: column bucket_low_ns"),
        ("count-zero", rate, edit(hist, 0, count=0), "line 2: column count: value 0 is below 1"),
        ("running", rate, edit(hist, 1, cumulative_count=int(hist[1]["cumulative_count"]) + 1),
         "line 3: column cumulative_count:"),
        ("percentile", rate, edit(hist, 0, percentile=50),
         "the histogram of 5,000/s none has percentile 50 on line 2, expected"),
        ("split", rate + other, hist[:2] + [dict(r, interference="cpu") for r in hist]
         + hist[2:], f"line {n + 4}: the histogram of 5,000/s none goes on here after other "
                     "rows (it began on line 2)"),
        ("total", rate, rescaled(edit(hist, -1, count=int(hist[-1]["count"]) + 1,
                                      cumulative_count=int(hist[-1]["cumulative_count"]) + 1)),
         f"holds {int(row['received']) + 1:,} latencies, its row {int(row['received']):,} "
         "messages received"),
        ("no-row", rate, hist + [dict(r, interference="cache") for r in hist],
         "a histogram of 5,000/s cache, which has no row in rate_results.csv"),
        ("no-histogram", rate + other, hist,
         "line 3: 5,000/s cpu received"),
        ("disagree", edit(rate, 0, p50_ns=round(p50 * 0.97, 1)), hist,
         "gives p50", "further apart than the histogram's error bound (1/256)"),
        ("hist-alone", None, hist, "histograms without the rows of rate_results.csv"),
        ("empty-column", edit(rate, 0, late=""), hist, "line 2: column late: empty value"),
    ] + out_of_range_cases(rate, hist)


COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"


def out_of_range_cases(rate, hist):
    """Values outside what host_writer can write in either file (a count
    from 2^53 on, a negative one, a rate or a size past its option's limit,
    NaN, infinity), and rows whose figures cannot come from one point: one
    line with the file, line, column and the range accepted."""
    row = rate[0]
    messages, sent, received = (int(row[k]) for k in ("messages", "sent", "received"))
    offered = int(row["offered_per_s"])
    return [
        ("offered-over-max", edit(rate, 0, offered_per_s=100_000_001), hist,
         "line 2: column offered_per_s: 100000001 is out of range (more than 100,000,000): "
         "accepted 1..100,000,000"),
        ("messages-2^63", edit(rate, 0, messages=2 ** 63), hist,
         "line 2: column messages: 9223372036854775808 is out of range (more than 2^53-1): "
         + COUNT_RANGE),
        ("sent-2^64-1", edit(rate, 0, sent=2 ** 64 - 1), hist,
         "line 2: column sent: 18446744073709551615 is out of range", COUNT_RANGE),
        ("received-2^64", edit(rate, 0, received=2 ** 64), hist,
         "line 2: column received: 18446744073709551616 is out of range", COUNT_RANGE),
        ("unsent-2^53", edit(rate, 0, unsent=2 ** 53), hist,
         "line 2: column unsent: 9007199254740992 is out of range", COUNT_RANGE),
        ("late-negative", edit(rate, 0, late=-1), hist,
         "line 2: column late: value -1 is below 0: " + COUNT_RANGE),
        # Issue 20: such errors were reported as -9,223,372,036,854,775,808 bad messages.
        ("errors-2^63", edit(rate, 0, errors=2 ** 63), hist,
         "line 2: column errors: 9223372036854775808 is out of range", COUNT_RANGE),
        ("bound-2^63", edit(rate, 0, p99_bound_ns=2 ** 63), hist,
         "line 2: column p99_bound_ns: 9223372036854775808 is out of range", COUNT_RANGE),
        ("size-1e19", edit(rate, 0, message_bytes="1e19"), hist,
         "line 2: column message_bytes: 1e19 is out of range (more than 1,048,576): accepted "
         "16..1,048,576 (--rate-size)"),
        ("achieved-nan", edit(rate, 0, achieved_per_s="nan"), hist,
         "line 2: column achieved_per_s: non-numeric value 'nan'"),
        ("max-inf", edit(rate, 0, max_ns="inf"), hist,
         "line 2: column max_ns: not a finite number: 'inf'"),
        ("lag-past-2^64", edit(rate, 0, sender_lag_max_ns="1e20"), hist,
         "line 2: column sender_lag_max_ns: 1e20 is out of range (more than 2^64): accepted "
         "0..2^64"),
        ("late-over-sent", edit(rate, 0, late=sent + 1), hist,
         f"line 2: column late: {sent + 1} is more than sent ({sent}): a row no measurement "
         "can give"),
        ("lag-order", edit(rate, 0, sender_lag_p99_ns=float(row["sender_lag_max_ns"]) + 1),
         hist, "line 2: column sender_lag_p99_ns: ", "is above sender_lag_max_ns"),
        ("schedule", edit(rate, 0, messages=messages + 1000,
                          unsent=int(row["unsent"]) + 1000), hist,
         f"line 2: column messages: {messages + 1000} is not offered_per_s x duration_s"),
        ("achieved-nothing-received", edit(rate, 0, received=0), hist,
         "line 2: column achieved_per_s: ", "with no message received"),
        ("achieved-over-offered",
         edit(rate, 0, arrivals="constant", achieved_per_s=2 * offered), hist,
         f"line 2: column achieved_per_s: {2 * offered} is more than offered_per_s x "
         f"received / messages ({offered * received / messages:.1f})"),
        ("hist-count-2^63", rate, edit(hist, 0, count=2 ** 63),
         "line 2: column count: 9223372036854775808 is out of range (more than 2^53-1): "
         "accepted 1..2^53-1"),
        ("hist-cumulative-2^64", rate, edit(hist, 0, cumulative_count=2 ** 64),
         "line 2: column cumulative_count: 18446744073709551616 is out of range"),
        ("hist-offered-2^64-1", rate, edit(hist, 0, offered_per_s=2 ** 64 - 1),
         "line 2: column offered_per_s: 18446744073709551615 is out of range (more than "
         "100,000,000)"),
        ("hist-bucket-negative", rate, edit(hist, 0, bucket_low_ns=-1),
         "line 2: column bucket_low_ns: value -1 is below 0: accepted 0..2^37-1"),
        ("hist-percentile-nan", rate, edit(hist, 0, percentile="NaN"),
         "line 2: column percentile: non-numeric value 'NaN'"),
        ("hist-percentile-inf", rate, edit(hist, 0, percentile="inf"),
         "line 2: column percentile: not a finite number: 'inf'"),
    ]


@pytest.fixture(scope="module")
def malformed(runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("malformed-rate")
    cases = malformed_cases(runs["single"])
    dirs = []
    for name, rate, hist, *_ in cases:
        directory = root / name
        directory.mkdir()
        for file, rows in ((RATE_CSV, rate), (HIST_CSV, hist)):
            if rows is not None:
                write_rows(directory / file, rows)
        dirs.append(directory)
    return {name: (d, proc, messages) for (name, _, _, *messages), d, proc
            in zip(cases, dirs, run_all(dirs, "--no-plots"))}


MALFORMED = ["interference", "arrivals", "percentiles", "rate-zero", "sustained", "order",
             "sent", "received", "unsent", "twice", "bucket-start", "bucket-end",
             "bucket-order", "count-zero", "running", "percentile", "split", "total",
             "no-row", "no-histogram", "disagree", "hist-alone", "empty-column",
             # values out of range, rows that cannot have happened
             "offered-over-max", "messages-2^63", "sent-2^64-1", "received-2^64",
             "unsent-2^53", "late-negative", "errors-2^63", "bound-2^63", "size-1e19",
             "achieved-nan", "max-inf", "lag-past-2^64", "late-over-sent", "lag-order",
             "schedule", "achieved-nothing-received", "achieved-over-offered",
             "hist-count-2^63", "hist-cumulative-2^64", "hist-offered-2^64-1",
             "hist-bucket-negative", "hist-percentile-nan", "hist-percentile-inf"]


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_rate_files_one_line_exit_1(malformed, name):
    directory, proc, messages = malformed[name]
    assert_one_line_error(proc, str(directory), *messages)
    assert not (directory / "performance_report.txt").exists()
    assert not (directory / "summary.json").exists()


def test_every_malformed_case_is_run(malformed):
    assert sorted(malformed) == sorted(MALFORMED)


# ------------------------------------------------------ the knee, by the rule


def point_row(rate, sustained, bound_ns=1_000_000):
    """A quiet rate point of 100 ms as host_writer writes it, every
    latency 1,000 ns; not sustained: 90 % of its rate achieved."""
    messages = rate // 10
    return {"interference": "none", "arrivals": "constant", "offered_per_s": str(rate),
            "achieved_per_s": f"{rate if sustained else 0.9 * rate:.1f}",
            "message_bytes": "64", "verify": "xxh3", "wait": "spin", "duration_s": "0.100",
            "messages": str(messages), "sent": str(messages), "received": str(messages),
            "unsent": "0", "late": "0", "sender_lag_p99_ns": "0", "sender_lag_max_ns": "0",
            "percentiles": "exact",
            **{k: "1000" for k in ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns",
                                   "p999_ns", "p9999_ns", "max_ns")},
            "errors": "0", "p99_bound_ns": str(bound_ns), "sustained": "1" if sustained else "0",
            "p50_ratio": "1.000", "p99_ratio": "1.000", "p999_ratio": "1.000"}


def hist_rows(rate):
    """The histogram of point_row(rate): every latency in the bucket of 1,000 ns."""
    n = rate // 10
    return [{"interference": "none", "offered_per_s": str(rate), "bucket_low_ns": "1000",
             "bucket_high_ns": "1003", "count": str(n), "cumulative_count": str(n),
             "percentile": "100.000000"}]


def sweep_run(directory, verdicts, **rate_info):
    """A quiet sweep from 1,000/s up the 1-2-5 ladder, a point per verdict
    (True: sustained), with run.json as host_writer writes it after the
    two-in-a-row rule (its knee, lone points and stop reason as given)."""
    rates = [1000, 2000, 5000, 10000, 20000, 50000, 100000][:len(verdicts)]
    directory.mkdir()
    write_rows(directory / RATE_CSV, [point_row(r, v) for r, v in zip(rates, verdicts)])
    write_rows(directory / HIST_CSV, [h for r in rates for h in hist_rows(r)])
    rate = {"mode": "sweep", "sweep_from": 1000, "sweep_to": 100000000, "ladder": "1-2-5",
            "arrivals": "constant", "duration_ns": 100000000, "message_bytes": 64,
            "p99_bound_source": "given", "p99_bound_ns": 1000000, "sustained_fraction": 0.99,
            "stop_after_consecutive": 2, "points": len(rates), **rate_info}
    meta = {"version": "v1.2-3-gabcdef", "mode": "plain", "accel": "none", "guest": "host",
            "target": "host", "status": "complete", "run_id": "9f86d081884c7d65",
            "files": {RATE_CSV: len(rates), HIST_CSV: len(rates)}, "rate": rate}
    (directory / "run.json").write_text(json.dumps(meta))
    return directory


NOISY = [True, False, True, True, False, False]  # 2,000/s noisy; 20k and 50k stop it
NOISY_STOP = ("2 consecutive points not sustained: 20000/s (achieved 18000/s, 90.0 % of "
              "offered) and 50000/s (achieved 45000/s, 90.0 % of offered)")


def test_a_lone_point_below_the_knee_does_not_lower_it(tmp_path):
    """A sweep with one noisy point not sustained below two sustained ones:
    the knee is above it (the highest rate sustained below the two in a row
    not sustained that stopped the sweep), as run.json has it; the lone
    point is named, not counted, and run.json's reason and bound shown."""
    d = sweep_run(tmp_path / "noisy", NOISY, knee_per_s={"none": 10000},
                  stop_reason={"none": NOISY_STOP},
                  not_sustained_below_knee={"none": [2000]})
    proc = run(d, "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    rate = summary_of(d)["rate"]
    assert rate["knee_per_s"] == {"none": 10000}
    knee = rate["knees"]["none"]
    assert knee["stopped_on_consecutive"] is True
    assert [p["offered_per_s"] for p in knee["not_sustained_above_knee"]] == [20000, 50000]
    assert knee["first_not_sustained"]["offered_per_s"] == 20000
    [lone] = knee["not_sustained_below_knee"]
    assert (lone["offered_per_s"], lone["line"]) == (2000, 3)
    assert lone["why"].startswith("achieved 90.0 % of offered")
    assert knee["stop_reason"] == NOISY_STOP
    assert rate["stop_after_consecutive"] == 2
    assert rate["p99_bound"] == {"ns": 1000000, "source": "given", "quiet_run": None}
    assert [p["offered_per_s"] for p in rate["points"] if p["at_knee"]] == [10000]
    report = (d / "performance_report.txt").read_text()
    assert "none  10,000/s: the next 2 rates in a row were not sustained: 20,000/s " \
           "[achieved 90.0 % of offered (below 99 %)] and 50,000/s [achieved" in report
    assert "below it, a lone rate not sustained does not lower it (the rates above were " \
           "carried): 2,000/s [achieved 90.0 % of offered (below 99 %)]" in report
    assert f"none  {NOISY_STOP}" in report
    assert "Sustained only with p99 at most 1,000.000 µs (given)." in report
    assert "below the first 2 rates in a row not sustained" in " ".join(report.split())
    page = (d / "report.html").read_text()
    assert NOISY_STOP in page and 'data-key="rate.knee_per_s.none"' in page


def test_a_refined_knee_between_the_rungs(tmp_path):
    """A sweep that stopped on 5k and 10k/s with its knee at 2k/s, then
    refined (host_writer's --refine): 3.2k/s sustained, 4k/s not, rows
    written in the order measured. Read in the order of rates, as
    host_writer judges them, the knee is 3.2k/s, stopped by 4k and 5k/s."""
    d = sweep_run(tmp_path / "refined", [True, True, False, False], refine=2,
                  knee_per_s={"none": 3200}, not_sustained_below_knee={"none": []},
                  stop_reason={"none": "2 consecutive points not sustained: 4000/s (...) "
                               "and 5000/s (...)"})
    rows = read_rows(d / RATE_CSV)
    rows += [point_row(3200, True), point_row(4000, False)]
    write_rows(d / RATE_CSV, rows)
    write_rows(d / HIST_CSV, [h for r in (1000, 2000, 5000, 10000, 3200, 4000)
                              for h in hist_rows(r)])
    info = json.loads((d / "run.json").read_text())
    info["files"] = {RATE_CSV: 6, HIST_CSV: len(read_rows(d / HIST_CSV))}
    info["rate"]["points"] = 6
    (d / "run.json").write_text(json.dumps(info))
    proc = run(d, "-q")
    assert proc.returncode == 0, proc.stderr
    rate = summary_of(d)["rate"]
    assert rate["knee_per_s"] == {"none": 3200}
    knee = rate["knees"]["none"]
    assert knee["first_not_sustained"]["offered_per_s"] == 4000
    assert [p["offered_per_s"] for p in knee["not_sustained_above_knee"]] == [4000, 5000]
    assert [p["offered_per_s"] for p in rate["points"] if p["at_knee"]] == [3200]
    # The same rows with run.json's knee at the ladder's 2k/s are refused.
    info["rate"]["knee_per_s"] = {"none": 2000}
    (d / "run.json").write_text(json.dumps(info))
    proc = run(d, "-q")
    assert proc.returncode == 1 and "rate.knee_per_s.none is 2,000" in proc.stderr, proc.stderr


def test_refined_rates_get_ticks_but_no_colliding_labels():
    """On the plots' load axis, the ladder's rungs and the first rate are
    labelled; a refinement's rate between two rungs gets its tick but no
    label unless it is 1.7x from every label (3.2M and 4M/s between 2M and
    5M/s are not; 3k/s from a --sweep-from of 3k is, being the first)."""
    tick_labels = package().kinds.rate.tick_labels
    assert tick_labels([1000, 2000, 5000, 2000000, 5000000, 3200000, 4000000]) == [
        "1,000", "2,000", "5,000", "2,000,000", "5,000,000", "", ""]
    assert tick_labels([3000, 5000, 10000, 7100, 8400]) == [
        "3,000", "5,000", "10,000", "", ""]
    assert tick_labels([1000, 50000, 300000]) == ["1,000", "50,000", "300,000"]


def test_the_old_rules_knee_is_refused(tmp_path):
    """run.json whose knee is the last rate sustained before the first not
    (the rule before two in a row) disagrees with the rows."""
    d = sweep_run(tmp_path / "old", NOISY, knee_per_s={"none": 1000},
                  not_sustained_below_knee={"none": [2000]})
    assert_one_line_error(run(d, "--no-plots"), "run.json: rate.knee_per_s.none is 1,000, but "
                          "the rows of rate_results.csv put it at 10,000 messages/s")


def test_lone_points_unlike_run_json_are_refused(tmp_path):
    d = sweep_run(tmp_path / "lone", NOISY, knee_per_s={"none": 10000},
                  not_sustained_below_knee={"none": []})
    assert_one_line_error(run(d, "--no-plots"), "run.json: rate.not_sustained_below_knee.none "
                          "is [], but the rows of rate_results.csv have [2,000/s] not "
                          "sustained below the knee")


@pytest.mark.parametrize("verdicts, knee, above, stopped", [
    ([True, True, False], 2000, [5000], False),          # ended (--sweep-to) on one
    ([True, True, True], 5000, [], False),               # sustained to the end
    ([False, False], 0, [1000, 2000], True),             # not even the first two
    ([False, True, False, True, False, False], 10000, [20000, 50000], True),
], ids=["sweep-to-not-sustained", "all-sustained", "none", "two-lone"])
def test_where_the_sweep_ends_sets_the_knee(tmp_path, verdicts, knee, above, stopped):
    """The knee when the sweep stops on two in a row, or ends otherwise
    (--sweep-to, out of rates): the highest rate sustained below the stop,
    as rate.c's rate_rule() finds it."""
    rates = [1000, 2000, 5000, 10000, 20000, 50000]
    lone = [r for r, v in zip(rates, verdicts) if not v and r < knee]
    d = sweep_run(tmp_path / "sweep", verdicts, knee_per_s={"none": knee},
                  not_sustained_below_knee={"none": lone},
                  sweep_to=rates[len(verdicts) - 1])
    proc = run(d, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    k = summary_of(d)["rate"]["knees"]["none"]
    assert k["knee_per_s"] == knee and k["stopped_on_consecutive"] is stopped
    assert [p["offered_per_s"] for p in k["not_sustained_above_knee"]] == above
    assert [p["offered_per_s"] for p in k["not_sustained_below_knee"]] == lone
    report = (d / "performance_report.txt").read_text()
    if not knee:
        assert "none  none: its first 2 rates were not sustained: 1,000/s [" in report
    elif not above:
        assert "sustained at every rate measured (up to 5,000/s)" in report


def test_knee_unlike_run_json_is_refused(runs, tmp_path):
    """run.json's knees must be the rows' (a complete run listing them)."""
    info = json.loads((runs["sweep"] / "run.json").read_text())
    knees = dict(info["rate"]["knee_per_s"], none=info["rate"]["knee_per_s"]["none"] + 7)
    bad = copy_run(runs["sweep"], tmp_path / "knee", rate=dict(info["rate"], knee_per_s=knees))
    assert_one_line_error(run(bad, "--no-plots"), "run.json: rate.knee_per_s.none is",
                          "but the rows of rate_results.csv put it at")


# -------------------------------------------------------------------- partial


def test_histograms_cut_short_need_allow_partial(runs, tmp_path):
    """A histogram file whose last line a killed writer left unfinished:
    refused as partial (3); with --allow-partial the rows are analysed, the
    point whose histogram no longer adds up has no spectrum, and a note
    says why."""
    cut = copy_run(runs["single"], tmp_path / "cut")
    hist = cut / HIST_CSV
    lines = hist.read_text().splitlines(keepends=True)
    hist.write_text("".join(lines[:-1]) + lines[-1].rstrip("\n")[:5])
    assert_one_line_error(run(cut, "--no-plots"), "partial results", "is cut short", code=3)
    proc = run(cut, "-q", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(cut)
    assert summary["partial"] is True
    assert summary["rate"]["points"][0]["spectrum"] is None
    assert any(n.startswith("percentile spectrum left out:") and "latencies" in n
               for n in summary["notes"])
    assert "PARTIAL RESULTS" in (cut / "performance_report.txt").read_text()
    png(cut / "rate_latency_vs_load.png")
    assert not (cut / "rate_percentile_spectrum.png").exists()


# ------------------------------------------------------------------ comparison


def test_compare_overlays_the_curves(runs, tmp_path):
    proc = run("--compare", runs["single"], runs["sweep"], "--output", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in tmp_path.iterdir()} == {
        "comparison.txt", "comparison.json", "comparison_rate.png", "report.html"}
    assert png(tmp_path / "comparison_rate.png") > 10_000
    data = json.loads((tmp_path / "comparison.json").read_text())
    metrics = {m["metric"]: m for m in data["metrics"]}
    single = summary_of(runs["single"])["rate"]["points"][0]
    sweep = next(p for p in summary_of(runs["sweep"])["rate"]["points"]
                 if p["point"] == "5,000/s none")
    p50 = metrics["rate 5,000/s none p50"]
    assert p50["values"] == [single["p50_ns"], sweep["p50_ns"]] and p50["better"] == "lower"
    assert p50["ratios"] == pytest.approx([1, sweep["p50_ns"] / single["p50_ns"]])
    assert metrics["rate 5,000/s none achieved"]["better"] == "higher"
    assert metrics["rate knee none"]["values"][1] == \
        summary_of(runs["sweep"])["rate"]["knee_per_s"]["none"]
    if max(summary_of(runs["sweep"])["rate"]["rates"]) >= 10000:
        assert metrics["rate 10,000/s none p99"]["values"][0] is None
    text = (tmp_path / "comparison.txt").read_text()
    assert any(l.startswith("rate 5,000/s none p99 ") for l in text.splitlines())


# ------------------------------------------------------------------ the kernel's counters


def test_counters_beside_p99(runs):
    """ctx-sw/kmsg right after p99 in the table of rate points, and what
    run.json says was counted once."""
    out = runs["single"]
    [point] = summary_of(out)["rate"]["points"]
    report = (out / "performance_report.txt").read_text()
    head = next(line for line in report.splitlines() if line.strip().startswith("rate/s"))
    assert head.split()[head.split().index("p99") + 2] == "ctx-sw/kmsg"
    assert report.count("Counters (run.json):") == 1
    assert "ctx-sw/kmsg (per 1000 messages)" in (out / "report.html").read_text()
    if point["ctx_switches_per_kmsg"] is not None:
        assert point["ctx_switches_per_kmsg"] == pytest.approx(
            1000 * point["host_ctx_switches"] / point["received"], abs=5e-4)


@pytest.mark.parametrize("cells, fragments", [
    ({"ctx_switches_per_kmsg": "999.000"},
     ["column ctx_switches_per_kmsg", "is not 1000 x host_ctx_switches / received"]),
    ({"host_task_clock_ns": "60000000000"},
     ["column host_task_clock_ns", "more time on a CPU than the point's schedule"]),
])
def test_counters_no_measurement_gives_are_refused(runs, tmp_path, cells, fragments):
    for name in (RATE_CSV, "rate_histograms.csv"):
        shutil.copy(runs["single"] / name, tmp_path / name)
    with open(tmp_path / RATE_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[0].update(cells)
    write_rows(tmp_path / RATE_CSV, rows)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--no-plots"],
                          capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, str(tmp_path / RATE_CSV), *fragments)
