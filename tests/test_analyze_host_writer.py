# timeout: 240
"""analyze_results.py on real host_writer output: build host_writer and
guest_reader, run them against each other on a shared-memory file in
/dev/shm (no VM), analyse the results directory, and check every figure
against an independent computation from the CSV files (numpy percentiles)
and against the C harness's own summary in run.json; and every results file
host_writer writes, with its columns in order, against the schemas the
analysis reads (`host_writer --schema`).

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_host_writer.py
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from analyze_common import BUILD, SCRIPT, build, host_writer_run, package, skip

ITERATIONS = 2000
FRAME_ITERATIONS = 3
SHM_SIZE = 4 << 20
PERCENTILES = {"p25_ns": 25, "p50_ns": 50, "p75_ns": 75, "p90_ns": 90, "p95_ns": 95,
               "p99_ns": 99, "p99_9_ns": 99.9}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One real run: guest_reader --once on a 4 MiB file in /dev/shm (mode
    0600, removed afterwards), host_writer against it, then the analysis."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        skip("no writable /dev/shm")
    build()
    out = tmp_path_factory.mktemp("host-writer") / "results"
    host_writer_run(out, SHM_SIZE, "--iterations", ITERATIONS, "--frames", "64x64",
                    "--frame-iterations", FRAME_ITERATIONS)
    analysis = subprocess.run([sys.executable, str(SCRIPT), out], capture_output=True,
                              text=True, timeout=120)
    summary = json.loads((out / "summary.json").read_text())
    return out, analysis, summary


def read_csv(path):
    """The CSV as a dict of columns (strings), with the csv module."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {name: [row[name] for row in rows] for name in rows[0]}


def numbers(column):
    return np.array([float(v) for v in column])


def expected_latency(values):
    v = np.asarray(values, dtype=float)
    want = {key: np.percentile(v, p) for key, p in PERCENTILES.items()}
    want.update(count=v.size, min_ns=v.min(), max_ns=v.max(), mean_ns=v.mean(),
                std_ns=np.std(v, ddof=1), iqr_ns=want["p75_ns"] - want["p25_ns"])
    return want


def test_analysis_succeeds(results):
    """Exit 0; a run.json from before the files/run_id keys only warns that the
    files cannot be tied to the run, one from after it says nothing."""
    out, analysis, summary = results
    assert analysis.returncode == 0, analysis.stderr
    assert "Traceback" not in analysis.stderr
    info = json.loads((out / "run.json").read_text())
    assert summary["partial"] is False and summary["status"] == info["status"] == "complete"
    if "files" in info:
        assert info["files"]["latency_results.csv"] == ITERATIONS
        assert summary["run_id"] == info["run_id"]
        assert analysis.stderr == ""
    else:
        assert "cannot be tied to this run" in analysis.stderr
    assert summary["run"]["mode"] == "plain"
    for name in ("performance_report.txt", "latency_histogram.png", "latency_over_time.png",
                 "latency_percentiles.png", "bandwidth_analysis.png"):
        assert (out / name).stat().st_size > 0, name


@pytest.mark.parametrize("part,column", [("round_trip", "latency_ns"),
                                         ("received", "received_ns")])
def test_latency_figures_match_numpy(results, part, column):
    out, _, summary = results
    rows = read_csv(out / "latency_results.csv")
    assert list(rows) == ["iteration", "latency_ns", "latency_us", "received_ns",
                          "received_us"]
    assert [int(i) for i in rows["iteration"]] == list(range(ITERATIONS))
    got = summary["latency"][part]
    for key, value in expected_latency(numbers(rows[column])).items():
        assert got[key] == pytest.approx(value, rel=1e-12), key


def test_latency_agrees_with_the_c_harness(results):
    """host_writer's own percentiles (run.json, one decimal) are the same
    definition: they agree to the rounding."""
    out, _, summary = results
    info = json.loads((out / "run.json").read_text())
    rt = summary["latency"]["round_trip"]
    assert info["latency"]["count"] == rt["count"] == ITERATIONS
    for c_key, key in (("p50_ns", "p50_ns"), ("p90_ns", "p90_ns"), ("p99_ns", "p99_ns"),
                       ("p999_ns", "p99_9_ns"), ("mean_ns", "mean_ns")):
        assert info["latency"][c_key] == pytest.approx(rt[key], abs=0.051), key


def test_bandwidth_figures_match_the_csv(results):
    out, _, summary = results
    rows = read_csv(out / "bandwidth_results.csv")
    assert rows["frame"] == ["64x64"] * FRAME_ITERATIONS
    assert rows["success"] == ["1"] * FRAME_ITERATIONS
    (frame,) = summary["bandwidth"]["frames"]
    assert (frame["frame"], frame["bytes"]) == ("64x64", 64 * 64 * 3)
    assert (frame["successes"], frame["attempts"]) == (FRAME_ITERATIONS, FRAME_ITERATIONS)
    gbps, total = numbers(rows["bandwidth_gbps"]), numbers(rows["total_ns"])
    assert frame["bandwidth_gbps"]["mean"] == pytest.approx(gbps.mean(), rel=1e-12)
    assert frame["bandwidth_gbps"]["std"] == pytest.approx(np.std(gbps, ddof=1), rel=1e-12)
    assert frame["duration_ns"]["mean"] == pytest.approx(total.mean(), rel=1e-12)
    assert frame["transfer_gbps"]["mean"] == pytest.approx(
        numbers(rows["transfer_gbps"]).mean(), rel=1e-12)
    overall = summary["bandwidth"]["overall"]
    assert overall["aggregate_gbps"] == pytest.approx(
        3 * 64 * 64 * 3 / total.sum(), rel=1e-12)
    for phase in ("copy", "handoff", "verify"):
        assert frame["phase_mean_ns"][phase] == pytest.approx(
            numbers(rows[f"{phase}_ns"]).mean(), rel=1e-12)


def test_schema_matches_host_writer(results):
    """Every results file host_writer writes, with its columns in order,
    is the one the analysis reads, and the other way round."""
    proc = subprocess.run([str(BUILD / "host_writer"), "--schema"], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    written = {}
    for line in proc.stdout.splitlines():
        workload, name, columns = line.split(" ")
        assert name not in written, f"{name} printed twice"
        written[name] = (workload, columns.split(","))
    schemas = package().kinds.SCHEMAS
    read = {s.file: (s.workload, list(s.columns)) for s in schemas}
    assert len(read) == len(schemas), "a file spelled twice in SCHEMAS"
    assert read == written
    assert {"latency_results.csv", "bandwidth_results.csv", "stream_results.csv",
            "size_latency_results.csv", "rate_results.csv", "rate_histograms.csv"} <= set(read)
