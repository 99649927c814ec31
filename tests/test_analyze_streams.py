# timeout: 180
"""analyze_results.py on the stream and size-latency results: a real
host-only run of host_writer's stream and sizelat workloads (guest_reader on
a shared-memory file in /dev/shm, no VM) analysed and checked row by row
against the CSV files; the column lists against `host_writer --schema`;
every combination of the four results files; bad messages (errors > 0)
flagged in the report and exit 1; malformed stream and size-latency files
refused with one line; and --compare of two stream runs, with ratios.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_streams.py
"""

import csv
import importlib.util
import itertools
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from analyze_common import BUILD, PROG, SCRIPT, assert_one_line_error, build, host_writer_run, png, skip, write_rows

SHM_SIZE = 8 << 20
STREAM_SIZES = (64, 4096)
LAT_SIZES = (8, 4096)
DIRECTIONS = ("h2g", "g2h", "bidir")

STREAM_CSV = "stream_results.csv"
SIZELAT_CSV = "size_latency_results.csv"
LAT_CSV = "latency_results.csv"
BW_CSV = "bandwidth_results.csv"


def run(*args, cwd=None):
    """The script with this interpreter, as a separate process."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def run_all(dirs, *args):
    """run(d, *args) for each directory, four processes at a time (each is
    mostly one pandas import)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda d: run(d, *args), dirs))


