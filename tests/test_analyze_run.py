# timeout: 240
"""One results directory as a run (analysis/run.py, analysis/runinfo.py):
run.json read strictly (a bad one is bad data, exit 1, even with
--allow-partial), results it does not vouch for refused with exit 3 or, with
--allow-partial, analysed and marked PARTIAL in every output (a run that did
not complete, a CSV of another run, rows missing or added, a listed file
missing, the half row of a killed writer); every combination of the results
files, with and without run.json, giving exactly the sections and plots of
the files present; and bad messages in several kinds flagged together: one
BAD MESSAGES block, the rows marked, summary.json's list, exit 1 with one
line per file. The stream and size-latency rows are those of a real
host-only run kept in tests/golden/runs/host.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_run.py
"""

import itertools
import json
import shutil

import numpy as np
import pytest
from analyze_common import (BW_HEADER, GOLDEN_RUNS, LATENCY, PROG, assert_one_line_error,
                            png, png_size, read_rows, relist, run, run_all, run_cases,
                            summary_of, write_any, write_bandwidth, write_latency, write_rows,
                            write_run_json)

LAT_CSV, BW_CSV = "latency_results.csv", "bandwidth_results.csv"
STREAM_CSV, SIZELAT_CSV = "stream_results.csv", "size_latency_results.csv"
HOST = GOLDEN_RUNS / "host"


# ------------------------------------------------------------- run.json

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


def test_complete_run_with_files_is_whole(tmp_path):
    partial_run(tmp_path)
    assert run(tmp_path, "--no-plots", "-q").returncode == 0
    summary = summary_of(tmp_path)
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
    for name in ("latency_histogram.png", "latency_over_time.png", "latency_percentiles.png",
                 "bandwidth_analysis.png"):
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



def test_no_run_json_is_a_warning(tmp_path):
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(PROG + "warning:") and "no run.json" in proc.stderr
    summary = summary_of(tmp_path)
    assert summary["run"] is None and tmp_path.name in summary["label"]
    assert summary["partial"] is False
    assert any("no run.json" in n for n in summary["notes"])


