# timeout: 300
"""Tests for analyze_results.py: statistics against independent calculations,
the files and plots it writes, the comparison of runs, partial data, results
that run.json does not vouch for (refused with exit 3, or marked PARTIAL with
--allow-partial), and a clear one-line error (no traceback, exit 1) for every
kind of bad or odd input.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_results.py
The script is always run as a separate process with this interpreter.
"""

import importlib.util
import json
import os
import statistics
import struct
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from analyze_common import assert_one_line_error

SCRIPT = Path(__file__).resolve().parent.parent / "analyze_results.py"
PROG = "analyze_results.py: "

LAT_HEADER = "iteration,latency_ns,latency_us,received_ns,received_us"
BW_HEADER = ("frame,width,height,bytes,iteration,success,error_code,error_name,"
             "copy_ns,handoff_ns,verify_ns,total_ns,guest_read_ns,guest_hash_ns,"
             "transfer_gbps,bandwidth_gbps")
FRAMES = {"1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160)}

# Round-trip latencies 1..1000 ns in a shuffled order: the order statistics
# and so every percentile are known in advance.
LATENCY = np.random.default_rng(7).permutation(np.arange(1, 1001))
RECEIVED = LATENCY // 2 + 3

# Frame transfers: (frame, total_ns or None for a failure, error name).
# 1080p: 8 of 10 succeed; 1440p: 5 of 5 with empty gbps columns (the script
# must compute them); 4k: 3 of 4. Listed largest frame first on purpose.
TRANSFERS = (
    [("4k", t, "ok") for t in (10_000_000, 12_000_000, 8_000_000)]
    + [("4k", None, "bad_size")]
    + [("1080p", t, "ok") for t in (2_000_000, 2_500_000, 3_000_000, 3_100_000,
                                    4_000_000, 5_000_000, 2_200_000, 2_900_000)]
    + [("1080p", None, "digest"), ("1080p", None, "timeout")]
    + [("1440p", t, "ok") for t in (4_000_000, 4_400_000, 5_000_000, 6_000_000,
                                    4_100_000)]
)


def frame_bytes(frame):
    width, height = FRAMES[frame]
    return width * height * 3


def run(*args, cwd=None):
    """Run the script with this interpreter; return the finished process."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def write_any(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def run_cases(root, cases, prepare, *args):
    """Prepare each case in a directory of its own under root, then analyse
    them all, four processes at a time: a run of a small case is mostly one
    pandas import. Returns [(directory, finished process)] in case order."""
    dirs = []
    for i, case in enumerate(cases):
        directory = root / f"case{i}"
        directory.mkdir()
        prepare(directory, *case)
        dirs.append(directory)
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda d: run(d, *args), dirs))
    return list(zip(dirs, procs))


def write_latency(directory, latency=LATENCY, received=RECEIVED):
    rows = [LAT_HEADER] + [f"{i},{l},{l / 1000:.3f},{r},{r / 1000:.3f}"
                           for i, (l, r) in enumerate(zip(latency, received))]
    (directory / "latency_results.csv").write_text("\n".join(rows) + "\n")


def write_bandwidth(directory, transfers=TRANSFERS, scale=1):
    """One row per transfer; total_ns multiplied by scale."""
    rows, counts = [BW_HEADER], {}
    for frame, total, error in transfers:
        it = counts[frame] = counts.get(frame, -1) + 1
        (w, h), b = FRAMES[frame], frame_bytes(frame)
        if total is None:
            code = {"digest": 3, "bad_size": 2}.get(error, 99)
            rows.append(f"{frame},{w},{h},{b},{it},0,{code},{error},,,,,,,,")
            continue
        total *= scale
        copy, handoff = total // 5, total // 20
        verify = total - copy - handoff
        rates = ("", "") if frame == "1440p" else (f"{b / copy!r}", f"{b / total!r}")
        rows.append(f"{frame},{w},{h},{b},{it},1,0,ok,{copy},{handoff},{verify},{total},"
                    f"{verify // 3},{verify // 2},{rates[0]},{rates[1]}")
    (directory / "bandwidth_results.csv").write_text("\n".join(rows) + "\n")


def data_rows(path):
    return path.read_text().count("\n") - 1


def write_run_json(directory, files="count", **info):
    """run.json as host_writer writes it: status complete, a run_id, and the
    rows of each CSV already in directory (files="count"), the files given,
    or no files key at all (files=None, an older host_writer)."""
    base = {"version": "v1.2-3-gabcdef", "mode": "plain", "accel": "kvm",
            "guest": "micro", "qemu_version": "8.2.2", "shm_size": 67108864,
            "latency_iterations": 1000, "pinning": {"host": 2, "vcpu": 3},
            "status": "complete", "run_id": "9f86d081884c7d65"}
    if files == "count":
        files = {p.name: data_rows(p) for p in sorted(directory.glob("*_results.csv"))}
    if files is not None:
        base["files"] = files
    base.update(info)
    (directory / "run.json").write_text(json.dumps(base))


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """One complete run (both CSVs and run.json), analysed once with plots."""
    directory = tmp_path_factory.mktemp("run")
    write_latency(directory)
    write_bandwidth(directory)
    write_run_json(directory)
    proc = run(directory)
    summary = json.loads((directory / "summary.json").read_text())
    return directory, proc, summary


# ---------------------------------------------------------------- statistics


def test_full_run_succeeds_quietly(full_run):
    _, proc, _ = full_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "LATENCY" in proc.stdout and "BANDWIDTH" in proc.stdout


def test_latency_percentiles_match_known_values(full_run):
    rt = full_run[2]["latency"]["round_trip"]
    # Linear interpolation between order statistics of 1..1000.
    assert rt["p50_ns"] == pytest.approx(500.5)
    assert rt["p90_ns"] == pytest.approx(900.1)
    assert rt["p95_ns"] == pytest.approx(950.05)
    assert rt["p99_ns"] == pytest.approx(990.01)
    assert rt["p99_9_ns"] == pytest.approx(999.001)
    assert rt["iqr_ns"] == pytest.approx(750.25 - 250.75)
    # The same figures from the standard library (type 7 = "inclusive").
    data = list(range(1, 1001))
    centiles = statistics.quantiles(data, n=100, method="inclusive")
    assert rt["p99_ns"] == pytest.approx(centiles[98])
    assert rt["p90_ns"] == pytest.approx(centiles[89])
    assert rt["p99_9_ns"] == pytest.approx(
        statistics.quantiles(data, n=1000, method="inclusive")[998])


def test_latency_moments_and_one_way(full_run):
    rt = full_run[2]["latency"]["round_trip"]
    data = list(range(1, 1001))
    assert rt["count"] == 1000
    assert (rt["min_ns"], rt["max_ns"]) == (1, 1000)
    assert rt["mean_ns"] == pytest.approx(statistics.mean(data))
    assert rt["median_ns"] == pytest.approx(statistics.median(data))
    assert rt["std_ns"] == pytest.approx(statistics.stdev(data))
    assert rt["one_way_median_ns"] == pytest.approx(500.5 / 2)
    assert rt["one_way_mean_ns"] == pytest.approx(500.5 / 2)


def test_received_statistics_match_numpy(full_run):
    rc = full_run[2]["latency"]["received"]
    for p, key in ((50, "p50_ns"), (90, "p90_ns"), (99, "p99_ns"), (99.9, "p99_9_ns")):
        assert rc[key] == pytest.approx(np.percentile(RECEIVED, p))
    assert rc["count"] == len(RECEIVED)
    assert rc["mean_ns"] == pytest.approx(statistics.mean(RECEIVED.tolist()))


def expected_frame(frame):
    """Independent figures for one frame of TRANSFERS."""
    totals = [t for f, t, _ in TRANSFERS if f == frame and t is not None]
    b = frame_bytes(frame)
    return {
        "attempts": sum(1 for f, _, _ in TRANSFERS if f == frame),
        "totals": totals,
        "gbps": [b / t for t in totals],
        "copy_gbps": [b / (t // 5) for t in totals],
    }


@pytest.mark.parametrize("frame", ["1080p", "1440p", "4k"])
def test_bandwidth_per_frame(full_run, frame):
    frames = {f["frame"]: f for f in full_run[2]["bandwidth"]["frames"]}
    got, want = frames[frame], expected_frame(frame)
    assert got["bytes"] == frame_bytes(frame)
    assert (got["successes"], got["attempts"]) == (len(want["totals"]), want["attempts"])
    assert got["success_rate"] == pytest.approx(len(want["totals"]) / want["attempts"])
    bw = got["bandwidth_gbps"]
    assert bw["mean"] == pytest.approx(statistics.mean(want["gbps"]))
    assert bw["std"] == pytest.approx(statistics.stdev(want["gbps"]))
    assert (bw["min"], bw["max"]) == pytest.approx((min(want["gbps"]), max(want["gbps"])))
    assert got["duration_ns"]["mean"] == pytest.approx(statistics.mean(want["totals"]))
    assert got["transfer_gbps"]["mean"] == pytest.approx(statistics.mean(want["copy_gbps"]))


def test_bandwidth_frames_ordered_and_errors_counted(full_run):
    frames = full_run[2]["bandwidth"]["frames"]
    assert [f["frame"] for f in frames] == ["1080p", "1440p", "4k"]
    assert frames[0]["errors"] == {"digest": 1, "timeout": 1}
    assert frames[2]["errors"] == {"bad_size": 1}


def test_bandwidth_overall(full_run):
    overall = full_run[2]["bandwidth"]["overall"]
    ok = [(f, t) for f, t, _ in TRANSFERS if t is not None]
    gbps = [frame_bytes(f) / t for f, t in ok]
    assert (overall["total"], overall["successful"], overall["failed"]) == (19, 16, 3)
    assert overall["peak_gbps"]["value"] == pytest.approx(max(gbps))
    assert overall["average_gbps"] == pytest.approx(statistics.mean(gbps))
    assert overall["aggregate_gbps"] == pytest.approx(
        sum(frame_bytes(f) for f, _ in ok) / sum(t for _, t in ok))
    assert overall["fastest_ns"] == {"value": 2_000_000, "frame": "1080p", "iteration": 0}
    assert overall["slowest_ns"]["value"] == 12_000_000


# ------------------------------------------------------- report and plots


def test_report_text(full_run):
    directory, proc, _ = full_run
    report = (directory / "performance_report.txt").read_text()
    assert report == proc.stdout[:len(report)]  # printed as well
    assert "plain / kvm, micro guest" in report.splitlines()[0]
    for text in ("qemu_version", "8.2.2", "pinning.vcpu", "64 MiB",
                 "linear interpolation between order statistics", "C harness",
                 "990.0", "999.0", "500.5", "8/10", "5/5", "3/4", "digest x1",
                 "one-way", "IQR", "round trip (ns)", "first ack (ns)"):
        assert text in report, text


PLOTS = ("latency_histogram.png", "latency_over_time.png",
         "latency_percentiles.png", "bandwidth_analysis.png")


@pytest.mark.parametrize("name", PLOTS)
def test_plots_written(full_run, name):
    path = full_run[0] / name
    assert path.stat().st_size > 10_000
    width, height = png_size(path)
    assert 800 <= width <= 3000 and 400 <= height <= 2000, (width, height)


def test_summary_is_strict_json_with_run_info(full_run):
    directory, _, summary = full_run
    text = (directory / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert summary["run"]["mode"] == "plain"
    assert summary["label"] == "plain / kvm, micro guest"
    assert summary["notes"] == []


def test_output_option_leaves_input_alone(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out" / "nested"
    src.mkdir()
    write_latency(src, latency=np.arange(10, 20), received=np.arange(5, 15))
    proc = run("--results", src, "--output", out, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in src.iterdir()) == ["latency_results.csv"]
    assert {p.name for p in out.iterdir()} == {"performance_report.txt", "summary.json"}


def test_default_directory_is_results(tmp_path):
    (tmp_path / "results").mkdir()
    write_latency(tmp_path / "results", latency=np.arange(1, 11),
                  received=np.arange(1, 11))
    proc = run("--no-plots", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["latency"]["round_trip"]["p50_ns"] == pytest.approx(5.5)


def test_no_run_json_is_a_warning(tmp_path):
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(PROG + "warning:") and "no run.json" in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run"] is None and tmp_path.name in summary["label"]
    assert summary["partial"] is False
    assert any("no run.json" in n for n in summary["notes"])


def test_help_describes_defaults_and_exit_codes():
    proc = run("--help")
    assert proc.returncode == 0
    for text in ("default: results/", "--compare", "--output", "current directory",
                 "exit status", "--allow-partial", "PARTIAL"):
        assert text in proc.stdout, text
    codes = proc.stdout[proc.stdout.index("exit status"):]
    for code in ("0  ok", "1  bad or unusable data", "2  usage error", "3  partial"):
        assert code in codes, code


def test_script_header_for_uv_and_headless():
    head = SCRIPT.read_text().split('"""')[0]
    assert "# /// script" in head
    for package in ("pandas", "numpy", "matplotlib"):
        assert f'"{package}' in head, package
    source = SCRIPT.read_text()
    assert source.index('matplotlib.use("Agg")') < source.index("import matplotlib.pyplot")


# ------------------------------------------------------------- partial data


def test_latency_only(tmp_path):
    write_latency(tmp_path, latency=np.array([370]), received=np.array([180]))
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["bandwidth"] is None
    assert summary["latency"]["round_trip"]["std_ns"] is None  # one sample
    note = ("bandwidth_results.csv, stream_results.csv, size_latency_results.csv, "
            "rate_results.csv, rate_histograms.csv not found: their sections are skipped")
    assert note in summary["notes"]
    assert note in (tmp_path / "performance_report.txt").read_text()
    for name in PLOTS[:3]:
        png_size(tmp_path / name)
    assert not (tmp_path / "bandwidth_analysis.png").exists()


def test_bandwidth_only(tmp_path):
    write_bandwidth(tmp_path)
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["latency"] is None
    assert any(n.startswith("latency_results.csv, stream_results.csv") and "not found" in n
               for n in summary["notes"])
    png_size(tmp_path / "bandwidth_analysis.png")
    assert not any((tmp_path / name).exists() for name in PLOTS[:3])


def test_every_frame_failed_reports_then_exits_1(tmp_path):
    write_bandwidth(tmp_path, transfers=[("1080p", None, "digest")] * 2
                    + [("4k", None, "timeout")])
    write_run_json(tmp_path)
    proc = run(tmp_path, "-q")
    assert_one_line_error(proc, "bandwidth_results.csv", "every frame transfer failed",
                          "0/3")
    report = (tmp_path / "performance_report.txt").read_text()
    assert "0/2" in report and "0/1" in report and "digest x2" in report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["bandwidth"]["overall"]["success_rate"] == 0
    png_size(tmp_path / "bandwidth_analysis.png")


# --------------------------------------------------------------- comparison


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
        "comparison.txt", "comparison.json", "comparison.png"}
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