def read_rows(path):
    """The CSV's rows as dicts of strings, with the csv module."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_run_json(directory, info, **changes):
    """run.json from info with changes, its files the CSVs now in directory."""
    info = {**info, **changes}
    info["files"] = {p.name: len(read_rows(p)) for p in sorted(directory.glob("*.csv"))}
    (directory / "run.json").write_text(json.dumps(info))


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """One real host-only run of the stream and sizelat workloads, small:
    guest_reader --once on an 8 MiB file in /dev/shm (mode 0600, removed
    afterwards), host_writer against it; then the analysis, with plots."""
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        skip("no writable /dev/shm")
    build()
    out = tmp_path_factory.mktemp("streams") / "host"
    host_writer_run(out, SHM_SIZE, "-t", "stream,sizelat",
                    "--sizes", ",".join(map(str, STREAM_SIZES)), "--duration", "30ms",
                    "--lat-sizes", ",".join(map(str, LAT_SIZES)), "--lat-iterations", "100",
                    timeout=120)
    analysis = run(out)
    summary = json.loads((out / "summary.json").read_text())
    return out, analysis, summary


def load_module():
    """analyze_results.py imported, for the schemas it spells."""
    spec = importlib.util.spec_from_file_location("analyze_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["analyze_results"] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the schema


def test_schema_matches_host_writer(real):
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
    read = {s.file: (s.workload, list(s.columns)) for s in load_module().SCHEMAS}
    assert len(read) == len(load_module().SCHEMAS), "a file spelled twice in SCHEMAS"
    assert read == written
    assert {STREAM_CSV, SIZELAT_CSV, "rate_results.csv", "rate_histograms.csv"} <= set(read)


# ------------------------------------------------------------ a real run


def test_real_run_analysed_cleanly(real):
    out, analysis, summary = real
    assert analysis.returncode == 0, analysis.stderr
    assert analysis.stderr == ""
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete"
    assert set(info["files"]) == {STREAM_CSV, SIZELAT_CSV}
    assert summary["partial"] is False and summary["notes"] == []
    assert summary["bad_messages"] == []
    assert summary["latency"] is None and summary["bandwidth"] is None
    for name in ("performance_report.txt", "summary.json"):
        assert (out / name).stat().st_size > 0
    for name in ("stream_throughput.png", "size_latency.png"):
        assert png(out / name) > 10_000, name
    assert not list(out.glob("latency_*.png"))
    assert not (out / "bandwidth_analysis.png").exists()


def test_stream_points_are_the_csv_rows(real):
    """Every row, every column, exactly as written, ordered by direction
    then size, with the line it came from."""
    out, _, summary = real
    rows = read_rows(out / STREAM_CSV)
    assert len(rows) == len(DIRECTIONS) * len(STREAM_SIZES)
    line = {(r["direction"], int(r["message_bytes"])): i + 2 for i, r in enumerate(rows)}
    points = summary["stream"]["points"]
    assert [(p["direction"], p["message_bytes"]) for p in points] == \
        list(itertools.product(DIRECTIONS, STREAM_SIZES))
    for p in points:
        row = rows[line[(p["direction"], p["message_bytes"])] - 2]
        assert p["line"] == line[(p["direction"], p["message_bytes"])]
        for name, text in row.items():
            if name in ("direction", "verify", "wait"):
                assert p[name] == text, name
            elif text == "":
                assert p[name] is None, name
            else:
                assert p[name] == float(text), name
        assert p["errors"] == 0 and p["msgs_per_s"] > 0 and p["verify"] == "xxh3"
    for d in DIRECTIONS:
        mine = [p for p in points if p["direction"] == d]
        best = max(mine, key=lambda p: p["gbps"])
        assert summary["stream"]["peaks"][d]["gbps"] == {
            "value": best["gbps"], "message_bytes": best["message_bytes"]}


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


def test_report_has_both_tables(real):
    out, analysis, summary = real
    report = (out / "performance_report.txt").read_text()
    assert report in analysis.stdout + "\n"
    assert "STREAM THROUGHPUT" in report and "SIZE LATENCY" in report
    assert "BAD" not in report
    for p in summary["stream"]["points"]:
        size = {64: "64 B", 4096: "4 KiB"}[p["message_bytes"]]
        assert any(line.split()[:3] == [p["direction"], *size.split()]
                   and f"{p['msgs_per_s']:,.0f}" in line for line in report.splitlines()), p
    assert "stream.sizes" in report and "size_latency.iterations" in report


# ----------------------------------------------- any combination of the files

LAT_ROWS = "iteration,latency_ns,latency_us,received_ns,received_us\n" + "".join(
    f"{i},{300 + i},{(300 + i) / 1000:.3f},{150 + i},{(150 + i) / 1000:.3f}\n"
    for i in range(50))
BW_ROWS = ("frame,width,height,bytes,iteration,success,error_code,error_name,copy_ns,"
           "handoff_ns,verify_ns,total_ns,guest_read_ns,guest_hash_ns,transfer_gbps,"
           "bandwidth_gbps\n" + "".join(
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
def combinations(real, tmp_path_factory):
    """A directory for each case (real stream and sizelat rows, small
    latency and frame files written here), each analysed."""
    out = real[0]
    info = json.loads((out / "run.json").read_text())
    root = tmp_path_factory.mktemp("combinations")
    dirs, procs = [], {}
    for i, (names, with_json, _) in enumerate(CASES):
        directory = root / f"case{i}"
        directory.mkdir()
        for name in names:
            if name in (STREAM_CSV, SIZELAT_CSV):
                shutil.copy(out / name, directory / name)
            else:
                (directory / name).write_text(LAT_ROWS if name == LAT_CSV else BW_ROWS)
        if with_json:
            write_run_json(directory, info)
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
    missing = [n for n in (*SECTIONS, "rate_results.csv", "rate_histograms.csv")
               if n not in names]
    if with_json:
        assert not any("not found" in n for n in summary["notes"])
    else:
        assert ", ".join(missing) + " not found" in " ".join(summary["notes"])


# -------------------------------------------------------------- bad messages


def with_errors(out, directory, stream_errors, sizelat_errors):
    """The real run's files, with errors set on some rows: {row: errors}."""
    directory.mkdir()
    for name, errors in ((STREAM_CSV, stream_errors), (SIZELAT_CSV, sizelat_errors)):
        rows = read_rows(out / name)
        for i, count in errors.items():
            rows[i]["errors"] = str(count)
        write_rows(directory / name, rows)


