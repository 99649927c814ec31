# timeout: 300
"""Repetitions (run_test.sh --repeat; analysis/repeat.py, repeated.py,
intervals.py): merging rep-N/ directories into one with a `repetition`
column, the exact interval for the median, summary.json's interval fields,
`settled` for --ci, the instability and busy-host warnings, and the
verdicts of a comparison of repeated runs (A/A: no difference; A/B: a 20 %
slower latency; a single run: no interval). Every run is built here from
fixed values: no live timing.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_repeat.py
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from analyze_common import (ROOT, package, read_rows, run, summary_of, write_bandwidth,
                            write_latency, write_run_json)

# 100 round trips a repetition: a shuffled 1..100 raised by BASE, so each
# repetition's p50 is BASE + 50.5 plus its offset, exactly.
BASE = 950
SHUFFLED = np.random.default_rng(3).permutation(np.arange(1, 101))
# Ten repetitions within about +-3 % of a p50 near 1,000 ns, and ten more
# drawn from the same spread (other values).
SPREAD_A = (-30, -20, -10, 0, 10, 20, 30, -25, 25, 5)
SPREAD_B = (-28, -17, -12, 3, 8, 22, 27, -22, 14, 1)
QUIET = {"before": {"loadavg_1m": 0.2, "steal_jiffies": 10, "cpus": 2},
         "after": {"loadavg_1m": 0.3, "steal_jiffies": 10, "cpus": 2}}


def repeat(*args):
    """python3 -m analysis.repeat ARGS, from the top of the tree."""
    return subprocess.run([sys.executable, "-m", "analysis.repeat", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def make_reps(out, offsets, scale=1.0, frames=False, status=None, load=None):
    """OUT/rep-1/, ... as run_test.sh leaves them: one repetition per offset,
    its round trips SHUFFLED + BASE, times scale, plus offset."""
    out.mkdir(parents=True, exist_ok=True)
    for k, offset in enumerate(offsets, 1):
        rep = out / f"rep-{k}"
        rep.mkdir()
        latency = np.round((SHUFFLED + BASE) * scale + offset).astype(int)
        write_latency(rep, latency=latency, received=latency // 2)
        if frames:
            write_bandwidth(rep)
        write_run_json(rep, run_id=f"run-{k}", status=(status or {}).get(k, "complete"),
                       start_time="2026-01-01T00:00:00Z", end_time="2026-01-01T00:00:10Z")
        (rep / "host_load.json").write_text(json.dumps((load or {}).get(k, QUIET)))
    return out


def merged(out, offsets, *extra, **kw):
    """make_reps() then merge; the merge must succeed."""
    make_reps(out, offsets, **kw)
    proc = repeat("merge", out, "--plan", len(offsets), "--stopped", "done", *extra)
    assert proc.returncode == 0, proc.stderr
    return out


def figure(summary, name):
    return next(f for f in summary["figures"] if f["name"] == name)


def one_error_line(proc):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("analysis.repeat: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# ------------------------------------------------ merge


def test_merge_gives_every_csv_a_repetition_column(tmp_path):
    out = merged(tmp_path / "out", (0, 10, -10), "--ci", "95,5", frames=True)
    for name in ("latency_results.csv", "bandwidth_results.csv"):
        header = (out / name).read_text().splitlines()[0]
        assert header.startswith("repetition,")
        assert header.count("repetition") == 1
        rows = read_rows(out / name)
        each = len(read_rows(out / "rep-1" / name))
        assert [r["repetition"] for r in rows] == ["1"] * each + ["2"] * each + ["3"] * each
    info = json.loads((out / "run.json").read_text())
    reps = info["repetitions"]
    assert reps["count"] == 3 and reps["plan"] == "3" and reps["stopped"] == "done"
    assert reps["ci"] == {"level": 95, "width_pct": 5}
    assert reps["interval"] == "exact order-statistic interval for the median (binomial)"
    assert "latency p50" in reps["unsettled"]  # 3 repetitions never reach 95 %
    assert [p["run_id"] for p in reps["per_repetition"]] == ["run-1", "run-2", "run-3"]
    assert [p["status"] for p in reps["per_repetition"]] == ["complete"] * 3
    assert reps["per_repetition"][0]["host_load"] == QUIET
    assert info["status"] == "complete"
    assert info["files"]["latency_results.csv"] == 300


def test_merge_carries_a_failed_repetition(tmp_path):
    out = make_reps(tmp_path / "out", (0, 5, 10), status={2: "interrupted"})
    proc = repeat("merge", out, "--plan", "3..20", "--stopped", "interrupted")
    assert proc.returncode == 0, proc.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "partial"
    assert info["repetitions"]["per_repetition"][1]["status"] == "interrupted"
    proc = run(out, "--no-plots", "-q")
    assert proc.returncode == 3 and "repetition 2" in proc.stderr, proc.stderr
    proc = run(out, "--no-plots", "-q", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    reasons = summary_of(out)["partial_reasons"]
    assert any(r.startswith("repetition 2: ") and "interrupted" in r for r in reasons)
    assert "the repetitions stopped early: interrupted" in reasons


def test_merge_refuses_to_write_through_a_symlink(tmp_path):
    out = make_reps(tmp_path / "out", (0, 5))
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("untouched\n")
    (out / "latency_results.csv").symlink_to(elsewhere)
    line = one_error_line(repeat("merge", out, "--plan", "2", "--stopped", "done"))
    assert "symbolic link" in line
    assert elsewhere.read_text() == "untouched\n"


def test_a_bad_row_is_named_by_its_line_in_the_merged_file(tmp_path):
    out = merged(tmp_path / "out", (0, 5, 10))
    lines = (out / "latency_results.csv").read_text().splitlines()
    bad = 100 + 7  # a row of repetition 2 (line 102 is its first)
    cells = lines[bad - 1].split(",")
    cells[2] = "x"  # latency_ns
    lines[bad - 1] = ",".join(cells)
    (out / "latency_results.csv").write_text("\n".join(lines) + "\n")
    proc = run(out, "--no-plots", "-q")
    assert proc.returncode == 1
    assert f"latency_results.csv: line {bad}:" in proc.stderr, proc.stderr
    assert str(out / "latency_results.csv") in proc.stderr


# ------------------------------------------------ the interval


def test_exact_interval_for_the_median():
    package()
    from analysis.intervals import coverage, median_interval
    low, high, cover = median_interval(range(10, 0, -1), 0.95)
    assert (low, high) == (2, 9) and cover == pytest.approx(1 - 2 * 11 / 1024)
    assert round(cover, 3) == 0.979
    assert median_interval([5, 1, 4, 2, 3], 0.95) == (1, 5, pytest.approx(1 - 2 * 0.5 ** 5))
    assert median_interval(range(6), 0.95)[:2] == (0, 5)       # n = 6 reaches 95 %
    assert median_interval([7], 0.95) == (7, 7, 0.0)
    assert coverage(20, 6) >= 0.95 > coverage(20, 7)
    assert median_interval(range(1, 21), 0.95)[:2] == (6, 15)


def test_summary_has_the_interval_fields(tmp_path):
    out = merged(tmp_path / "out", (0, 10, -10))
    proc = run(out, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(out)
    p50 = figure(summary, "latency p50")
    assert p50["values"] == [1000.5, 1010.5, 990.5]
    assert p50["median"] == 1000.5 and p50["repetitions"] == 3
    assert (p50["ci_low"], p50["ci_high"]) == (990.5, 1010.5)
    assert p50["ci_level"] == pytest.approx(75.0) and p50["iqr"] == pytest.approx(10.0)
    assert {"latency p99", "latency p99.9"} <= {f["name"] for f in summary["figures"]}
    assert [p["repetition"] for p in summary["per_repetition"]] == [1, 2, 3]
    assert summary["per_repetition"][1]["latency"]["round_trip"]["p50_ns"] == 1010.5
    report = (out / "performance_report.txt").read_text()
    assert "1,000.5 [990.5, 1,010.5]" in report and "REPETITION 3" in report
    page = (out / "report.html").read_text()
    assert "1,000.5 [990.5, 1,010.5]" in page and (out / "repetitions.png").exists()


def test_a_single_run_is_no_repeated_run(tmp_path):
    write_latency(tmp_path)
    write_run_json(tmp_path)
    package()
    from analysis.repeated import is_repeated
    assert not is_repeated(tmp_path)


# ------------------------------------------------ settled


def test_settled_on_a_steady_figure(tmp_path):
    out = make_reps(tmp_path / "out", (0, 2, -2, 1, -1, 3, 0, 1))
    proc = repeat("settled", out, "--ci", "95,5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_not_settled_names_the_figure(tmp_path):
    out = make_reps(tmp_path / "out", (0, 300, -300, 250, -250, 200, -200, 100))
    proc = repeat("settled", out, "--ci", "95,5")
    assert proc.returncode == 1, proc.stderr
    line = next(l for l in proc.stdout.splitlines() if l.startswith("latency p50:"))
    assert "95 % interval [" in line and "wanted +-5 %" in line
    # Too few repetitions to reach the level: never settled, however steady.
    few = make_reps(tmp_path / "few", (0, 0, 0))
    proc = repeat("settled", few, "--ci", "95,5")
    assert proc.returncode == 1 and "covers only 75.0 %" in proc.stdout


@pytest.mark.parametrize("ci", ["150,5", "95,-1", "95", "x,5"])
def test_bad_ci_is_one_line_exit_2(tmp_path, ci):
    out = make_reps(tmp_path / "out", (0, 1))
    assert "--ci" in one_error_line(repeat("settled", out, "--ci", ci))
    assert "--ci" in one_error_line(repeat("merge", out, "--plan", "2", "--stopped", "done",
                                           "--ci", ci))


def test_bad_plan_stopped_or_directory_is_one_line_exit_2(tmp_path):
    out = make_reps(tmp_path / "out", (0, 1))
    one_error_line(repeat("merge", out, "--plan", "5..2", "--stopped", "done"))
    one_error_line(repeat("merge", out, "--plan", "2", "--stopped", "tired"))
    one_error_line(repeat("settled", tmp_path / "none", "--ci", "95,5"))


# ------------------------------------------------ warnings


def test_unstable_figure_and_busy_host_are_flagged(tmp_path):
    busy = {"before": {"loadavg_1m": 3.5, "steal_jiffies": 0, "cpus": 2},
            "after": {"loadavg_1m": 0.1, "steal_jiffies": 100, "cpus": 2}}
    out = merged(tmp_path / "out", (0, 400, -300), load={2: busy})
    proc = run(out, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(out)
    assert figure(summary, "latency p50")["unstable"] is True
    assert summary["per_repetition"][1]["busy"] and not summary["per_repetition"][0]["busy"]
    report = (out / "performance_report.txt").read_text()
    assert "*** UNSTABLE" in report and "latency p50: varies by" in report
    assert "*** BUSY HOST" in report and "repetition 2: load average 3.5" in report
    assert "steal time 5.0 %" in report
    page = (out / "report.html").read_text()
    assert "UNSTABLE" in page and "BUSY HOST" in page


# ------------------------------------------------ comparison verdicts


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdicts")
    a = merged(root / "a", SPREAD_A)
    a2 = merged(root / "a2", SPREAD_B)
    slow = merged(root / "slow", [1.2 * o for o in SPREAD_B], scale=1.2)
    single = root / "single"
    single.mkdir()
    write_latency(single, latency=SHUFFLED + BASE, received=(SHUFFLED + BASE) // 2)
    write_run_json(single)
    return root, a, a2, slow, single


def verdict_of(root, name, *dirs):
    out = root / name
    proc = run("--compare", *dirs, "-o", out, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "comparison.json").read_text())
    return data, next(f for f in data["figures"] if f["name"] == "latency p50")


def test_a_a_comparison_finds_no_difference(runs):
    root, a, a2, _, _ = runs
    data, p50 = verdict_of(root, "aa", a, a2)
    assert p50["verdict"] == "no difference detected"
    assert p50["ci_low"] <= 1 <= p50["ci_high"]
    assert data["seed"] and data["level"] == 95
    assert "VERDICTS" in (root / "aa" / "comparison.txt").read_text()
    assert "no difference detected" in (root / "aa" / "report.html").read_text()


def test_a_b_comparison_finds_the_slower_latency(runs):
    root, a, _, slow, _ = runs
    _, p50 = verdict_of(root, "ab", a, slow)
    assert p50["verdict"] == "slower"
    assert p50["ci_low"] <= 1.2 <= p50["ci_high"] and p50["ci_low"] > 1
    assert p50["ratio"] == pytest.approx(1.2, rel=0.01)
    _, back = verdict_of(root, "ba", slow, a)
    assert back["verdict"] == "faster"


def test_a_single_run_compares_without_an_interval(runs):
    root, a, _, _, single = runs
    data, p50 = verdict_of(root, "single", a, single)
    assert p50["verdict"] == "single run: no interval"
    assert p50["ci_low"] is None and p50["ci_high"] is None
    latency = next(m for m in data["metrics"] if m["metric"] == "latency p50")
    assert latency["values"][0] == pytest.approx(1003.0)  # the median of the repetitions