# ---------------------------------------------------------------- bad input

LAT_OK_HEADER = "iteration,latency_ns,latency_us"
BAD_FILES = [
    ("latency_results.csv", "", "file is empty"),
    ("latency_results.csv", "\n  \n", "file is empty"),
    ("latency_results.csv", LAT_OK_HEADER + "\n", "header but no data rows"),
    ("latency_results.csv", "iteration,latency_us\n0,0.37\n", "missing column latency_ns"),
    ("latency_results.csv", "frame,bytes\n4k,1\n", "missing columns iteration, latency_ns"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0,370,0.370\n1,abc,0.1\n",
     "line 3: column latency_ns: non-numeric value 'abc'"),
    # A blank line and quotes take the careful reader: line numbers still exact.
    ("latency_results.csv", LAT_OK_HEADER + '\n0,370,0.370\n\n"1","37x","0.1"\n',
     "line 4: column latency_ns: non-numeric value '37x'"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0,370,0.370\n1,380\n",
     "line 3: 2 fields, the header has 3"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0,370,0.370,9\n",
     "line 2: 4 fields, the header has 3"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0,,0.1\n", "line 2: column latency_ns: empty value"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0,-5,0.1\n", "below 0"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0,inf,0.1\n", "not a finite number"),
    ("latency_results.csv", LAT_OK_HEADER + "\n0.5,370,0.37\n",
     "column iteration: expected an integer"),
    ("latency_results.csv", "iteration,latency_ns,latency_ns\n0,1,1\n", "appears twice"),
    ("latency_results.csv", b"\xff\xfe\x00\x89PNG\x00\x00", "line 1: NUL byte: not a text file"),
    ("bandwidth_results.csv", BW_HEADER + "\n4k,3840,2160,24883200,0,yes,0,ok,,,,1,,,,\n",
     "column success: expected 0 or 1, got 'yes'"),
    ("bandwidth_results.csv", "frame,bytes,total_ns\n4k,24883200,1\n", "missing column success"),
    ("bandwidth_results.csv", BW_HEADER + "\n4k,3840,2160,24883200,0,1,0,ok,,,,,,,,\n",
     "line 2: column total_ns: a successful transfer needs a time of at least 1 ns"),
    ("bandwidth_results.csv", BW_HEADER + "\n4k,3840,2160,24.9MB,0,0,3,digest,,,,,,,,\n",
     "column bytes: non-numeric value '24.9MB'"),
    ("bandwidth_results.csv", BW_HEADER + "\n4k,3840,2160,24883200,0,0,3,digest,,,,,,,,\n"
     "4k,3840,2160,6220800,1,0,3,digest,,,,,,,,\n", "frame '4k' appears with different byte"),
]


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("bad-file"), BAD_FILES,
                     lambda d, name, content, _: write_any(d / name, content), "--no-plots")