def test_bad_messages_flagged_loudly_and_exit_1(real, tmp_path):
    """A run whose messages failed their check: the report opens with a
    BAD MESSAGES block naming each row, the rows are marked, summary.json
    lists them, the plots are still drawn, and the exit status is 1 with
    one line per file."""
    out = real[0]
    with_errors(out, tmp_path / "bad", {1: 3, 4: 1}, {0: 2})
    proc = run(tmp_path / "bad", "-q")
    assert proc.returncode == 1, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if not l.startswith(PROG + "warning:")]
    assert len(lines) == 2, proc.stderr
    assert f"{STREAM_CSV}: bad messages (errors > 0) in 2 of 6 points: " \
           "h2g 4 KiB (line 3, 3), bidir 64 B (line 6, 1)" in lines[0]
    assert f"{SIZELAT_CSV}: bad messages (errors > 0) in 1 of 2 message sizes: 8 B " \
           "(line 2, 2)" in lines[1]
    report = (tmp_path / "bad" / "performance_report.txt").read_text()
    head = report[:report.index("Results:")]
    assert "*** BAD MESSAGES: 2 stream points and 1 message size" in head
    assert f"{STREAM_CSV} line 3: h2g 4 KiB: 3 bad messages" in head
    assert f"{SIZELAT_CSV} line 2: size latency 8 B: 2 bad messages" in head
    marked = [l for l in report.splitlines() if "<< BAD" in l]
    assert len(marked) == 3 and marked[0].split()[:3] == ["h2g", "4", "KiB"]
    summary = json.loads((tmp_path / "bad" / "summary.json").read_text())
    assert [(b["file"], b["line"], b["errors"]) for b in summary["bad_messages"]] == [
        (STREAM_CSV, 3, 3), (STREAM_CSV, 6, 1), (SIZELAT_CSV, 2, 2)]
    assert summary["stream"]["bad_points"] == 2 and summary["stream"]["errors"] == 4
    png(tmp_path / "bad" / "stream_throughput.png")
    png(tmp_path / "bad" / "size_latency.png")


def test_bad_messages_of_a_failed_run_need_allow_partial(real, tmp_path):
    """host_writer ends such a run with its failure as run.json's status:
    refused (3) as partial, and with --allow-partial analysed, marked, and
    still exit 1 for the bad messages."""
    out = real[0]
    with_errors(out, tmp_path / "bad", {0: 1}, {})
    write_run_json(tmp_path / "bad", json.loads((out / "run.json").read_text()),
                   status="bad message 17 of a 64-byte h2g point")
    assert_one_line_error(run(tmp_path / "bad", "-q", "--no-plots"), "partial results",
                          "bad message 17", code=3)
    proc = run(tmp_path / "bad", "-q", "--no-plots", "--allow-partial")
    assert proc.returncode == 1, proc.stderr
    assert "bad messages (errors > 0) in 1 of 6 points" in proc.stderr
    report = (tmp_path / "bad" / "performance_report.txt").read_text()
    assert report.index("PARTIAL RESULTS") < report.index("BAD MESSAGES")


# ------------------------------------------------------------- malformed files

STREAM_HEADER = ("direction,message_bytes,slots,batch,verify,wait,messages,bytes,seconds,"
                 "msgs_per_s,gbps,errors,host_cpu_us_per_msg,guest_cpu_us_per_msg,"
                 "vcpu_cpu_us_per_msg,host_cpu_percent,guest_cpu_percent,doorbells_per_msg,"
                 "host_doorbells,guest_doorbells,host_sleeps,guest_sleeps")
STREAM_ROW = ("h2g,64,256,16,xxh3,spin,4608,294912,0.050690,90905.2,0.0058,0,4.8359,4.6878,,"
              "39.6,38.4,0.00000,0,0,0,0")
SIZELAT_HEADER = ("message_bytes,verify,wait,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,"
                  "p999_ns,max_ns,errors")
SIZELAT_ROW = "8,xxh3,spin,200,954,1083.6,1054.0,1151.3,1349.0,1363.6,1367,0"


def stream(row):
    return f"{STREAM_HEADER}\n{STREAM_ROW}\n{row}\n"


def sizelat(row):
    return f"{SIZELAT_HEADER}\n{SIZELAT_ROW}\n{row}\n"


def swap(row, index, value):
    cells = row.split(",")
    cells[index] = value
    return ",".join(cells)


# A point that moved nothing: no messages, no bytes, no rate.
ZERO_ROW = swap(swap(swap(swap(STREAM_ROW, 6, "0"), 7, "0"), 9, "0.0"), 10, "0.0000")


