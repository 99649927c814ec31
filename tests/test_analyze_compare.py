# timeout: 180
"""Several runs side by side (analysis/compare.py): every figure with its
ratio to the first run, the runs labelled from run.json or by directory,
the files written (comparison.txt, .json, .png, report.html) and only there,
several positional directories compared like --compare, a bad run named in
one line, and a partial run refused (3) or, with --allow-partial, marked.
Each kind's own rows (stream points, sizes, rate points, transports) are
tested in its file.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_compare.py
"""

import json

import numpy as np
import pytest
from analyze_common import (LATENCY, RECEIVED, assert_one_line_error, png_size, run,
                            write_bandwidth, write_latency, write_run_json)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """Three runs: baseline, twice the latency and half the bandwidth, and a
    copy of the baseline without run.json (labelled by its directory)."""
    root = tmp_path_factory.mktemp("cmp")
    base, slow, plain = root / "base", root / "slow", root / "unlabelled-run"
    for d in (base, slow, plain):
        d.mkdir()
    write_latency(base)
    write_bandwidth(base)
    write_run_json(base)
    write_latency(slow, latency=LATENCY * 2, received=RECEIVED * 2)
    write_bandwidth(slow, scale=2)
    write_run_json(slow, mode="doorbell")
    write_latency(plain)
    write_bandwidth(plain)
    out = root / "out"
    proc = run("--compare", base, slow, plain, "--output", out)
    data = json.loads((out / "comparison.json").read_text())
    return root, out, proc, data


def metric(data, name):
    return next(m for m in data["metrics"] if m["metric"] == name)


def test_comparison_labels_and_files(comparison):
    root, out, proc, data = comparison
    assert proc.returncode == 0, proc.stderr
    assert [r["label"] for r in data["runs"]] == [
        "plain/kvm/micro", "doorbell/kvm/micro", "unlabelled-run"]
    assert {p.name for p in out.iterdir()} == {
        "comparison.txt", "comparison.json", "comparison.png", "report.html"}
    assert not (root / "base" / "comparison.txt").exists()
    width, height = png_size(out / "comparison.png")
    assert width >= 1000 and height >= 400


def test_comparison_ratios(comparison):
    data = comparison[3]
    p50 = metric(data, "latency p50")
    assert p50["values"] == pytest.approx([500.5, 1001.0, 500.5])
    assert p50["ratios"] == pytest.approx([1.0, 2.0, 1.0])
    assert metric(data, "latency p99")["ratios"] == pytest.approx([1.0, 2.0, 1.0])
    for frame in ("1080p", "1440p", "4k"):
        assert metric(data, f"bandwidth {frame} mean")["ratios"] == pytest.approx(
            [1.0, 0.5, 1.0], rel=1e-9)
        assert metric(data, f"duration {frame} mean")["ratios"] == pytest.approx(
            [1.0, 2.0, 1.0])
    assert metric(data, "success 1080p")["values"] == pytest.approx([80.0] * 3)


def test_comparison_table_text(comparison):
    _, out, proc, _ = comparison
    text = (out / "comparison.txt").read_text()
    assert text in proc.stdout
    row = next(line for line in text.splitlines() if line.startswith("latency p50"))
    assert "500.5" in row and "1,001.0 (x2.00)" in row and "(x1.00)" in row
    assert "[2] doorbell/kvm/micro" in text


def test_positional_dirs_compare_into_current_directory(tmp_path):
    for name, scale in (("a", 1), ("b", 3)):
        (tmp_path / name).mkdir()
        write_latency(tmp_path / name, latency=np.arange(1, 11) * scale,
                      received=np.arange(1, 11))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = run(tmp_path / "a", tmp_path / "b", "--no-plots", "-q", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((cwd / "comparison.json").read_text())
    assert metric(data, "latency mean")["ratios"] == pytest.approx([1.0, 3.0])
    assert (cwd / "comparison.txt").exists()



def test_compare_with_a_bad_run_names_it(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    write_latency(tmp_path / "good", latency=np.arange(1, 11), received=np.arange(1, 11))
    (tmp_path / "bad" / "latency_results.csv").write_text("iteration,latency_ns,latency_us\n"
                                                          "0,x,1\n")
    proc = run("--compare", tmp_path / "good", tmp_path / "bad", "-o", tmp_path, "--no-plots")
    assert_one_line_error(proc, str(tmp_path / "bad" / "latency_results.csv"), "'x'")



def partial_run(directory, *, status="complete", cut_row=False):
    """A run directory with TRANSFERS and 1000 latency rows; cut_row leaves a
    half row at the end of the latency file, as a killed writer would."""
    write_latency(directory)
    write_bandwidth(directory)
    write_run_json(directory, status=status)
    if cut_row:
        with open(directory / "latency_results.csv", "a") as f:
            f.write("1000,99999")


def test_compare_refuses_a_partial_run_then_marks_it(tmp_path):
    good, dead = tmp_path / "good", tmp_path / "dead"
    for d in (good, dead):
        d.mkdir()
    partial_run(good)
    partial_run(dead, status="running", cut_row=True)
    out = tmp_path / "out"
    proc = run("--compare", good, dead, "-o", out, "--no-plots")
    assert_one_line_error(proc, "partial results", "--allow-partial", str(dead),
                          "still running", code=3)
    proc = run("--compare", good, dead, "-o", out, "--no-plots", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "comparison.json").read_text())
    assert data["partial"] is True
    assert [r["partial"] for r in data["runs"]] == [False, True]
    assert data["runs"][1]["label"].endswith("[PARTIAL]")
    assert "*** [2] is PARTIAL" in (out / "comparison.txt").read_text()