@pytest.mark.parametrize("case", range(len(BAD_FILES)),
                         ids=[f"{n.split('_')[0]}-{m.split(':')[-1].strip()[:30]}"
                              for n, _, m in BAD_FILES])
def test_bad_file(bad_file_runs, case):
    name, _, message = BAD_FILES[case]
    directory, proc = bad_file_runs[case]
    assert_one_line_error(proc, str(directory / name), message)
    assert not (directory / "performance_report.txt").exists()


def test_bad_latency_next_to_good_bandwidth_is_an_error(tmp_path):
    write_bandwidth(tmp_path)
    (tmp_path / "latency_results.csv").write_text("")
    proc = run(tmp_path, "--no-plots")
    assert_one_line_error(proc, "latency_results.csv", "file is empty")


def test_missing_directory(tmp_path):
    proc = run(tmp_path / "nope", "--no-plots")
    assert_one_line_error(proc, "nope", "no such directory")


def test_directory_without_results(tmp_path):
    proc = run(tmp_path, "--no-plots")
    assert_one_line_error(proc, str(tmp_path), "no results: none of latency_results.csv, "
                          "bandwidth_results.csv, stream_results.csv, "
                          "size_latency_results.csv, rate_results.csv, "
                          "rate_histograms.csv found")


def test_compare_with_a_bad_run_names_it(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    write_latency(tmp_path / "good", latency=np.arange(1, 11), received=np.arange(1, 11))
    (tmp_path / "bad" / "latency_results.csv").write_text(LAT_OK_HEADER + "\n0,x,1\n")
    proc = run("--compare", tmp_path / "good", tmp_path / "bad", "-o", tmp_path, "--no-plots")
    assert_one_line_error(proc, str(tmp_path / "bad" / "latency_results.csv"), "'x'")


BAD_RUN_JSON = [
    ('{"status": "complete", "x": 1e999}', "number '1e999' is out of range"),
    ('{"status": "complete", "x": NaN}', "NaN is not a number JSON allows"),
    ('{"x": 123456789012345678901234567890}', "is out of range"),
    ('{"status": "complete", "host": "\\ud800"}', "'host': a lone UTF-16 surrogate"),
    ('{"status": "complete", "status": "running"}', "key 'status' appears twice"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a":' * 40 + "1" + "}" * 40, "nested too deeply"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"status": 5}', "status: expected a sentence"),
    ('{"status": "complete", "run_id": 7}', "run_id: expected a string"),
    ('{"status": "complete", "files": [1]}', "files: expected an object"),
    ('{"status": "complete", "files": {"latency_results.csv": -1}}',
     "'latency_results.csv': expected a row count, got '-1'"),
    ('{"status": "complete", "files": {"latency_results.csv": true}}',
     "expected a row count, got 'True'"),
    (b'{"host": "\xff"}', "line 1: byte 0xff is not UTF-8 text"),
    (b'{"host": "a\x00"}', "NUL byte"),
    ('{"x": "' + "a" * 2_000_000 + '"}', "more than the 1,048,576"),
]


def prepare_run_json(directory, content, _):
    write_latency(directory, latency=np.arange(1, 11), received=np.arange(1, 11))
    write_any(directory / "run.json", content)


@pytest.fixture(scope="module")
def bad_run_json_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("bad-json"), BAD_RUN_JSON, prepare_run_json,
                     "--no-plots", "--allow-partial")


