# timeout: 180
"""analyze_results.py on a long run: 1,000,000 latency rows analysed with
every plot within a time and a memory bound, and its percentiles still exact
over every row (the plots draw a reduced picture, the figures do not).

The bounds are loose, for a busy 2-core machine: on an idle one the run
takes about 4 s and 230 MB. What they catch is a return to per-cell Python
strings (480 MB at this size, 3.7 GB at 10M rows) or to drawing every sample.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_big.py
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "analyze_results.py"
ROWS = 1_000_000
MAX_SECONDS = 45
MAX_RSS_MB = 400


def write_latency(path, rows):
    """A long run's latency file in host_writer's format: integer ns, a
    log-normal body with a tail, first ack about half the round trip."""
    rng = np.random.default_rng(11)
    latency = (rng.lognormal(np.log(170), 0.35, rows) + 40).astype(np.int64)
    latency[rng.integers(0, rows, rows // 1000)] *= 40  # rare slow round trips
    received = latency // 2 + rng.integers(0, 9, rows)
    with open(path, "w") as f:
        f.write("iteration,latency_ns,latency_us,received_ns,received_us\n")
        f.writelines(f"{i},{lat},{lat / 1e3:.3f},{rec},{rec / 1e3:.3f}\n"
                     for i, lat, rec in zip(range(rows), latency.tolist(), received.tolist()))
    return latency, received


def run_measured(*args):
    """Run the script; return (exit status, stderr, seconds, peak RSS in MB)
    of that one child, from wait4()."""
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, stderr, time.monotonic() - start, usage.ru_maxrss / 1024


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("long")
    latency, received = write_latency(directory / "latency_results.csv", ROWS)
    (directory / "run.json").write_text(json.dumps({
        "mode": "plain", "accel": "tcg", "guest": "micro", "status": "complete",
        "run_id": "0123456789abcdef", "files": {"latency_results.csv": ROWS}}))
    status, stderr, seconds, rss_mb = run_measured(directory, "-q")
    print(f"{ROWS:,} rows with plots: {seconds:.1f} s, {rss_mb:.0f} MB")
    return directory, latency, received, status, stderr, seconds, rss_mb


def test_long_run_within_time_and_memory(long_run):
    directory, _, _, status, stderr, seconds, rss_mb = long_run
    assert status == 0, stderr
    assert stderr == ""
    assert seconds < MAX_SECONDS, f"{seconds:.1f} s for {ROWS:,} rows"
    assert rss_mb < MAX_RSS_MB, f"{rss_mb:.0f} MB for {ROWS:,} rows"
    for name in ("latency_histogram.png", "latency_over_time.png",
                 "latency_percentiles.png"):
        assert (directory / name).stat().st_size > 10_000, name


@pytest.mark.parametrize("part", ["round_trip", "received"])
def test_long_run_percentiles_are_exact(long_run, part):
    directory, latency, received = long_run[:3]
    values = latency if part == "round_trip" else received
    got = json.loads((directory / "summary.json").read_text())["latency"][part]
    assert got["count"] == ROWS
    for key, p in (("p50_ns", 50), ("p90_ns", 90), ("p99_ns", 99), ("p99_9_ns", 99.9)):
        assert got[key] == pytest.approx(np.percentile(values, p), rel=1e-12), key
    assert (got["min_ns"], got["max_ns"]) == (values.min(), values.max())
    assert got["mean_ns"] == pytest.approx(values.mean(), rel=1e-12)
