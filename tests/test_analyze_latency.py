# timeout: 180
"""The latency kind (analysis/kinds/latency.py): the round trip's and the
first acknowledgement's statistics against independent calculations (a
shuffled 1..1000 whose every percentile is known, the standard library),
its section of the text report, its three plots, a run of latency alone,
and the range of every latency column (iteration, latency_ns, received_ns:
what host_writer can write, one line naming the value otherwise).

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_latency.py
"""

import json
import statistics

import numpy as np
import pytest
from analyze_common import (LAT_HEADER, LATENCY, RECEIVED, assert_one_line_error, png_size,
                            run, run_cases, summary_of, write_any, write_latency,
                            write_run_json)

PLOTS = ("latency_histogram.png", "latency_over_time.png", "latency_percentiles.png")


@pytest.fixture(scope="module")
def latency_run(tmp_path_factory):
    """One complete run of latency alone, analysed once with plots."""
    directory = tmp_path_factory.mktemp("latency")
    write_latency(directory)
    write_run_json(directory)
    proc = run(directory)
    return directory, proc, summary_of(directory)


def test_analysed_quietly(latency_run):
    _, proc, summary = latency_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert summary["bandwidth"] is None and summary["notes"] == []


def test_percentiles_match_known_values(latency_run):
    rt = latency_run[2]["latency"]["round_trip"]
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


def test_moments_and_one_way(latency_run):
    rt = latency_run[2]["latency"]["round_trip"]
    data = list(range(1, 1001))
    assert rt["count"] == 1000
    assert (rt["min_ns"], rt["max_ns"]) == (1, 1000)
    assert rt["mean_ns"] == pytest.approx(statistics.mean(data))
    assert rt["median_ns"] == pytest.approx(statistics.median(data))
    assert rt["std_ns"] == pytest.approx(statistics.stdev(data))
    assert rt["one_way_median_ns"] == pytest.approx(500.5 / 2)
    assert rt["one_way_mean_ns"] == pytest.approx(500.5 / 2)


def test_received_statistics_match_numpy(latency_run):
    rc = latency_run[2]["latency"]["received"]
    for p, key in ((50, "p50_ns"), (90, "p90_ns"), (99, "p99_ns"), (99.9, "p99_9_ns")):
        assert rc[key] == pytest.approx(np.percentile(RECEIVED, p))
    assert rc["count"] == len(RECEIVED)
    assert rc["mean_ns"] == pytest.approx(statistics.mean(RECEIVED.tolist()))


def test_report_text(latency_run):
    directory, proc, _ = latency_run
    report = (directory / "performance_report.txt").read_text()
    assert report == proc.stdout[:len(report)]  # printed as well
    assert "plain / kvm, micro guest" in report.splitlines()[0]
    for text in ("LATENCY", "990.0", "999.0", "500.5", "one-way", "IQR", "round trip (ns)",
                 "first ack (ns)"):
        assert text in report, text


@pytest.mark.parametrize("name", PLOTS)
def test_plots_written(latency_run, name):
    path = latency_run[0] / name
    assert path.stat().st_size > 10_000
    width, height = png_size(path)
    assert 800 <= width <= 3000 and 400 <= height <= 2000, (width, height)


def test_latency_only_without_run_json(tmp_path):
    write_latency(tmp_path, latency=np.array([370]), received=np.array([180]))
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(tmp_path)
    assert summary["bandwidth"] is None
    assert summary["latency"]["round_trip"]["std_ns"] is None  # one sample
    note = ("bandwidth_results.csv, stream_results.csv, limits_results.csv, "
            "size_latency_results.csv, rate_results.csv, rate_histograms.csv, "
            "chain_results.csv not found: "
            "their sections are skipped")
    assert note in summary["notes"]
    assert note in (tmp_path / "performance_report.txt").read_text()
    for name in PLOTS:
        png_size(tmp_path / name)
    assert not (tmp_path / "bandwidth_analysis.png").exists()