@pytest.mark.parametrize("case", range(len(BAD_RUN_JSON)),
                         ids=[m[:30] for _, m in BAD_RUN_JSON])
def test_bad_run_json(bad_run_json_runs, case):
    """run.json decides whether results are whole: one that cannot be read
    is bad data (exit 1, even with --allow-partial), never a traceback and
    never silently ignored."""
    directory, proc = bad_run_json_runs[case]
    assert_one_line_error(proc, str(directory / "run.json"), BAD_RUN_JSON[case][1])
    assert not (directory / "summary.json").exists()


LAT_ROWS = "".join(f"{i},{300 + i},0.3,{150 + i},0.15\n" for i in range(4))
ODD_LATENCY = [
    ("1e308 latency", f"{LAT_HEADER}\n0,1e308,1,1,1\n",
     "line 2: column latency_ns: 1e308 is out of range (more than 2^64): accepted 0..2^64"),
    ("1e999 latency", f"{LAT_HEADER}\n0,1e999,1,1,1\n",
     "line 2: column latency_ns: not a finite number: '1e999'"),
    ("NUL in a number", f"{LAT_HEADER}\n{LAT_ROWS}4,3\x0070,1,1,1\n",
     "line 6: NUL byte"),
    ("nan", f"{LAT_HEADER}\n{LAT_ROWS}4,nan,1,1,1\n",
     "line 6: column latency_ns: non-numeric value 'nan'"),
    ("underscore", f"{LAT_HEADER}\n{LAT_ROWS}4,1_000,1,1,1\n",
     "line 6: column latency_ns: non-numeric value '1_000'"),
    ("fullwidth digit", f"{LAT_HEADER}\n{LAT_ROWS}4,\uff13,1,1,1\n",
     "line 6: column latency_ns: non-numeric value"),
    ("negative received", f"{LAT_HEADER}\n{LAT_ROWS}4,5,1,-1,1\n",
     "line 6: column received_ns: value -1 is below 0"),
    ("empty iteration", f"{LAT_HEADER}\n{LAT_ROWS},5,1,1,1\n",
     "line 6: column iteration: empty value"),
    ("huge iteration", f"{LAT_HEADER}\n{LAT_ROWS}1e20,5,1,1,1\n",
     "line 6: column iteration: 1e20 is out of range (more than 2^53-1): accepted "
     "0..2^53-1"),
    ("duplicated iteration", f"{LAT_HEADER}\n{LAT_ROWS}2,5,1,1,1\n",
     "line 6: iteration 2 appears twice (first on line 4)"),
    ("two files joined", f"{LAT_HEADER}\n{LAT_ROWS}{LAT_HEADER}\n{LAT_ROWS}",
     "line 6 repeats the header (two files joined into one?)"),
    ("no header", LAT_ROWS, "line 1 is data, not a header (expected columns "
     "iteration, latency_ns"),
    ("non-UTF-8", f"{LAT_HEADER}\n{LAT_ROWS}".encode() + b"4,5,1,\xe9,1\n",
     "line 6: byte 0xe9 is not UTF-8 text"),
    ("huge line", f"{LAT_HEADER}\n{LAT_ROWS}4," + "7" * 5_000_000 + ",1,1,1\n",
     "line 6: 5,000,008 bytes long, longer than any results row"),
    ("huge line of commas", f"{LAT_HEADER}\n{LAT_ROWS}" + "1," * 2_000_000 + "\n",
     "line 6: 4,000,000 bytes long"),
    ("huge unfinished line", f"{LAT_HEADER}\n{LAT_ROWS}" + "7" * 5_000_000,
     "line 6: 5,000,000 bytes without an end of line"),
    ("huge header", "a," * 2_000_000 + "\n", "line 1: 4,000,000 bytes long, not a CSV header"),
    ("quoted huge field", f'{LAT_HEADER}\n{LAT_ROWS}4,"' + "7" * 200_000 + '",1,1,1\n',
     "line 6: 200,010 bytes long"),
    ("unfinished row too wide", f"{LAT_HEADER}\n{LAT_ROWS}4,5,1,1,1,1",
     "line 6: 6 fields, the header has 5"),
    ("only a header, unfinished", LAT_HEADER, "no complete line"),
]


