# timeout: 180
"""The frames kind (analysis/kinds/frames.py): each frame size's verified
transfers, bandwidth, host copy rate and durations against independent
calculations (transfers whose figures are known, rates left empty for the
analysis to compute), the overall figures, its section of the text report
and its plot, a run of frames alone, a run whose every transfer failed
(reported, then exit 1), malformed frame files, and the range of every
frame column with the rows no transfer can give (bytes not width x height
x 3, a total not the sum of its phases, a rate not bytes / time).

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_frames.py
"""

import statistics

import pytest
from analyze_common import (BW_HEADER, TRANSFERS, assert_one_line_error, frame_bytes,
                            png_size, run, run_cases, summary_of, write_any, write_bandwidth,
                            write_run_json)

BW_CSV = "bandwidth_results.csv"


@pytest.fixture(scope="module")
def frames_run(tmp_path_factory):
    """One complete run of frames alone, analysed once with plots."""
    directory = tmp_path_factory.mktemp("frames")
    write_bandwidth(directory)
    write_run_json(directory)
    proc = run(directory)
    return directory, proc, summary_of(directory)


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


def test_analysed_quietly(frames_run):
    _, proc, summary = frames_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert summary["latency"] is None


@pytest.mark.parametrize("frame", ["1080p", "1440p", "4k"])
def test_bandwidth_per_frame(frames_run, frame):
    frames = {f["frame"]: f for f in frames_run[2]["bandwidth"]["frames"]}
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


def test_frames_ordered_and_errors_counted(frames_run):
    frames = frames_run[2]["bandwidth"]["frames"]
    assert [f["frame"] for f in frames] == ["1080p", "1440p", "4k"]
    assert frames[0]["errors"] == {"digest": 1, "timeout": 1}
    assert frames[2]["errors"] == {"bad_size": 1}


def test_overall(frames_run):
    overall = frames_run[2]["bandwidth"]["overall"]
    ok = [(f, t) for f, t, _ in TRANSFERS if t is not None]
    gbps = [frame_bytes(f) / t for f, t in ok]
    assert (overall["total"], overall["successful"], overall["failed"]) == (19, 16, 3)
    assert overall["peak_gbps"]["value"] == pytest.approx(max(gbps))
    assert overall["average_gbps"] == pytest.approx(statistics.mean(gbps))
    assert overall["aggregate_gbps"] == pytest.approx(
        sum(frame_bytes(f) for f, _ in ok) / sum(t for _, t in ok))
    assert overall["fastest_ns"] == {"value": 2_000_000, "frame": "1080p", "iteration": 0}
    assert overall["slowest_ns"]["value"] == 12_000_000


def test_report_text(frames_run):
    report = (frames_run[0] / "performance_report.txt").read_text()
    for text in ("BANDWIDTH", "8/10", "5/5", "3/4", "digest x1", "Overall: 19 transfers"):
        assert text in report, text


def test_plot_written(frames_run):
    path = frames_run[0] / "bandwidth_analysis.png"
    assert path.stat().st_size > 10_000
    width, height = png_size(path)
    assert 800 <= width <= 3000 and 400 <= height <= 2000, (width, height)


def test_frames_only_without_run_json(tmp_path):
    write_bandwidth(tmp_path)
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(tmp_path)
    assert summary["latency"] is None
    assert any(n.startswith("latency_results.csv, stream_results.csv") and "not found" in n
               for n in summary["notes"])
    png_size(tmp_path / "bandwidth_analysis.png")
    assert not list(tmp_path.glob("latency_*.png"))


def test_every_frame_failed_reports_then_exits_1(tmp_path):
    write_bandwidth(tmp_path, transfers=[("1080p", None, "digest")] * 2
                    + [("4k", None, "timeout")])
    write_run_json(tmp_path)
    proc = run(tmp_path, "-q")
    assert_one_line_error(proc, "bandwidth_results.csv", "every frame transfer failed",
                          "0/3")
    report = (tmp_path / "performance_report.txt").read_text()
    assert "0/2" in report and "0/1" in report and "digest x2" in report
    summary = summary_of(tmp_path)
    assert summary["bandwidth"]["overall"]["success_rate"] == 0
    png_size(tmp_path / "bandwidth_analysis.png")


# ---------------------------------------------------------------- bad input

BAD_FILES = [
    (BW_HEADER + "\n4k,3840,2160,24883200,0,yes,0,ok,,,,1,,,,\n",
     "column success: expected 0 or 1, got 'yes'"),
    ("frame,bytes,total_ns\n4k,24883200,1\n", "missing column success"),
    (BW_HEADER + "\n4k,3840,2160,24883200,0,1,0,ok,,,,,,,,\n",
     "line 2: column total_ns: a successful transfer needs a time of at least 1 ns"),
    (BW_HEADER + "\n4k,3840,2160,24.9MB,0,0,3,digest,,,,,,,,\n",
     "column bytes: non-numeric value '24.9MB'"),
    (BW_HEADER + "\n4k,3840,2160,24883200,0,0,3,digest,,,,,,,,\n"
     "4k,3840,2160,6220800,1,0,3,digest,,,,,,,,\n", "frame '4k' appears with different byte"),
    (BW_HEADER + "\n4k,3840,2160,24883200,0,0,3,digest,,,,,,,,\n"
     "4k,3840,2160,24883200,0,0,3,digest,,,,,,,,\n", "line 3: transfer 4k#0 appears twice"),
]


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("bad-file"), BAD_FILES,
                     lambda d, content, _: write_any(d / BW_CSV, content), "--no-plots")