BAD_FILES = [
    (STREAM_CSV, stream(swap(STREAM_ROW, 0, "up")),
     "line 3: column direction: expected h2g, g2h or bidir, got 'up'"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 9, "fast")),
     "line 3: column msgs_per_s: non-numeric value 'fast'"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 9, "nan")),
     "line 3: column msgs_per_s: non-numeric value 'nan'"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 10, "1e999")),
     "line 3: column gbps: not a finite number"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 11, "-1")),
     "line 3: column errors: value -1 is below 0"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 11, "")), "line 3: column errors: empty value"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 1, "4.5")),
     "line 3: column message_bytes: expected an integer, got 4.5"),
    (STREAM_CSV, stream(swap(STREAM_ROW, 1, "0")),
     "line 3: column message_bytes: value 0 is below 1"),
    (STREAM_CSV, stream(STREAM_ROW.rsplit(",", 1)[0]), "line 3: 21 fields, the header has 22"),
    (STREAM_CSV, STREAM_HEADER.replace(",gbps", "") + "\n" + STREAM_ROW + "\n",
     "missing column gbps"),
    (STREAM_CSV, f"{STREAM_HEADER}\n{STREAM_ROW}\n{STREAM_HEADER}\n{STREAM_ROW}\n",
     "line 3 repeats the header (two files joined into one?)"),
    (STREAM_CSV, STREAM_HEADER + "\n", "header but no data rows"),
    (STREAM_CSV, SIZELAT_HEADER + "\n" + SIZELAT_ROW + "\n",
     "missing columns direction, messages, seconds, msgs_per_s, gbps"),
    (SIZELAT_CSV, sizelat(swap(SIZELAT_ROW, 6, "900")),
     "line 3: column p50_ns: 900 is below min_ns (columns out of order"),
    (SIZELAT_CSV, sizelat(swap(SIZELAT_ROW, 9, "1400")),
     "line 3: column max_ns: 1367 is below p999_ns"),
    (SIZELAT_CSV, sizelat(swap(SIZELAT_ROW, 3, "0")),
     "line 3: column count: value 0 is below 1"),
    (SIZELAT_CSV, sizelat(swap(SIZELAT_ROW, 11, "x")),
     "line 3: column errors: non-numeric value 'x'"),
    (SIZELAT_CSV, sizelat(SIZELAT_ROW + ",7"), "line 3: 13 fields, the header has 12"),
    (SIZELAT_CSV, "8,xxh3,spin,200,954,1083.6,1054.0,1151.3,1349.0,1363.6,1367,0\n",
     "missing columns message_bytes, count, min_ns"),
    (SIZELAT_CSV, b"message_bytes,count\n8,\xff\n", "line 2: byte 0xff is not UTF-8"),
]


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-streams")
    dirs = []
    for i, (name, content, _) in enumerate(BAD_FILES):
        directory = root / f"case{i}"
        directory.mkdir()
        path = directory / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, "--no-plots")))


@pytest.mark.parametrize("case", range(len(BAD_FILES)),
                         ids=[f"{n.split('_results')[0]}-{m.split(':')[-1].strip()[:28]}"
                              for n, _, m in BAD_FILES])
def test_malformed_file_one_line_exit_1(bad_file_runs, case):
    name, _, message = BAD_FILES[case]
    directory, proc = bad_file_runs[case]
    assert_one_line_error(proc, str(directory / name), message)
    assert not (directory / "performance_report.txt").exists()


# --------------------------------------- values out of range, impossible rows

# Columns of STREAM_ROW and SIZELAT_ROW by name, for the cases below.
S = {name: i for i, name in enumerate(STREAM_HEADER.split(","))}
Z = {name: i for i, name in enumerate(SIZELAT_HEADER.split(","))}
COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"
SIZE_RANGE = "accepted 1..67,108,864 (IVB_MAX_MESSAGE, 64 MiB)"


def stream_with(**cells):
    row = STREAM_ROW
    for name, value in cells.items():
        row = swap(row, S[name], str(value))
    return stream(row)


def sizelat_with(**cells):
    row = SIZELAT_ROW
    for name, value in cells.items():
        row = swap(row, Z[name], str(value))
    return sizelat(row)