def test_no_received_column_is_a_note(tmp_path):
    (tmp_path / "latency_results.csv").write_text(
        "iteration,latency_ns,latency_us\n" + "".join(f"{i},{300 + i},0.3\n" for i in range(5)))
    write_run_json(tmp_path)
    proc = run(tmp_path, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(tmp_path)
    assert summary["latency"]["received"] is None
    assert "no received_ns column: first-acknowledgement statistics skipped" in summary["notes"]


# ------------------------------------- values out of range, impossible rows

COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"
LAT_ROWS = "".join(f"{i},{300 + i},0.3,{150 + i},0.15\n" for i in range(4))
LAT_CSV = "latency_results.csv"


def lat_row(**cells):
    """A latency file of four good rows, the last with cells replaced."""
    row = dict(zip(LAT_HEADER.split(","), ["3", "303", "0.303", "151", "0.151"]))
    row.update({k: str(v) for k, v in cells.items()})
    return f"{LAT_HEADER}\n{LAT_ROWS[:LAT_ROWS.rindex('3,303')]}{','.join(row.values())}\n"


OUT_OF_RANGE = [
    # (name, content, fragments of the one error line)
    ("iteration 2^63", lat_row(iteration=2 ** 63),
     "line 5: column iteration: 9223372036854775808 is out of range (more than 2^53-1): "
     + COUNT_RANGE),
    ("iteration 2^64-1", lat_row(iteration=2 ** 64 - 1),
     "line 5: column iteration: 18446744073709551615 is out of range", COUNT_RANGE),
    ("iteration 2^64", lat_row(iteration=2 ** 64),
     "line 5: column iteration: 18446744073709551616 is out of range", COUNT_RANGE),
    ("iteration 2^53", lat_row(iteration=2 ** 53),
     "line 5: column iteration: 9007199254740992 is out of range", COUNT_RANGE),
    ("iteration -1", lat_row(iteration=-1),
     "line 5: column iteration: value -1 is below 0: " + COUNT_RANGE),
    ("latency 1e20", lat_row(latency_ns="1e20"),
     "line 5: column latency_ns: 1e20 is out of range (more than 2^64): accepted 0..2^64"),
    ("latency past 2^64", lat_row(latency_ns=18_500_000_000_000_000_000),
     "line 5: column latency_ns: 18500000000000000000 is out of range (more than 2^64)"),
    ("latency -inf", lat_row(latency_ns="-inf"),
     "line 5: column latency_ns: not a finite number: '-inf'"),
    ("received NaN", lat_row(received_ns="NaN"),
     "line 5: column received_ns: non-numeric value 'NaN'"),
    ("received_us -1", lat_row(received_us=-1),
     "line 5: column received_us: value -1 is below 0: accepted 0..2^64"),
]


@pytest.fixture(scope="module")
def out_of_range_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("range"), OUT_OF_RANGE,
                     lambda d, _, content, *__: write_any(d / LAT_CSV, content),
                     "--no-plots", "--allow-partial")


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)), ids=[c[0] for c in OUT_OF_RANGE])
def test_out_of_range(out_of_range_runs, case):
    """A value outside what host_writer can write (a count from 2^53, a
    negative one, NaN, infinity): one line naming the file, the line, the
    column and the range accepted; exit 1, no traceback, no output; even
    with --allow-partial."""
    _, _, *fragments = OUT_OF_RANGE[case]
    directory, proc = out_of_range_runs[case]
    assert_one_line_error(proc, f"{directory / LAT_CSV}: ", *fragments)
    assert not (directory / "summary.json").exists()
    assert not (directory / "performance_report.txt").exists()


def test_largest_values_accepted(tmp_path):
    """The edges of the ranges are data: iteration 2^53-1 and a latency of
    2^64 ns (what 2^64-1 reads as) go through, exactly."""
    (tmp_path / LAT_CSV).write_text(lat_row(iteration=2 ** 53 - 1, latency_ns=2 ** 64 - 1))
    write_run_json(tmp_path)
    proc = run(tmp_path, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    assert summary_of(tmp_path)["latency"]["round_trip"]["max_ns"] == 2.0 ** 64


def test_summary_is_strict_json(latency_run):
    text = (latency_run[0] / "summary.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["latency"]["round_trip"]["count"] == len(LATENCY)