@pytest.fixture(scope="module")
def odd_latency_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("odd"), ODD_LATENCY,
                     lambda d, _, content, __: write_any(d / "latency_results.csv", content),
                     "--no-plots", "--allow-partial")


@pytest.mark.parametrize("case", range(len(ODD_LATENCY)), ids=[n for n, _, _ in ODD_LATENCY])
def test_odd_latency_file(odd_latency_runs, case):
    """Malformed latency files: one line naming the file, the line and what is
    wrong (exit 1), even with --allow-partial: they are not partial, but bad."""
    directory, proc = odd_latency_runs[case]
    assert_one_line_error(proc, str(directory / "latency_results.csv"), ODD_LATENCY[case][2])
    assert not (directory / "summary.json").exists()


def test_results_that_are_not_files(tmp_path):
    """A directory, a FIFO (reading it would block), a symlink loop and a
    dangling symlink where a CSV should be: one line each, promptly."""
    cases = {"dir": ("is a directory",), "fifo": ("not a regular file",),
             "loop": ("cannot read", "symbolic links"), "dangling": ("dangling",)}
    for case, fragments in cases.items():
        directory = tmp_path / case
        directory.mkdir()
        path = directory / "latency_results.csv"
        if case == "dir":
            path.mkdir()
        elif case == "fifo":
            os.mkfifo(path)
        elif case == "loop":
            path.symlink_to(path.name)
        else:
            path.symlink_to("nowhere")
        assert_one_line_error(run(directory, "--no-plots"), str(path), *fragments)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file of mode 000")
def test_unreadable_csv(tmp_path):
    path = tmp_path / "latency_results.csv"
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    path.chmod(0)
    assert_one_line_error(run(tmp_path, "--no-plots"), str(path), "Permission denied")


ODD_BUT_VALID = [
    ("CRLF and a blank line", LAT_HEADER + "\r\n" + LAT_ROWS.replace("\n", "\r\n")
     + "\r\n"),
    ("byte-order mark", "\ufeff" + LAT_HEADER + "\n" + LAT_ROWS),
    ("quoted fields", LAT_HEADER + "\n" + LAT_ROWS.replace(",0.3,", ',"0.3",')),
    ("reordered and extra columns", "latency_ns,note,iteration,received_ns\n"
     + "".join(f"{300 + i},x{i},{i},{150 + i}\n" for i in range(4))),
    ("spaces around values", LAT_HEADER + "\n" + LAT_ROWS.replace(",", " , ")),
]


@pytest.mark.parametrize("name,content", ODD_BUT_VALID, ids=[n for n, _ in ODD_BUT_VALID])
def test_odd_but_valid_latency_file(tmp_path, name, content):
    """Unusual but well-formed CSV is read like host_writer's own."""
    (tmp_path / "latency_results.csv").write_text(content)
    write_run_json(tmp_path, files={"latency_results.csv": 4})
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    rt = json.loads((tmp_path / "summary.json").read_text())["latency"]["round_trip"]
    assert rt["count"] == 4
    assert rt["p50_ns"] == pytest.approx(np.percentile([300, 301, 302, 303], 50))
    assert rt["p99_ns"] == pytest.approx(np.percentile([300, 301, 302, 303], 99))