OUT_OF_RANGE = [
    # (name, file, content, fragments of the one error line)
    ("messages 2^63", STREAM_CSV, stream_with(messages=2 ** 63),
     "line 3: column messages: 9223372036854775808 is out of range (more than 2^53-1): "
     + COUNT_RANGE),
    ("messages 2^64-1", STREAM_CSV, stream_with(messages=2 ** 64 - 1),
     "line 3: column messages: 18446744073709551615 is out of range", COUNT_RANGE),
    ("messages 2^64", STREAM_CSV, stream_with(messages=2 ** 64),
     "line 3: column messages: 18446744073709551616 is out of range", COUNT_RANGE),
    ("messages 2^53", STREAM_CSV, stream_with(messages=2 ** 53),
     "line 3: column messages: 9007199254740992 is out of range", COUNT_RANGE),
    ("messages -1", STREAM_CSV, stream_with(messages=-1),
     "line 3: column messages: value -1 is below 0: " + COUNT_RANGE),
    # Issue 20: these errors were reported as -9,223,372,036,854,775,808 bad messages.
    ("errors 2^63", STREAM_CSV, stream_with(errors=2 ** 63),
     "line 3: column errors: 9223372036854775808 is out of range", COUNT_RANGE),
    ("doorbells 2^64-1", STREAM_CSV, stream_with(host_doorbells=2 ** 64 - 1),
     "line 3: column host_doorbells: 18446744073709551615 is out of range", COUNT_RANGE),
    ("sleeps -1", STREAM_CSV, stream_with(guest_sleeps=-1),
     "line 3: column guest_sleeps: value -1 is below 0"),
    ("bytes 2^63", STREAM_CSV, stream_with(bytes=2 ** 63),
     "line 3: column bytes: 9223372036854775808 is out of range", COUNT_RANGE),
    # Issue 20: a size of 10^19 raised a traceback.
    ("size 1e19", STREAM_CSV, stream_with(message_bytes="1e19"),
     "line 3: column message_bytes: 1e19 is out of range (more than 67,108,864): "
     + SIZE_RANGE),
    ("size 10^19", STREAM_CSV, stream_with(message_bytes=10 ** 19),
     "line 3: column message_bytes: 10000000000000000000 is out of range", SIZE_RANGE),
    ("size 64 MiB + 1", STREAM_CSV, stream_with(message_bytes=(64 << 20) + 1),
     "line 3: column message_bytes: 67108865 is out of range", SIZE_RANGE),
    ("slots 2^21", STREAM_CSV, stream_with(slots=1 << 21),
     "line 3: column slots: 2097152 is out of range (more than 1,048,576): accepted "
     "1..1,048,576 (--slots, a power of two)"),
    ("batch 2^64", STREAM_CSV, stream_with(batch=2 ** 64),
     "line 3: column batch: 18446744073709551616 is out of range"),
    ("seconds past 2^64", STREAM_CSV, stream_with(seconds="1e20"),
     "line 3: column seconds: 1e20 is out of range (more than 2^64): accepted 0..2^64"),
    ("rate inf", STREAM_CSV, stream_with(msgs_per_s="inf"),
     "line 3: column msgs_per_s: not a finite number: 'inf'"),
    ("cpu -inf", STREAM_CSV, stream_with(host_cpu_us_per_msg="-inf"),
     "line 3: column host_cpu_us_per_msg: not a finite number: '-inf'"),
    ("doorbells NaN", STREAM_CSV, stream_with(doorbells_per_msg="NaN"),
     "line 3: column doorbells_per_msg: non-numeric value 'NaN'"),
    ("percent -0.5", STREAM_CSV, stream_with(guest_cpu_percent=-0.5),
     "line 3: column guest_cpu_percent: value -0.5 is below 0"),
    # Rows whose figures disagree (each within host_writer's rounding): a
    # forged or wrapped count that stays inside its range is caught here.
    ("slots not 2^k", STREAM_CSV, stream_with(slots=3),
     "line 3: column slots: 3 is not a power of two"),
    ("bytes not messages x size", STREAM_CSV, stream_with(bytes=294913),
     "line 3: column bytes: 294913 is not messages x message_bytes (294912): a row no "
     "measurement can give"),
    ("rate not messages / seconds", STREAM_CSV, stream_with(msgs_per_s="95000.0"),
     "line 3: column msgs_per_s: 95000 is not messages / seconds (4608 in 0.05069 s)"),
    ("forged count, bytes to match", STREAM_CSV, stream_with(messages=2 ** 52, bytes=2 ** 58),
     "line 3: column bytes: 288230376151711744 is out of range", COUNT_RANGE),
    ("forged count in range", STREAM_CSV, stream_with(messages=10 ** 12, bytes=64 * 10 ** 12),
     "line 3: column msgs_per_s: 90905.2 is not messages / seconds (1000000000000 in "
     "0.05069 s)"),
    ("gbps not bytes / seconds", STREAM_CSV, stream_with(gbps="0.0059"),
     "line 3: column gbps: 0.0059 is not bytes / seconds / 10^9 (294912 bytes in 0.05069 s)"),
    ("count 2^63", SIZELAT_CSV, sizelat_with(count=2 ** 63),
     "line 3: column count: 9223372036854775808 is out of range (more than 2^53-1): accepted "
     "1..2^53-1"),
    ("sizelat errors 2^64-1", SIZELAT_CSV, sizelat_with(errors=2 ** 64 - 1),
     "line 3: column errors: 18446744073709551615 is out of range", COUNT_RANGE),
    ("sizelat errors 2^64", SIZELAT_CSV, sizelat_with(errors=2 ** 64),
     "line 3: column errors: 18446744073709551616 is out of range", COUNT_RANGE),
    ("sizelat errors -1", SIZELAT_CSV, sizelat_with(errors=-1),
     "line 3: column errors: value -1 is below 0: " + COUNT_RANGE),
    ("sizelat size 1e19", SIZELAT_CSV, sizelat_with(message_bytes="1e19"),
     "line 3: column message_bytes: 1e19 is out of range", SIZE_RANGE),
    ("sizelat max past 2^64", SIZELAT_CSV, sizelat_with(max_ns="2e19"),
     "line 3: column max_ns: 2e19 is out of range (more than 2^64)"),
    ("sizelat min inf", SIZELAT_CSV, sizelat_with(min_ns="Infinity"),
     "line 3: column min_ns: not a finite number: 'Infinity'"),
    ("sizelat p50 nan", SIZELAT_CSV, sizelat_with(p50_ns="nan"),
     "line 3: column p50_ns: non-numeric value 'nan'"),
]


