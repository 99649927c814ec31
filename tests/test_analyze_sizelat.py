# timeout: 180
"""The size-latency kind (analysis/kinds/sizelat.py): a real host-only run
of host_writer's sizelat workload (guest_reader on a shared-memory file in
/dev/shm, no VM) analysed and checked row by row against the CSV file; its
section of the text report and its plot; malformed size-latency files and
every column's range refused with one line (figures out of a
distribution's order among them); the largest values accepted; and
--compare of two runs, each size's percentiles with their ratios.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_sizelat.py
"""

import itertools
import json

import pytest
from analyze_common import (assert_one_line_error, build, host_writer_run, need_shm, png,
                            read_rows, relist, run, run_all, summary_of, write_rows)

SHM_SIZE = 8 << 20
LAT_SIZES = (8, 4096)
SIZELAT_CSV = "size_latency_results.csv"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """One real host-only run of the sizelat workload, small: guest_reader
    --once on an 8 MiB file in /dev/shm (mode 0600, removed afterwards),
    host_writer against it; then the analysis, with plots."""
    need_shm()
    build()
    out = tmp_path_factory.mktemp("sizelat") / "host"
    host_writer_run(out, SHM_SIZE, "-t", "sizelat", "--lat-sizes",
                    ",".join(map(str, LAT_SIZES)), "--lat-iterations", "100", timeout=120)
    return out, run(out), summary_of(out)


def test_real_run_analysed_cleanly(real):
    out, analysis, summary = real
    assert analysis.returncode == 0, analysis.stderr
    assert analysis.stderr == ""
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and set(info["files"]) == {SIZELAT_CSV}
    assert summary["partial"] is False and summary["notes"] == []
    assert summary["bad_messages"] == [] and summary["stream"] is None
    assert png(out / "size_latency.png") > 10_000
    assert sorted(p.name for p in out.glob("*.png")) == ["size_latency.png"]


def test_size_latency_rows_are_the_csv_rows(real):
    out, _, summary = real
    rows = read_rows(out / SIZELAT_CSV)
    sizes = summary["size_latency"]["sizes"]
    assert [s["message_bytes"] for s in sizes] == list(LAT_SIZES)
    for s, row in zip(sizes, rows):
        for name in ("count", "min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "max_ns",
                     "errors"):
            assert s[name] == float(row[name]), name
        assert s["p99_9_ns"] == float(row["p999_ns"])
        assert s["count"] == 100 and s["errors"] == 0
        assert s["min_ns"] <= s["p50_ns"] <= s["p99_ns"] <= s["p99_9_ns"] <= s["max_ns"]



def test_report_has_the_table(real):
    out, analysis, _ = real
    report = (out / "performance_report.txt").read_text()
    assert report in analysis.stdout + "\n"
    assert "SIZE LATENCY" in report and "STREAM THROUGHPUT" not in report
    assert "BAD" not in report and "size_latency.iterations" in report


# ------------------------------------------------------------- malformed files

SIZELAT_HEADER = ("message_bytes,verify,wait,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,"
                  "p999_ns,max_ns,errors")
SIZELAT_ROW = "8,xxh3,spin,200,954,1083.6,1054.0,1151.3,1349.0,1363.6,1367,0"


def sizelat(row):
    return f"{SIZELAT_HEADER}\n{SIZELAT_ROW}\n{row}\n"


def swap(row, index, value):
    cells = row.split(",")
    cells[index] = value
    return ",".join(cells)


BAD_FILES = [
    (sizelat(swap(SIZELAT_ROW, 6, "900")),
     "line 3: column p50_ns: 900 is below min_ns (columns out of order"),
    (sizelat(swap(SIZELAT_ROW, 9, "1400")),
     "line 3: column max_ns: 1367 is below p999_ns"),
    (sizelat(swap(SIZELAT_ROW, 3, "0")),
     "line 3: column count: value 0 is below 1"),
    (sizelat(swap(SIZELAT_ROW, 11, "x")),
     "line 3: column errors: non-numeric value 'x'"),
    (sizelat(SIZELAT_ROW + ",7"), "line 3: 13 fields, the header has 12"),
    ("8,xxh3,spin,200,954,1083.6,1054.0,1151.3,1349.0,1363.6,1367,0\n",
     "missing columns message_bytes, count, min_ns"),
    (b"message_bytes,count\n8,\xff\n", "line 2: byte 0xff is not UTF-8"),
]


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-sizelat")
    dirs = []
    for i, (content, _) in enumerate(BAD_FILES):
        directory = root / f"case{i}"
        directory.mkdir()
        (directory / SIZELAT_CSV).write_bytes(content if isinstance(content, bytes)
                                              else content.encode())
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, "--no-plots")))


@pytest.mark.parametrize("case", range(len(BAD_FILES)),
                         ids=[m.split(":")[-1].strip()[:28] for _, m in BAD_FILES])