def test_summary_has_run_json(tmp_path):
    write_latency(tmp_path)
    write_run_json(tmp_path)
    assert run(tmp_path, "--no-plots", "-q").returncode == 0
    summary = summary_of(tmp_path)
    text = (tmp_path / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert summary["run"]["mode"] == "plain"
    assert summary["label"] == "plain / kvm, micro guest"
    assert summary["notes"] == []
    report = (tmp_path / "performance_report.txt").read_text()
    for text in ("qemu_version", "8.2.2", "pinning.vcpu", "64 MiB",
                 "linear interpolation between order statistics", "C harness"):
        assert text in report, text


def test_missing_directory(tmp_path):
    proc = run(tmp_path / "nope", "--no-plots")
    assert_one_line_error(proc, "nope", "no such directory")


def test_directory_without_results(tmp_path):
    proc = run(tmp_path, "--no-plots")
    assert_one_line_error(proc, str(tmp_path), "no results: none of latency_results.csv, "
                          "bandwidth_results.csv, stream_results.csv, "
                          "limits_results.csv, size_latency_results.csv, rate_results.csv, "
                          "rate_histograms.csv, chain_results.csv, transport_results.csv, "
                          "matrix_results.csv found")


def test_bad_file_next_to_good_ones_is_an_error(tmp_path):
    write_bandwidth(tmp_path)
    (tmp_path / LAT_CSV).write_text("")
    assert_one_line_error(run(tmp_path, "--no-plots"), LAT_CSV, "file is empty")


# ----------------------------------------------- any combination of the files

LAT_ROWS = "iteration,latency_ns,latency_us,received_ns,received_us\n" + "".join(
    f"{i},{300 + i},{(300 + i) / 1000:.3f},{150 + i},{(150 + i) / 1000:.3f}\n"
    for i in range(50))
BW_ROWS = (BW_HEADER + "\n" + "".join(
    f"64x64,64,64,12288,{i},1,0,ok,1000,500,{8000 + i},{9500 + i},4000,3000,"
    f"12.288,{12288 / (9500 + i)!r}\n" for i in range(3)))
SECTIONS = {LAT_CSV: ("latency", ["latency_histogram.png", "latency_over_time.png",
                                  "latency_percentiles.png"]),
            BW_CSV: ("bandwidth", ["bandwidth_analysis.png"]),
            STREAM_CSV: ("stream", ["stream_throughput.png"]),
            SIZELAT_CSV: ("size_latency", ["size_latency.png"])}
COMBINATIONS = [c for n in range(1, 5) for c in itertools.combinations(SECTIONS, n)]
# (files, with run.json, with plots): every combination listed in a run.json;
# plots (slow) and no run.json for a few.
CASES = ([(names, True, False) for names in COMBINATIONS]
         + [((name,), True, True) for name in (STREAM_CSV, SIZELAT_CSV)]
         + [(tuple(SECTIONS), True, True), ((STREAM_CSV,), False, False),
            ((LAT_CSV, SIZELAT_CSV), False, False), (tuple(SECTIONS), False, False)])


@pytest.fixture(scope="module")
def combinations(tmp_path_factory):
    """A directory for each case (the real run's stream and size-latency
    rows, small latency and frame files written here), each analysed."""
    root = tmp_path_factory.mktemp("combinations")
    dirs, procs = [], {}
    for i, (names, with_json, _) in enumerate(CASES):
        directory = root / f"case{i}"
        directory.mkdir()
        for name in names:
            if name in (STREAM_CSV, SIZELAT_CSV):
                shutil.copy(HOST / name, directory / name)
            else:
                (directory / name).write_text(LAT_ROWS if name == LAT_CSV else BW_ROWS)
        if with_json:
            shutil.copy(HOST / "run.json", directory / "run.json")
            relist(directory)
        dirs.append(directory)
    for plots in (False, True):
        chosen = [d for d, case in zip(dirs, CASES) if case[2] == plots]
        args = ("-q",) if plots else ("-q", "--no-plots")
        procs.update(zip(chosen, run_all(chosen, *args)))
    return [(d, procs[d]) for d in dirs]



@pytest.mark.parametrize("case", range(len(CASES)), ids=[
    f"{'json' if j else 'bare'}{'-plots' if p else ''}-"
    + "+".join(n.split("_results")[0] for n in names) for names, j, p in CASES])
def test_any_combination_of_files(combinations, case):
    names, with_json, plots = CASES[case]
    directory, proc = combinations[case]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    if with_json:
        assert proc.stderr == ""
    summary = json.loads((directory / "summary.json").read_text())
    report = (directory / "performance_report.txt").read_text()
    for name, (section, pictures) in SECTIONS.items():
        present = name in names
        assert (summary[section] is not None) == present, section
        for picture in pictures:
            assert (directory / picture).exists() == (present and plots), picture
    assert ("STREAM THROUGHPUT" in report) == (STREAM_CSV in names)
    assert ("SIZE LATENCY" in report) == (SIZELAT_CSV in names)
    missing = [n for n in (LAT_CSV, BW_CSV, STREAM_CSV, "limits_results.csv", SIZELAT_CSV,
                           "rate_results.csv", "rate_histograms.csv", "chain_results.csv")
               if n not in names]
    if with_json:
        assert not any("not found" in n for n in summary["notes"])
    else:
        assert ", ".join(missing) + " not found" in " ".join(summary["notes"])
    assert (directory / "report.html").exists()


# -------------------------------------------------------------- bad messages


def with_errors(directory, stream_errors, sizelat_errors):
    """The real run's files, with errors set on some rows: {row: errors}."""
    directory.mkdir()
    for name, errors in ((STREAM_CSV, stream_errors), (SIZELAT_CSV, sizelat_errors)):
        rows = read_rows(HOST / name)
        for i, count in errors.items():
            rows[i]["errors"] = str(count)
        write_rows(directory / name, rows)


def test_bad_messages_flagged_loudly_and_exit_1(tmp_path):
    """A run whose messages failed their check: the report opens with a
    BAD MESSAGES block naming each row, the rows are marked, summary.json
    lists them, the plots are still drawn, and the exit status is 1 with
    one line per file."""
    with_errors(tmp_path / "bad", {1: 3, 4: 1}, {0: 2})
    proc = run(tmp_path / "bad", "-q")
    assert proc.returncode == 1, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if not l.startswith(PROG + "warning:")]
    assert len(lines) == 2, proc.stderr
    assert f"{STREAM_CSV}: bad messages (errors > 0) in 2 of 9 points: " \
           "h2g 4 KiB (line 3, 3), g2h 4 KiB (line 6, 1)" in lines[0]
    assert f"{SIZELAT_CSV}: bad messages (errors > 0) in 1 of 4 message sizes: 8 B " \
           "(line 2, 2)" in lines[1]
    report = (tmp_path / "bad" / "performance_report.txt").read_text()
    head = report[:report.index("Results:")]
    assert "*** BAD MESSAGES: 2 stream points and 1 message size" in head
    assert f"{STREAM_CSV} line 3: h2g 4 KiB: 3 bad messages" in head
    assert f"{SIZELAT_CSV} line 2: size latency 8 B: 2 bad messages" in head
    marked = [l for l in report.splitlines() if "<< BAD" in l]
    assert len(marked) == 3 and marked[0].split()[:3] == ["h2g", "4", "KiB"]
    summary = summary_of(tmp_path / "bad")
    assert [(b["file"], b["line"], b["errors"]) for b in summary["bad_messages"]] == [
        (STREAM_CSV, 3, 3), (STREAM_CSV, 6, 1), (SIZELAT_CSV, 2, 2)]
    assert summary["stream"]["bad_points"] == 2 and summary["stream"]["errors"] == 4
    png(tmp_path / "bad" / "stream_throughput.png")
    png(tmp_path / "bad" / "size_latency.png")


def test_bad_messages_of_a_failed_run_need_allow_partial(tmp_path):
    """host_writer ends such a run with its failure as run.json's status:
    refused (3) as partial, and with --allow-partial analysed, marked, and
    still exit 1 for the bad messages."""
    with_errors(tmp_path / "bad", {0: 1}, {})
    shutil.copy(HOST / "run.json", tmp_path / "bad" / "run.json")
    relist(tmp_path / "bad", status="bad message 17 of a 64-byte h2g point")
    assert_one_line_error(run(tmp_path / "bad", "-q", "--no-plots"), "partial results",
                          "bad message 17", code=3)
    proc = run(tmp_path / "bad", "-q", "--no-plots", "--allow-partial")
    assert proc.returncode == 1, proc.stderr
    assert "bad messages (errors > 0) in 1 of 9 points" in proc.stderr
    report = (tmp_path / "bad" / "performance_report.txt").read_text()
    assert report.index("PARTIAL RESULTS") < report.index("BAD MESSAGES")