# ------------------------------------- values out of range, impossible rows

# Every integer column takes 0..2^53-1 at most (exact as a double): from
# 2^53 a count no longer reads back exactly, from 2^63 an int64 wraps
# (issue 20: 2^63 errors became "-9,223,372,036,854,775,808 bad messages").
COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"
BW_ROW = "64x64,64,64,12288,0,1,0,ok,1000,500,8000,9500,4000,3000,12.2880,1.2935"
LAT_CSV, BW_CSV = "latency_results.csv", "bandwidth_results.csv"


def lat_row(**cells):
    """A latency file of four good rows, the last with cells replaced."""
    row = dict(zip(LAT_HEADER.split(","), ["3", "303", "0.303", "151", "0.151"]))
    row.update({k: str(v) for k, v in cells.items()})
    return f"{LAT_HEADER}\n{LAT_ROWS[:LAT_ROWS.rindex('3,303')]}{','.join(row.values())}\n"


def bw_row(**cells):
    """A frames file of one good row and a second with cells replaced."""
    names = BW_HEADER.split(",")
    row = dict(zip(names, BW_ROW.split(",")), iteration="1")
    row.update({k: str(v) for k, v in cells.items()})
    return f"{BW_HEADER}\n{BW_ROW}\n{','.join(row.values())}\n"


OUT_OF_RANGE = [
    # (name, file, content, fragments of the one error line)
    ("iteration 2^63", LAT_CSV, lat_row(iteration=2 ** 63),
     "line 5: column iteration: 9223372036854775808 is out of range (more than 2^53-1): "
     + COUNT_RANGE),
    ("iteration 2^64-1", LAT_CSV, lat_row(iteration=2 ** 64 - 1),
     "line 5: column iteration: 18446744073709551615 is out of range", COUNT_RANGE),
    ("iteration 2^64", LAT_CSV, lat_row(iteration=2 ** 64),
     "line 5: column iteration: 18446744073709551616 is out of range", COUNT_RANGE),
    ("iteration 2^53", LAT_CSV, lat_row(iteration=2 ** 53),
     "line 5: column iteration: 9007199254740992 is out of range", COUNT_RANGE),
    ("iteration -1", LAT_CSV, lat_row(iteration=-1),
     "line 5: column iteration: value -1 is below 0: " + COUNT_RANGE),
    ("latency 1e20", LAT_CSV, lat_row(latency_ns="1e20"),
     "line 5: column latency_ns: 1e20 is out of range (more than 2^64): accepted 0..2^64"),
    ("latency past 2^64", LAT_CSV, lat_row(latency_ns=18_500_000_000_000_000_000),
     "line 5: column latency_ns: 18500000000000000000 is out of range (more than 2^64)"),
    ("latency -inf", LAT_CSV, lat_row(latency_ns="-inf"),
     "line 5: column latency_ns: not a finite number: '-inf'"),
    ("received NaN", LAT_CSV, lat_row(received_ns="NaN"),
     "line 5: column received_ns: non-numeric value 'NaN'"),
    ("received_us -1", LAT_CSV, lat_row(received_us=-1),
     "line 5: column received_us: value -1 is below 0: accepted 0..2^64"),
    ("frame bytes 1e19", BW_CSV, bw_row(bytes="1e19"),
     "line 3: column bytes: 1e19 is out of range (more than 12,884,901,888): accepted "
     "1..12,884,901,888 (--frames WxH: 3 bytes a pixel)"),
    ("frame bytes 2^64", BW_CSV, bw_row(bytes=2 ** 64),
     "line 3: column bytes: 18446744073709551616 is out of range"),
    ("frame width 65537", BW_CSV, bw_row(width=65537),
     "line 3: column width: 65537 is out of range (more than 65,536): accepted 1..65,536"),
    ("frame height 0", BW_CSV, bw_row(height=0),
     "line 3: column height: value 0 is below 1: accepted 1..65,536"),
    ("frame iteration 2^63", BW_CSV, bw_row(iteration=2 ** 63),
     "line 3: column iteration: 9223372036854775808 is out of range", COUNT_RANGE),
    ("error code -1", BW_CSV, bw_row(error_code=-1),
     "line 3: column error_code: value -1 is below 0: accepted 0..4,294,967,295"),
    ("error code 2^32", BW_CSV, bw_row(error_code=2 ** 32),
     "line 3: column error_code: 4294967296 is out of range"),
    ("copy past 2^64", BW_CSV, bw_row(copy_ns=18_500_000_000_000_000_000),
     "line 3: column copy_ns: 18500000000000000000 is out of range (more than 2^64)"),
    ("total NaN", BW_CSV, bw_row(total_ns="nan"),
     "line 3: column total_ns: non-numeric value 'nan'"),
    ("rate inf", BW_CSV, bw_row(transfer_gbps="inf"),
     "line 3: column transfer_gbps: not a finite number: 'inf'"),
    # Rows whose figures disagree: no transfer gives them.
    ("bytes not WxHx3", BW_CSV, bw_row(frame="odd", bytes=12289,
                                         transfer_gbps="12.2890", bandwidth_gbps="1.2936"),
     "line 3: column bytes: 12289 is not width x height x 3 (12288): a row no measurement "
     "can give"),
    ("total not the phases", BW_CSV, bw_row(total_ns=9501),
     "line 3: column total_ns: 9501 is not copy_ns + handoff_ns + verify_ns (9500)"),
    ("transfer rate", BW_CSV, bw_row(transfer_gbps=99),
     "line 3: column transfer_gbps: 99 is not bytes / copy_ns (12.2880)"),
    ("bandwidth rate", BW_CSV, bw_row(bandwidth_gbps="1.3"),
     "line 3: column bandwidth_gbps: 1.3 is not bytes / total_ns (1.2935)"),
]