@pytest.fixture(scope="module")
def out_of_range_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("range-streams")
    dirs = []
    for i, (_, name, content, *_) in enumerate(OUT_OF_RANGE):
        directory = root / f"case{i}"
        directory.mkdir()
        (directory / name).write_text(content)
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, "-q")))


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)), ids=[c[0] for c in OUT_OF_RANGE])
def test_out_of_range_or_impossible(out_of_range_runs, case):
    """A value outside what host_writer can write, or a row whose figures
    cannot come from one measurement: one line naming the file, the line,
    the column and the range accepted; exit 1, no traceback, nothing
    written (not a report with a wrapped count, not a plot)."""
    _, name, _, *fragments = OUT_OF_RANGE[case]
    directory, proc = out_of_range_runs[case]
    assert_one_line_error(proc, f"{directory / name}: ", *fragments)
    assert sorted(p.name for p in directory.iterdir()) == [name]


def test_largest_values_accepted(tmp_path):
    """The edges of the ranges are data and come out exact: a 64 MiB
    message, 2^53-1 doorbells, a ring of 2^20 slots."""
    size = 64 << 20
    big = stream_with(message_bytes=size, slots=1 << 20, messages=1000, bytes=1000 * size,
                      seconds="1.000000", msgs_per_s="1000.0", gbps="67.1089",
                      host_doorbells=2 ** 53 - 1)
    (tmp_path / STREAM_CSV).write_text(big)
    (tmp_path / SIZELAT_CSV).write_text(sizelat_with(message_bytes=size, count=2 ** 53 - 1))
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    point = summary["stream"]["points"][-1]
    assert (point["message_bytes"], point["slots"]) == (size, 1 << 20)
    assert point["bytes"] == 1000 * size
    assert point["host_doorbells"] == 2 ** 53 - 1
    assert summary["size_latency"]["sizes"][-1]["count"] == 2 ** 53 - 1
    assert "64 MiB" in (tmp_path / "performance_report.txt").read_text()
    png(tmp_path / "stream_throughput.png")


# ----------------------------------------------------------------- comparison


def slower_copy(out, directory):
    """The real run as if a second one had half the message rate at twice
    the CPU per message and three times the round trip: known ratios."""
    directory.mkdir()
    rows = read_rows(out / STREAM_CSV)
    for r in rows:
        # The same messages in twice the time: half the rate, a row that
        # can have happened (msgs_per_s = messages / seconds).
        r["seconds"] = repr(float(r["seconds"]) * 2)
        r["msgs_per_s"] = repr(float(r["msgs_per_s"]) / 2)
        r["gbps"] = repr(float(r["gbps"]) / 2)
        r["host_cpu_us_per_msg"] = repr(float(r["host_cpu_us_per_msg"]) * 2)
    write_rows(directory / STREAM_CSV, rows)
    rows = read_rows(out / SIZELAT_CSV)
    for r in rows:
        for name in ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
            r[name] = repr(float(r[name]) * 3)
    write_rows(directory / SIZELAT_CSV, rows)
    write_run_json(directory, json.loads((out / "run.json").read_text()), mode="doorbell",
                   accel="tcg", guest="micro")


