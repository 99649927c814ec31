# timeout: 180
"""The matrix kind (analysis/kinds/matrix.py): matrix_results.csv and
matrix.json as vm/matrix.bash writes them, read back by analyze_results.py:
the best cell per headline figure and its ratio to the defaults' cell, a
heatmap per figure over a pair of axes (a line with one axis), failed cells
flagged with their reasons; a malformed table refused with one line; and
the writer (main(): write, same, finished) on fixture cells.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_matrix.py
"""

import csv
import io
import json

from analyze_common import ROOT, assert_one_line_error, package, png, run, summary_of

HEAD = ["cell", "batch", "slots", "status", "workload", "figure", "value", "unit", "better",
        "repetitions", "ci_low", "ci_high", "errors", "reason"]
# msgs/s by (batch, slots): the best is batch=16, slots=256; the defaults'
# cell (16, 256 as host_writer's --help says) is cell 4.
RATES = {("1", "64"): 5.0e5, ("1", "256"): 4.0e5, ("16", "64"): 1.2e6, ("16", "256"): 1.5e6}


def write_matrix(directory, rows=None, plan=None, status="complete"):
    """A matrix's directory: matrix_results.csv, matrix.json, run.json."""
    if rows is None:
        rows = []
        for i, ((batch, slots), rate) in enumerate(RATES.items(), 1):
            rows.append([i, batch, slots, "ok", "stream", "stream h2g 64 B msgs/s", rate,
                         "msgs/s", "higher", 1, "", "", 0, ""])
    with open(directory / "matrix_results.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEAD)
        w.writerows(rows)
    if plan is None:
        plan = {"status": status, "axes": [
            {"name": "batch", "kind": "option", "values": ["1", "16"], "default": "16"},
            {"name": "slots", "kind": "option", "values": ["64", "256"], "default": "256"}],
            "cells": [{"cell": i} for i in range(1, 5)], "boots": []}
    (directory / "matrix.json").write_text(json.dumps(plan))
    (directory / "run.json").write_text(json.dumps({
        "program": "run_test.sh --matrix", "status": status, "run_id": "matrix-1",
        "files": {"matrix_results.csv": len(rows)}}))


def test_best_cell_defaults_and_heatmap(tmp_path):
    # The defaults' cell slower than the best: the ratio is reported.
    rates = dict(RATES)
    rates[("16", "256")], rates[("16", "64")] = 1.2e6, 1.5e6
    rows = [[i, b, s, "ok", "stream", "stream h2g 64 B msgs/s", r, "msgs/s", "higher", 1, "",
             "", 0, ""] for i, ((b, s), r) in enumerate(rates.items(), 1)]
    write_matrix(tmp_path, rows)
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = summary_of(tmp_path)["matrix"]
    fig = m["figures"][0]
    assert fig["best"]["cell"] == 3 and fig["best"]["label"] == "batch=16,slots=64"
    assert m["default_cell"] == 4
    assert abs(fig["default"]["ratio"] - 1.25) < 1e-9
    text = (tmp_path / "performance_report.txt").read_text()
    assert "1.25x better" in text and "Cell 4 is the defaults'" in text
    assert png(tmp_path / "matrix_stream_h2g_64_b_msgs_s.png") > 10_000
    html = (tmp_path / "report.html").read_text()
    assert "Best cell per headline figure" in html and 'id="fig-matrix_stream_h2g_64_b_msgs_s"' in html


def test_lower_is_better_and_one_axis_line(tmp_path):
    rows = [[i, v, "256", "ok", "latency", "latency p50", p50, "ns", "lower", 3, p50 * 0.9,
             p50 * 1.1, 0, ""] for i, (v, p50) in enumerate((("1", 900.0), ("4", 500.0),
                                                             ("16", 700.0)), 1)]
    plan = {"axes": [{"name": "batch", "values": ["1", "4", "16"], "default": "16"},
                     {"name": "slots", "values": ["256"], "default": "256"}]}
    write_matrix(tmp_path, rows, plan)
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    fig = summary_of(tmp_path)["matrix"]["figures"][0]
    assert fig["best"]["cell"] == 2 and fig["default"]["cell"] == 3
    assert abs(fig["default"]["ratio"] - 500 / 700) < 1e-9
    assert "1.4x better" in (tmp_path / "performance_report.txt").read_text()
    png(tmp_path / "matrix_latency_p50.png")


def test_failed_cells_are_flagged_with_reasons(tmp_path):
    rows = [[1, "1", "64", "failed", "", "", "", "", "", "", "", "", "",
             "exit 1: host_writer: 1 of 2 frames failed verification"],
            [2, "1", "256", "ok", "stream", "stream h2g 64 B msgs/s", 4e5, "msgs/s", "higher",
             1, "", "", 0, ""],
            [3, "16", "64", "interrupted", "", "", "", "", "", "", "", "", "",
             "interrupted by SIGINT"]]
    write_matrix(tmp_path, rows)
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = summary_of(tmp_path)["matrix"]
    assert m["counts"] == {"ok": 1, "failed": 1, "interrupted": 1}
    html = (tmp_path / "report.html").read_text()
    assert "1 of 2 frames failed verification" in html and 'class="bad"' in html
    # A cell that failed is grey ("failed") in the heatmap, not a number.
    png(tmp_path / "matrix_stream_h2g_64_b_msgs_s.png")


def test_malformed_tables_are_refused(tmp_path):
    cases = {
        "status": ([1, "1", "64", "great", "stream", "f", 1, "msgs/s", "higher", 1, "", "", 0,
                    ""], "column status: expected ok, failed, interrupted"),
        "value": ([1, "1", "64", "ok", "stream", "f", "", "msgs/s", "higher", 1, "", "", 0, ""],
                  "a measured cell's figure without a value"),
        "better": ([1, "1", "64", "ok", "stream", "f", 1, "msgs/s", "up", 1, "", "", 0, ""],
                   "expected higher or lower"),
        "negative": ([1, "1", "64", "ok", "stream", "f", -1, "msgs/s", "higher", 1, "", "", 0,
                      ""], "below 0"),
    }
    for name, (row, fragment) in cases.items():
        d = tmp_path / name
        d.mkdir()
        write_matrix(d, [row])
        assert_one_line_error(run(d, "--no-plots"), "matrix_results.csv", fragment)


def test_partial_matrix_needs_allow_partial(tmp_path):
    write_matrix(tmp_path, status="interrupted by SIGINT")
    assert_one_line_error(run(tmp_path), "interrupted by SIGINT", code=3)
    proc = run(tmp_path, "--allow-partial", "--no-plots")
    assert proc.returncode == 0, proc.stderr


def state_text(statuses):
    lines = ["run\tbatch=1,16\trun_host_only\t1\t-t stream\t\t\t0",
             "axis\tbatch\toption\t\t1 16\t16"]
    for i, (v, status) in enumerate(zip(("1", "16"), statuses), 1):
        lines.append(f"cell\t{i}\tbatch={v}\tcell-00{i}-batch={v}\t--batch {v}\t\t{status}\t"
                     f"{'exit 1: host_writer: boom' if status == 'failed' else ''}\t1\t")
    return "\n".join(lines) + "\n"


def test_writer_main(tmp_path, monkeypatch):
    package()
    from analysis.kinds import matrix

    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    tmp.mkdir()
    # Cell 1 failed; cell 2 "ok" but its results cannot be read: a failed row too.
    monkeypatch.setattr("sys.stdin", io.StringIO(state_text(["failed", "ok"])))
    monkeypatch.chdir(ROOT)
    assert matrix.main(["write", str(out), str(tmp), "--status", "complete", "--started",
                        "2026-01-01T00:00:00Z", "--table"]) == 0
    rows = list(csv.DictReader(open(tmp / "matrix_results.csv")))
    assert [(r["cell"], r["status"]) for r in rows] == [("1", "failed"), ("2", "failed")]
    assert rows[0]["reason"] == "exit 1: host_writer: boom"
    assert "cannot be read" in rows[1]["reason"]
    plan = json.loads((tmp / "matrix.json").read_text())
    assert plan["counts"]["failed"] == 2 and plan["axes"][0]["default"] == "16"
    info = json.loads((tmp / "run.json").read_text())
    assert info["files"] == {"matrix_results.csv": 2} and info["status"] == "complete"
    # same: the plan again matches; other axes do not.
    for name in ("matrix.json", "run.json", "matrix_results.csv"):
        (out / name).write_bytes((tmp / name).read_bytes())
    monkeypatch.setattr("sys.stdin", io.StringIO(state_text(["not run", "not run"])))
    assert matrix.main(["same", str(out)]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(
        state_text(["not run", "not run"]).replace("1 16\t16", "1 32\t16")))
    assert matrix.main(["same", str(out)]) == 1
    # finished: only a cell whose run.json says complete.
    for name, status in (("cell-001-batch=1", "complete"), ("cell-002-batch=16", "failed: x")):
        (out / name).mkdir()
        (out / name / "run.json").write_text(json.dumps({"status": status}))
    lines = io.StringIO()
    monkeypatch.setattr("sys.stdout", lines)
    assert matrix.main(["finished", str(out), "cell-001-batch=1", "cell-002-batch=16"]) == 0
    assert lines.getvalue() == "cell-001-batch=1\n"