def test_malformed_file_one_line_exit_1(bad_file_runs, case):
    _, message = BAD_FILES[case]
    directory, proc = bad_file_runs[case]
    assert_one_line_error(proc, str(directory / SIZELAT_CSV), message)
    assert not (directory / "performance_report.txt").exists()


# --------------------------------------- values out of range, impossible rows

# Columns of SIZELAT_ROW by name, for the cases below.
Z = {name: i for i, name in enumerate(SIZELAT_HEADER.split(","))}
COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"
SIZE_RANGE = "accepted 1..67,108,864 (IVB_MAX_MESSAGE, 64 MiB)"


def sizelat_with(**cells):
    row = SIZELAT_ROW
    for name, value in cells.items():
        row = swap(row, Z[name], str(value))
    return sizelat(row)


OUT_OF_RANGE = [
    # (name, content, fragments of the one error line)
    ("count 2^63", sizelat_with(count=2 ** 63),
     "line 3: column count: 9223372036854775808 is out of range (more than 2^53-1): accepted "
     "1..2^53-1"),
    ("sizelat errors 2^64-1", sizelat_with(errors=2 ** 64 - 1),
     "line 3: column errors: 18446744073709551615 is out of range", COUNT_RANGE),
    ("sizelat errors 2^64", sizelat_with(errors=2 ** 64),
     "line 3: column errors: 18446744073709551616 is out of range", COUNT_RANGE),
    ("sizelat errors -1", sizelat_with(errors=-1),
     "line 3: column errors: value -1 is below 0: " + COUNT_RANGE),
    ("sizelat size 1e19", sizelat_with(message_bytes="1e19"),
     "line 3: column message_bytes: 1e19 is out of range", SIZE_RANGE),
    ("sizelat max past 2^64", sizelat_with(max_ns="2e19"),
     "line 3: column max_ns: 2e19 is out of range (more than 2^64)"),
    ("sizelat min inf", sizelat_with(min_ns="Infinity"),
     "line 3: column min_ns: not a finite number: 'Infinity'"),
    ("sizelat p50 nan", sizelat_with(p50_ns="nan"),
     "line 3: column p50_ns: non-numeric value 'nan'"),
]


@pytest.fixture(scope="module")
def out_of_range_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("range-sizelat")
    dirs = []
    for i, (_, content, *_) in enumerate(OUT_OF_RANGE):
        directory = root / f"case{i}"
        directory.mkdir()
        (directory / SIZELAT_CSV).write_text(content)
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, "-q")))


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)), ids=[c[0] for c in OUT_OF_RANGE])
def test_out_of_range(out_of_range_runs, case):
    """A value outside what host_writer can write: one line naming the
    file, the line, the column and the range accepted; exit 1, no
    traceback, nothing written."""
    _, _, *fragments = OUT_OF_RANGE[case]
    directory, proc = out_of_range_runs[case]
    assert_one_line_error(proc, f"{directory / SIZELAT_CSV}: ", *fragments)
    assert sorted(p.name for p in directory.iterdir()) == [SIZELAT_CSV]


def test_largest_values_accepted(tmp_path):
    """A 64 MiB message and 2^53-1 round trips come out exact."""
    size = 64 << 20
    (tmp_path / SIZELAT_CSV).write_text(sizelat_with(message_bytes=size, count=2 ** 53 - 1))
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    row = summary_of(tmp_path)["size_latency"]["sizes"][-1]
    assert (row["message_bytes"], row["count"]) == (size, 2 ** 53 - 1)
    assert "64 MiB" in (tmp_path / "performance_report.txt").read_text()
    png(tmp_path / "size_latency.png")


# ----------------------------------------------------------------- comparison


def slower_copy(out, directory):
    """The real run as if a second one had three times the round trip."""
    directory.mkdir()
    rows = read_rows(out / SIZELAT_CSV)
    for r in rows:
        for name in ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
            r[name] = repr(float(r[name]) * 3)
    write_rows(directory / SIZELAT_CSV, rows)
    (directory / "run.json").write_text((out / "run.json").read_text())
    relist(directory, mode="doorbell", accel="tcg", guest="micro")


def test_compare_two_runs(real, tmp_path):
    out = real[0]
    slower_copy(out, tmp_path / "vm")
    proc = run("--compare", out, tmp_path / "vm", "--output", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (tmp_path / "cmp").iterdir()} == {
        "comparison.txt", "comparison.json", "comparison_size_latency.png", "report.html"}
    assert png(tmp_path / "cmp" / "comparison_size_latency.png") > 10_000
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    metrics = {m["metric"]: m for m in data["metrics"]}
    for size, percentile in itertools.product(("8 B", "4 KiB"), ("p50", "p99", "p99.9")):
        m = metrics[f"size latency {size} {percentile}"]
        assert m["ratios"] == pytest.approx([1, 3]) and m["better"] == "lower"