@pytest.fixture(scope="module")
def out_of_range_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("range"), OUT_OF_RANGE,
                     lambda d, _, name, content, *__: write_any(d / name, content),
                     "--no-plots", "--allow-partial")


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)), ids=[c[0] for c in OUT_OF_RANGE])
def test_out_of_range_or_impossible(out_of_range_runs, case):
    """A value outside what host_writer can write (a count from 2^53, a
    negative one, a size or a frame side past its option's limit, NaN,
    infinity) or a row whose figures disagree: one line naming the file,
    the line, the column and the range accepted; exit 1, no traceback, no
    output; even with --allow-partial."""
    _, name, _, *fragments = OUT_OF_RANGE[case]
    directory, proc = out_of_range_runs[case]
    assert_one_line_error(proc, f"{directory / name}: ", *fragments)
    assert not (directory / "summary.json").exists()
    assert not (directory / "performance_report.txt").exists()


def test_largest_values_accepted(tmp_path):
    """The edges of the ranges are data: iteration 2^53-1, a latency of
    2^64 ns (what 2^64-1 reads as), a 65536x65536 frame and an error code
    of 2^32-1 go through, exactly."""
    (tmp_path / "latency_results.csv").write_text(
        lat_row(iteration=2 ** 53 - 1, latency_ns=2 ** 64 - 1))
    side, size = 65536, 3 * 65536 ** 2
    (tmp_path / "bandwidth_results.csv").write_text(
        f"{BW_HEADER}\n{BW_ROW}\n"
        f"{side}x{side},{side},{side},{size},0,0,{2 ** 32 - 1},x,,,,,,,,\n")
    write_run_json(tmp_path)
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["latency"]["round_trip"]["max_ns"] == 2.0 ** 64
    frames = {f["frame"]: f for f in summary["bandwidth"]["frames"]}
    assert frames["65536x65536"]["bytes"] == size
    assert (frames["65536x65536"]["width"], frames["65536x65536"]["height"]) == (side, side)