@pytest.fixture(scope="module")
def comparison(real, tmp_path_factory):
    out = real[0]
    root = tmp_path_factory.mktemp("compare-streams")
    slower_copy(out, root / "vm")
    proc = run("--compare", out, root / "vm", "--output", root / "cmp")
    return root / "cmp", proc, json.loads((root / "cmp" / "comparison.json").read_text())


def metric(data, name):
    return next(m for m in data["metrics"] if m["metric"] == name)


def test_compare_two_stream_runs(comparison):
    out, proc, data = comparison
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert [r["label"] for r in data["runs"]] == ["plain", "doorbell/tcg/micro"]
    assert {p.name for p in out.iterdir()} == {
        "comparison.txt", "comparison.json", "comparison_stream.png",
        "comparison_size_latency.png"}  # no latency or frames: no comparison.png
    assert png(out / "comparison_stream.png") > 10_000
    assert png(out / "comparison_size_latency.png") > 10_000
    for d, size in itertools.product(DIRECTIONS, ("64 B", "4 KiB")):
        assert metric(data, f"stream {d} {size} msgs/s")["ratios"] == pytest.approx([1, 0.5])
        assert metric(data, f"stream {d} {size} GB/s")["ratios"] == pytest.approx([1, 0.5])
        assert metric(data, f"stream {d} {size} host CPU")["ratios"] == pytest.approx([1, 2])
        assert metric(data, f"stream {d} {size} guest CPU")["ratios"] == pytest.approx([1, 1])
    for size, percentile in itertools.product(("8 B", "4 KiB"), ("p50", "p99", "p99.9")):
        m = metric(data, f"size latency {size} {percentile}")
        assert m["ratios"] == pytest.approx([1, 3]) and m["better"] == "lower"


def test_compare_text_and_bad_points(real, comparison, tmp_path):
    out, proc, _ = comparison
    text = (out / "comparison.txt").read_text()
    assert text in proc.stdout + "\n"
    row = next(l for l in text.splitlines() if l.startswith("stream h2g 64 B msgs/s"))
    assert "(x0.50)" in row and "BAD" not in row
    # A second run with a bad point: marked in the table, and exit 1.
    with_errors(real[0], tmp_path / "bad", {0: 5}, {})
    proc = run("--compare", real[0], tmp_path / "bad", "--output", tmp_path / "cmp",
               "--no-plots", "-q")
    assert proc.returncode == 1
    assert "bad messages (errors > 0) in 1 of 6 points: h2g 64 B (line 2, 5)" in proc.stderr
    text = (tmp_path / "cmp" / "comparison.txt").read_text()
    assert "*** [2] has BAD MESSAGES" in text
    row = next(l for l in text.splitlines() if l.startswith("stream h2g 64 B msgs/s"))
    assert row.endswith("BAD")


def test_repeated_and_zero_points_are_kept(tmp_path):
    """host_writer --sizes 64,64 measures a size twice: both rows are kept
    (a repeat is compared as such); a point that moved nothing is reported
    and left off the log axes with a note, not an error."""
    zero = ZERO_ROW
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / STREAM_CSV).write_text(stream(STREAM_ROW) + zero + "\n")
    proc = run(tmp_path / "a", "-q")
    assert proc.returncode == 0, proc.stderr
    points = json.loads((tmp_path / "a" / "summary.json").read_text())["stream"]["points"]
    assert [p["line"] for p in points] == [2, 3, 4]
    assert [p["msgs_per_s"] for p in points] == [90905.2, 90905.2, 0.0]
    png(tmp_path / "a" / "stream_throughput.png")
    proc = run(tmp_path / "a", tmp_path / "a", "--output", tmp_path / "cmp", "--no-plots",
               "-q")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert metric(data, "stream h2g 64 B (repeat 3) msgs/s")["values"] == [0.0, 0.0]
    assert metric(data, "stream h2g 64 B (repeat 2) msgs/s")["ratios"] == [1.0, 1.0]


def test_nothing_above_zero_is_drawn_as_no_data(tmp_path):
    """A stream where no point moved a message: a log axis has nothing to
    show; the plot says so instead of failing."""
    zero = ZERO_ROW
    (tmp_path / STREAM_CSV).write_text(f"{STREAM_HEADER}\n{zero}\n")
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    png(tmp_path / "stream_throughput.png")
