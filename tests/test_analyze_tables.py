# timeout: 180
"""The shared CSV reader (analysis/tables.py): every way a results file can
be malformed gets one line naming the file, the line and what is wrong
(exit 1, no traceback, no output), even with --allow-partial: empty files,
missing or repeated columns, a header that is data, the same header twice,
non-numeric or non-finite values, rows wider or narrower than the header,
NUL bytes, bytes that are not UTF-8, lines over 64 KiB, results that are
not files (a directory, a FIFO, a symlink loop or a dangling link); CSV
that is odd but well-formed (CRLF, a byte-order mark, quotes, blank lines,
extra and reordered columns, spaces) is read like host_writer's own; and
every column of every schema has a range host_writer can write. The
latency file stands for any: the reader is the same for every kind.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_tables.py
"""

import json
import os

import numpy as np
import pytest
from analyze_common import (LAT_HEADER, assert_one_line_error, package, run, run_cases,
                            write_any, write_bandwidth, write_latency, write_run_json)

LAT_OK_HEADER = "iteration,latency_ns,latency_us"
LAT_CSV = "latency_results.csv"
BAD_FILES = [
    ("", "file is empty"),
    ("\n  \n", "file is empty"),
    (LAT_OK_HEADER + "\n", "header but no data rows"),
    ("iteration,latency_us\n0,0.37\n", "missing column latency_ns"),
    ("frame,bytes\n4k,1\n", "missing columns iteration, latency_ns"),
    (LAT_OK_HEADER + "\n0,370,0.370\n1,abc,0.1\n",
     "line 3: column latency_ns: non-numeric value 'abc'"),
    # A blank line and quotes take the careful reader: line numbers still exact.
    (LAT_OK_HEADER + '\n0,370,0.370\n\n"1","37x","0.1"\n',
     "line 4: column latency_ns: non-numeric value '37x'"),
    (LAT_OK_HEADER + "\n0,370,0.370\n1,380\n",
     "line 3: 2 fields, the header has 3"),
    (LAT_OK_HEADER + "\n0,370,0.370,9\n",
     "line 2: 4 fields, the header has 3"),
    (LAT_OK_HEADER + "\n0,,0.1\n", "line 2: column latency_ns: empty value"),
    (LAT_OK_HEADER + "\n0,-5,0.1\n", "below 0"),
    (LAT_OK_HEADER + "\n0,inf,0.1\n", "not a finite number"),
    (LAT_OK_HEADER + "\n0.5,370,0.37\n",
     "column iteration: expected an integer"),
    ("iteration,latency_ns,latency_ns\n0,1,1\n", "appears twice"),
    (b"\xff\xfe\x00\x89PNG\x00\x00", "line 1: NUL byte: not a text file"),
]


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    return run_cases(tmp_path_factory.mktemp("bad-file"), BAD_FILES,
                     lambda d, content, _: write_any(d / LAT_CSV, content), "--no-plots")


@pytest.mark.parametrize("case", range(len(BAD_FILES)),
                         ids=[m.split(":")[-1].strip()[:30] for _, m in BAD_FILES])
def test_bad_file(bad_file_runs, case):
    _, message = BAD_FILES[case]
    directory, proc = bad_file_runs[case]
    assert_one_line_error(proc, str(directory / LAT_CSV), message)
    assert not (directory / "performance_report.txt").exists()


def test_bad_latency_next_to_good_bandwidth_is_an_error(tmp_path):
    write_bandwidth(tmp_path)
    (tmp_path / "latency_results.csv").write_text("")
    proc = run(tmp_path, "--no-plots")
    assert_one_line_error(proc, "latency_results.csv", "file is empty")



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


def test_every_column_has_a_range_host_writer_can_write():
    """Every number host_writer writes is unsigned or a non-negative
    double: no column accepts a negative value, none more than 2^64, and
    no integer column more than 2^53-1 (exact as a double, far from an
    int64's wrap). The same for transport_bench's columns."""
    analysis = package()
    for kind in analysis.kinds.KINDS:
        for schema, _ in kind.files:
            for name, column in schema.columns.items():
                if not column.numeric:
                    continue
                assert column.minimum >= 0, (schema.file, name)
                assert column.top <= 2.0 ** 64, (schema.file, name)
                if column.integer:
                    assert column.top <= 2 ** 53 - 1, (schema.file, name)
    assert analysis.tables.MAX_MESSAGE == 64 << 20  # workloads/sizes.h IVB_MAX_MESSAGE


def test_every_kind_reads_its_files_in_the_table():
    """The table of kinds names each file once; host_writer's are SCHEMAS."""
    kinds = package().kinds
    files = [schema.file for kind in kinds.KINDS for schema, _ in kind.files]
    assert len(files) == len(set(files))
    assert list(kinds.RESULT_FILES) == files
    assert all(s.program == "host_writer" for s in kinds.SCHEMAS)
    assert [k.name for k in kinds.KINDS] == list(kinds.NAMES)