def load_module():
    """analyze_results.py imported into this process."""
    spec = importlib.util.spec_from_file_location("analyze_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["analyze_results"] = module
    spec.loader.exec_module(module)
    return module


def test_every_column_has_a_range_host_writer_can_write():
    """Every number host_writer writes is unsigned or a non-negative
    double: no column accepts a negative value, none more than 2^64, and
    no integer column more than 2^53-1 (exact as a double, far from an
    int64's wrap)."""
    module = load_module()
    for schema in module.SCHEMAS:
        for name, column in schema.columns.items():
            if not column.numeric:
                continue
            assert column.minimum >= 0, (schema.file, name)
            assert column.top <= 2.0 ** 64, (schema.file, name)
            if column.integer:
                assert column.top <= 2 ** 53 - 1, (schema.file, name)
    assert module.MAX_MESSAGE == 64 << 20  # workloads/sizes.h IVB_MAX_MESSAGE


@pytest.mark.parametrize("fault,message", [
    (lambda: np.float64(1e308) * 10, "overflow encountered in"),
    (lambda: np.array([2.0 ** 63]).astype(np.int64), "invalid value encountered in cast"),
    (lambda: np.mean(np.array([])), "Mean of empty slice"),
    (lambda: np.float64(1) / 0, "divide by zero"),
])
def test_a_numeric_error_past_the_checks_is_one_line(tmp_path, capsys, monkeypatch, fault,
                                                       message):
    """The safety net behind the checks: any numpy floating-point error or
    RuntimeWarning during the analysis (here made to happen in the
    statistics) stops it with one line and exit 1, never a silent wrong
    figure or a traceback; numpy's error settings are left as they were."""
    module = load_module()
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    write_run_json(tmp_path)
    before = np.geterr()
    real = module.latency_stats
    monkeypatch.setattr(module, "latency_stats", lambda v: (fault(), real(v))[1])
    assert module.main([str(tmp_path), "--no-plots", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(PROG + f"{tmp_path}: stopped on a numeric "
                                                           "error (")
    assert message in err and "Traceback" not in err
    assert np.geterr() == before


def test_output_that_cannot_be_written(tmp_path):
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    write_run_json(tmp_path)
    (tmp_path / "taken").write_text("a file, not a directory")
    proc = run(tmp_path, "-o", tmp_path / "taken", "--no-plots")
    assert_one_line_error(proc, "taken")


# ------------------------------------------- run.json's status and files


def partial_run(directory, *, status="complete", files="count", cut_row=False,
                bandwidth=True):
    """A run directory with TRANSFERS and 1000 latency rows; cut_row leaves a
    half row at the end of the latency file, as a killed writer would."""
    write_latency(directory)
    if bandwidth:
        write_bandwidth(directory)
    write_run_json(directory, files=files, status=status)
    if cut_row:
        with open(directory / "latency_results.csv", "a") as f:
            f.write("1000,99999")


def assert_refused(proc, *fragments):
    """Exit 3, one line naming why and the way out, nothing written."""
    line = assert_one_line_error(proc, "partial results", "--allow-partial", *fragments,
                                 code=3)
    return line


def partial_summary(directory, *args):
    proc = run(directory, "--allow-partial", *args)
    assert proc.returncode == 0, proc.stderr
    assert PROG + "warning:" in proc.stderr and "PARTIAL" in proc.stderr
    return proc, json.loads((directory / "summary.json").read_text())


def test_complete_run_with_files_is_whole(full_run):
    summary = full_run[2]
    assert summary["partial"] is False and summary["partial_reasons"] == []
    assert summary["status"] == "complete" and summary["run_id"] == "9f86d081884c7d65"


def test_old_run_json_without_files_is_accepted_with_a_warning(tmp_path):
    partial_run(tmp_path, files=None)
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "cannot be tied to this run" in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["partial"] is False
    assert any("cannot be tied" in n for n in summary["notes"])
    assert summary["latency"]["round_trip"]["count"] == 1000


@pytest.mark.parametrize("status,fragment", [
    ("running", "still running"),
    ("timeout after 10.0 s waiting for RECEIVED of frame 4k #2",
     "did not complete: timeout after 10.0 s waiting for RECEIVED of frame 4k #2"),
])
def test_run_that_did_not_complete_is_refused(tmp_path, status, fragment):
    partial_run(tmp_path, status=status)
    assert_refused(run(tmp_path, "--no-plots"), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bandwidth_results.csv", "latency_results.csv", "run.json"]


def test_csv_of_another_run_is_refused_then_left_out(tmp_path):
    partial_run(tmp_path, files={"latency_results.csv": 1000})
    assert_refused(run(tmp_path, "--no-plots"),
                   "bandwidth_results.csv is not in run.json's files: another run")
    _, summary = partial_summary(tmp_path, "--no-plots")
    assert summary["bandwidth"] is None  # not mixed into this run's figures
    assert summary["latency"]["round_trip"]["count"] == 1000
    assert any("another run" in r for r in summary["partial_reasons"])


@pytest.mark.parametrize("listed,status,fragment", [
    (1001, "complete", "has 1,000 data rows, run.json lists 1,001: truncated, or replaced"),
    (999, "complete", "lists 999: rows written after the run ended"),
])
def test_row_counts_that_do_not_match_are_refused(tmp_path, listed, status, fragment):
    partial_run(tmp_path, status=status, bandwidth=False,
                files={"latency_results.csv": listed})
    assert_refused(run(tmp_path, "--no-plots"), fragment)


def test_more_rows_than_listed_is_expected_of_a_run_that_died(tmp_path):
    """A dead run (status running) wrote rows after its last run.json: only
    its status makes it partial, the counts are no second complaint."""
    partial_run(tmp_path, status="running", bandwidth=False,
                files={"latency_results.csv": 500})
    _, summary = partial_summary(tmp_path, "--no-plots")
    assert len(summary["partial_reasons"]) == 1
    assert "still running" in summary["partial_reasons"][0]
    assert summary["latency"]["round_trip"]["count"] == 1000


def test_listed_file_missing_is_refused(tmp_path):
    partial_run(tmp_path, bandwidth=False,
                files={"latency_results.csv": 1000, "bandwidth_results.csv": 19})
    assert_refused(run(tmp_path, "--no-plots"),
                   "run.json lists bandwidth_results.csv (19 rows) but it is missing")


def test_half_row_of_a_killed_writer_is_not_data(tmp_path):
    partial_run(tmp_path, status="running", cut_row=True,
                files={"latency_results.csv": 1000, "bandwidth_results.csv": 0})
    assert_refused(run(tmp_path, "--no-plots"),
                   "line 1002 is cut short (no end of line: 2 of 5 fields, '1000,99999')")
    proc, summary = partial_summary(tmp_path)
    rt = summary["latency"]["round_trip"]
    assert rt["count"] == 1000 and rt["max_ns"] == 1000  # 99999 was not read
    assert rt["p99_ns"] == pytest.approx(np.percentile(LATENCY, 99))
    reasons = summary["partial_reasons"]
    assert any("still running" in r for r in reasons)
    assert any("cut short" in r for r in reasons)
    # Every output says so: the report (printed too), the summary, the labels.
    report = (tmp_path / "performance_report.txt").read_text()
    assert "[PARTIAL]" in report.splitlines()[0]
    assert "*** PARTIAL RESULTS" in report and "cut short" in report
    assert "*** PARTIAL RESULTS" in proc.stdout
    assert summary["partial"] is True and summary["label"].endswith("[PARTIAL]")
    for name in PLOTS:
        png_size(tmp_path / name)


def test_header_only_file_of_a_dead_run_is_skipped(tmp_path):
    write_latency(tmp_path)
    (tmp_path / "bandwidth_results.csv").write_text(BW_HEADER + "\n")
    write_run_json(tmp_path, status="running")
    _, summary = partial_summary(tmp_path, "--no-plots")
    assert summary["bandwidth"] is None
    assert any("bandwidth_results.csv has no data rows" in n for n in summary["notes"])


def test_nothing_of_the_run_left_is_refused_even_when_allowed(tmp_path):
    write_latency(tmp_path)
    write_run_json(tmp_path, status="running", files={})
    proc = run(tmp_path, "--no-plots", "--allow-partial")
    assert_one_line_error(proc, "nothing of this run to analyse", code=3)


def test_compare_refuses_a_partial_run_then_marks_it(tmp_path):
    good, dead = tmp_path / "good", tmp_path / "dead"
    for d in (good, dead):
        d.mkdir()
    partial_run(good)
    partial_run(dead, status="running", cut_row=True)
    out = tmp_path / "out"
    proc = run("--compare", good, dead, "-o", out, "--no-plots")
    assert_refused(proc, str(dead), "still running")
    proc = run("--compare", good, dead, "-o", out, "--no-plots", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "comparison.json").read_text())
    assert data["partial"] is True
    assert [r["partial"] for r in data["runs"]] == [False, True]
    assert data["runs"][1]["label"].endswith("[PARTIAL]")
    assert "*** [2] is PARTIAL" in (out / "comparison.txt").read_text()


@pytest.mark.parametrize("args,message", [
    (["--compare", "only-one"], "--compare needs at least two directories"),
    (["--results", "a", "b"], "give the directories one way"),
    (["--bogus"], "unrecognized arguments"),
])
def test_usage_errors_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert "analyze_results.py: error:" in proc.stderr