@pytest.mark.parametrize("case", range(len(BAD_FILES)),
                         ids=[m.split(":")[-1].strip()[:30] for _, m in BAD_FILES])
def test_bad_file(bad_file_runs, case):
    _, message = BAD_FILES[case]
    directory, proc = bad_file_runs[case]
    assert_one_line_error(proc, str(directory / BW_CSV), message)
    assert not (directory / "performance_report.txt").exists()


# ------------------------------------- values out of range, impossible rows

COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"
BW_ROW = "64x64,64,64,12288,0,1,0,ok,1000,500,8000,9500,4000,3000,12.2880,1.2935"


def bw_row(**cells):
    """A frames file of one good row and a second with cells replaced."""
    names = BW_HEADER.split(",")
    row = dict(zip(names, BW_ROW.split(",")), iteration="1")
    row.update({k: str(v) for k, v in cells.items()})
    return f"{BW_HEADER}\n{BW_ROW}\n{','.join(row.values())}\n"


OUT_OF_RANGE = [
    ("frame bytes 1e19", bw_row(bytes="1e19"),
     "line 3: column bytes: 1e19 is out of range (more than 12,884,901,888): accepted "
     "1..12,884,901,888 (--frames WxH: 3 bytes a pixel)"),
    ("frame bytes 2^64", bw_row(bytes=2 ** 64),
     "line 3: column bytes: 18446744073709551616 is out of range"),
    ("frame width 65537", bw_row(width=65537),
     "line 3: column width: 65537 is out of range (more than 65,536): accepted 1..65,536"),
    ("frame height 0", bw_row(height=0),
     "line 3: column height: value 0 is below 1: accepted 1..65,536"),
    ("frame iteration 2^63", bw_row(iteration=2 ** 63),
     "line 3: column iteration: 9223372036854775808 is out of range", COUNT_RANGE),
    ("error code -1", bw_row(error_code=-1),
     "line 3: column error_code: value -1 is below 0: accepted 0..4,294,967,295"),
    ("error code 2^32", bw_row(error_code=2 ** 32),
     "line 3: column error_code: 4294967296 is out of range"),
    ("copy past 2^64", bw_row(copy_ns=18_500_000_000_000_000_000),
     "line 3: column copy_ns: 18500000000000000000 is out of range (more than 2^64)"),
    ("total NaN", bw_row(total_ns="nan"),
     "line 3: column total_ns: non-numeric value 'nan'"),
    ("rate inf", bw_row(transfer_gbps="inf"),
     "line 3: column transfer_gbps: not a finite number: 'inf'"),
    # Rows whose figures disagree: no transfer gives them.
    ("bytes not WxHx3", bw_row(frame="odd", bytes=12289, transfer_gbps="12.2890",
                               bandwidth_gbps="1.2936"),
     "line 3: column bytes: 12289 is not width x height x 3 (12288): a row no measurement "
     "can give"),
    ("total not the phases", bw_row(total_ns=9501),
     "line 3: column total_ns: 9501 is not copy_ns + handoff_ns + verify_ns (9500)"),
    ("transfer rate", bw_row(transfer_gbps=99),
     "line 3: column transfer_gbps: 99 is not bytes / copy_ns (12.2880)"),
    ("bandwidth rate", bw_row(bandwidth_gbps="1.3"),
     "line 3: column bandwidth_gbps: 1.3 is not bytes / total_ns (1.2935)"),
]


@pytest.fixture(scope="module")
def out_of_range_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("range"), OUT_OF_RANGE,
                     lambda d, _, content, *__: write_any(d / BW_CSV, content),
                     "--no-plots", "--allow-partial")


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)), ids=[c[0] for c in OUT_OF_RANGE])
def test_out_of_range_or_impossible(out_of_range_runs, case):
    """A value outside what host_writer can write, or a row whose figures
    disagree: one line naming the file, the line, the column and the range
    accepted; exit 1, no traceback, no output; even with --allow-partial."""
    _, _, *fragments = OUT_OF_RANGE[case]
    directory, proc = out_of_range_runs[case]
    assert_one_line_error(proc, f"{directory / BW_CSV}: ", *fragments)
    assert not (directory / "summary.json").exists()
    assert not (directory / "performance_report.txt").exists()


def test_largest_values_accepted(tmp_path):
    """A 65536x65536 frame and an error code of 2^32-1 go through, exactly."""
    side, size = 65536, 3 * 65536 ** 2
    (tmp_path / BW_CSV).write_text(
        f"{BW_HEADER}\n{BW_ROW}\n"
        f"{side}x{side},{side},{side},{size},0,0,{2 ** 32 - 1},x,,,,,,,,\n")
    write_run_json(tmp_path)
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    frames = {f["frame"]: f for f in summary_of(tmp_path)["bandwidth"]["frames"]}
    assert frames["65536x65536"]["bytes"] == size
    assert (frames["65536x65536"]["width"], frames["65536x65536"]["height"]) == (side, side)
