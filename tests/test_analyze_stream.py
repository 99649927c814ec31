# timeout: 180
"""The stream kind (analysis/kinds/stream.py): a real host-only run of
host_writer's stream workload (guest_reader on a shared-memory file in
/dev/shm, no VM) analysed and checked row by row against the CSV file; its
section of the text report and its plot; malformed stream files and every
column's range refused with one line (and rows whose figures disagree: bytes
not messages x size, a rate not messages / seconds); the largest values
accepted; points repeated or moving nothing kept; and --compare of two
stream runs, with ratios and bad points marked.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_stream.py
"""

import itertools
import json

import pytest
from analyze_common import (assert_one_line_error, build, host_writer_run, need_shm, png,
                            read_rows, relist, run, run_all, summary_of, write_rows)

SHM_SIZE = 8 << 20
STREAM_SIZES = (64, 4096)
DIRECTIONS = ("h2g", "g2h", "bidir")
STREAM_CSV = "stream_results.csv"


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """One real host-only run of the stream workload, small: guest_reader
    --once on an 8 MiB file in /dev/shm (mode 0600, removed afterwards),
    host_writer against it; then the analysis, with plots."""
    need_shm()
    build()
    out = tmp_path_factory.mktemp("stream") / "host"
    host_writer_run(out, SHM_SIZE, "-t", "stream", "--sizes", ",".join(map(str, STREAM_SIZES)),
                    "--duration", "30ms", timeout=120)
    return out, run(out), summary_of(out)


def test_real_run_analysed_cleanly(real):
    out, analysis, summary = real
    assert analysis.returncode == 0, analysis.stderr
    assert analysis.stderr == ""
    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "complete" and set(info["files"]) == {STREAM_CSV}
    assert summary["partial"] is False and summary["notes"] == []
    assert summary["bad_messages"] == []
    assert summary["latency"] is None and summary["size_latency"] is None
    assert png(out / "stream_throughput.png") > 10_000
    assert sorted(p.name for p in out.glob("*.png")) == ["stream_throughput.png"]


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



def test_report_has_the_table(real):
    out, analysis, summary = real
    report = (out / "performance_report.txt").read_text()
    assert report in analysis.stdout + "\n"
    assert "STREAM THROUGHPUT" in report and "SIZE LATENCY" not in report
    assert "BAD" not in report
    for p in summary["stream"]["points"]:
        size = {64: "64 B", 4096: "4 KiB"}[p["message_bytes"]]
        assert any(line.split()[:3] == [p["direction"], *size.split()]
                   and f"{p['msgs_per_s']:,.0f}" in line for line in report.splitlines()), p
    assert "stream.sizes" in report and "Peak per direction" in report


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


def swap(row, index, value):
    cells = row.split(",")
    cells[index] = value
    return ",".join(cells)


# A point that moved nothing: no messages, no bytes, no rate.
ZERO_ROW = swap(swap(swap(swap(STREAM_ROW, 6, "0"), 7, "0"), 9, "0.0"), 10, "0.0000")

BAD_FILES = [
    (stream(swap(STREAM_ROW, 0, "up")),
     "line 3: column direction: expected h2g, g2h or bidir, got 'up'"),
    (stream(swap(STREAM_ROW, 9, "fast")),
     "line 3: column msgs_per_s: non-numeric value 'fast'"),
    (stream(swap(STREAM_ROW, 9, "nan")),
     "line 3: column msgs_per_s: non-numeric value 'nan'"),
    (stream(swap(STREAM_ROW, 10, "1e999")),
     "line 3: column gbps: not a finite number"),
    (stream(swap(STREAM_ROW, 11, "-1")),
     "line 3: column errors: value -1 is below 0"),
    (stream(swap(STREAM_ROW, 11, "")), "line 3: column errors: empty value"),
    (stream(swap(STREAM_ROW, 1, "4.5")),
     "line 3: column message_bytes: expected an integer, got 4.5"),
    (stream(swap(STREAM_ROW, 1, "0")),
     "line 3: column message_bytes: value 0 is below 1"),
    (stream(STREAM_ROW.rsplit(",", 1)[0]), "line 3: 21 fields, the header has 22"),
    (STREAM_HEADER.replace(",gbps", "") + "\n" + STREAM_ROW + "\n",
     "missing column gbps"),
    (f"{STREAM_HEADER}\n{STREAM_ROW}\n{STREAM_HEADER}\n{STREAM_ROW}\n",
     "line 3 repeats the header (two files joined into one?)"),
    (STREAM_HEADER + "\n", "header but no data rows"),
    (SIZELAT_HEADER + "\n" + SIZELAT_ROW + "\n",
     "missing columns direction, messages, seconds, msgs_per_s, gbps"),
]


@pytest.fixture(scope="module")
def bad_file_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-stream")
    dirs = []
    for i, (content, _) in enumerate(BAD_FILES):
        directory = root / f"case{i}"
        directory.mkdir()
        (directory / STREAM_CSV).write_bytes(content if isinstance(content, bytes)
                                             else content.encode())
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, "--no-plots")))


@pytest.mark.parametrize("case", range(len(BAD_FILES)),
                         ids=[m.split(":")[-1].strip()[:28] for _, m in BAD_FILES])
def test_malformed_file_one_line_exit_1(bad_file_runs, case):
    _, message = BAD_FILES[case]
    directory, proc = bad_file_runs[case]
    assert_one_line_error(proc, str(directory / STREAM_CSV), message)
    assert not (directory / "performance_report.txt").exists()


# --------------------------------------- values out of range, impossible rows

# Columns of STREAM_ROW by name, for the cases below.
S = {name: i for i, name in enumerate(STREAM_HEADER.split(","))}
COUNT_RANGE = "accepted 0..2^53-1 (an integer exact as a double)"
SIZE_RANGE = "accepted 1..67,108,864 (IVB_MAX_MESSAGE, 64 MiB)"


def stream_with(**cells):
    row = STREAM_ROW
    for name, value in cells.items():
        row = swap(row, S[name], str(value))
    return stream(row)


OUT_OF_RANGE = [
    # (name, content, fragments of the one error line)
    ("messages 2^63", stream_with(messages=2 ** 63),
     "line 3: column messages: 9223372036854775808 is out of range (more than 2^53-1): "
     + COUNT_RANGE),
    ("messages 2^64-1", stream_with(messages=2 ** 64 - 1),
     "line 3: column messages: 18446744073709551615 is out of range", COUNT_RANGE),
    ("messages 2^64", stream_with(messages=2 ** 64),
     "line 3: column messages: 18446744073709551616 is out of range", COUNT_RANGE),
    ("messages 2^53", stream_with(messages=2 ** 53),
     "line 3: column messages: 9007199254740992 is out of range", COUNT_RANGE),
    ("messages -1", stream_with(messages=-1),
     "line 3: column messages: value -1 is below 0: " + COUNT_RANGE),
    # Issue 20: these errors were reported as -9,223,372,036,854,775,808 bad messages.
    ("errors 2^63", stream_with(errors=2 ** 63),
     "line 3: column errors: 9223372036854775808 is out of range", COUNT_RANGE),
    ("doorbells 2^64-1", stream_with(host_doorbells=2 ** 64 - 1),
     "line 3: column host_doorbells: 18446744073709551615 is out of range", COUNT_RANGE),
    ("sleeps -1", stream_with(guest_sleeps=-1),
     "line 3: column guest_sleeps: value -1 is below 0"),
    ("bytes 2^63", stream_with(bytes=2 ** 63),
     "line 3: column bytes: 9223372036854775808 is out of range", COUNT_RANGE),
    # Issue 20: a size of 10^19 raised a traceback.
    ("size 1e19", stream_with(message_bytes="1e19"),
     "line 3: column message_bytes: 1e19 is out of range (more than 67,108,864): "
     + SIZE_RANGE),
    ("size 10^19", stream_with(message_bytes=10 ** 19),
     "line 3: column message_bytes: 10000000000000000000 is out of range", SIZE_RANGE),
    ("size 64 MiB + 1", stream_with(message_bytes=(64 << 20) + 1),
     "line 3: column message_bytes: 67108865 is out of range", SIZE_RANGE),
    ("slots 2^21", stream_with(slots=1 << 21),
     "line 3: column slots: 2097152 is out of range (more than 1,048,576): accepted "
     "1..1,048,576 (--slots, a power of two)"),
    ("batch 2^64", stream_with(batch=2 ** 64),
     "line 3: column batch: 18446744073709551616 is out of range"),
    ("seconds past 2^64", stream_with(seconds="1e20"),
     "line 3: column seconds: 1e20 is out of range (more than 2^64): accepted 0..2^64"),
    ("rate inf", stream_with(msgs_per_s="inf"),
     "line 3: column msgs_per_s: not a finite number: 'inf'"),
    ("cpu -inf", stream_with(host_cpu_us_per_msg="-inf"),
     "line 3: column host_cpu_us_per_msg: not a finite number: '-inf'"),
    ("doorbells NaN", stream_with(doorbells_per_msg="NaN"),
     "line 3: column doorbells_per_msg: non-numeric value 'NaN'"),
    ("percent -0.5", stream_with(guest_cpu_percent=-0.5),
     "line 3: column guest_cpu_percent: value -0.5 is below 0"),
    # Rows whose figures disagree (each within host_writer's rounding): a
    # forged or wrapped count that stays inside its range is caught here.
    ("slots not 2^k", stream_with(slots=3),
     "line 3: column slots: 3 is not a power of two"),
    ("bytes not messages x size", stream_with(bytes=294913),
     "line 3: column bytes: 294913 is not messages x message_bytes (294912): a row no "
     "measurement can give"),
    ("rate not messages / seconds", stream_with(msgs_per_s="95000.0"),
     "line 3: column msgs_per_s: 95000 is not messages / seconds (4608 in 0.05069 s)"),
    ("forged count, bytes to match", stream_with(messages=2 ** 52, bytes=2 ** 58),
     "line 3: column bytes: 288230376151711744 is out of range", COUNT_RANGE),
    ("forged count in range", stream_with(messages=10 ** 12, bytes=64 * 10 ** 12),
     "line 3: column msgs_per_s: 90905.2 is not messages / seconds (1000000000000 in "
     "0.05069 s)"),
    ("gbps not bytes / seconds", stream_with(gbps="0.0059"),
     "line 3: column gbps: 0.0059 is not bytes / seconds / 10^9 (294912 bytes in 0.05069 s)"),
]


@pytest.fixture(scope="module")
def out_of_range_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("range-stream")
    dirs = []
    for i, (_, content, *_) in enumerate(OUT_OF_RANGE):
        directory = root / f"case{i}"
        directory.mkdir()
        (directory / STREAM_CSV).write_text(content)
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, "-q")))


@pytest.mark.parametrize("case", range(len(OUT_OF_RANGE)), ids=[c[0] for c in OUT_OF_RANGE])
def test_out_of_range_or_impossible(out_of_range_runs, case):
    """A value outside what host_writer can write, or a row whose figures
    cannot come from one measurement: one line naming the file, the line,
    the column and the range accepted; exit 1, no traceback, nothing
    written (not a report with a wrapped count, not a plot)."""
    _, _, *fragments = OUT_OF_RANGE[case]
    directory, proc = out_of_range_runs[case]
    assert_one_line_error(proc, f"{directory / STREAM_CSV}: ", *fragments)
    assert sorted(p.name for p in directory.iterdir()) == [STREAM_CSV]


def test_largest_values_accepted(tmp_path):
    """The edges of the ranges are data and come out exact: a 64 MiB
    message, 2^53-1 doorbells, a ring of 2^20 slots."""
    size = 64 << 20
    big = stream_with(message_bytes=size, slots=1 << 20, messages=1000, bytes=1000 * size,
                      seconds="1.000000", msgs_per_s="1000.0", gbps="67.1089",
                      host_doorbells=2 ** 53 - 1)
    (tmp_path / STREAM_CSV).write_text(big)
    proc = run(tmp_path, "-q")
    assert proc.returncode == 0, proc.stderr
    point = summary_of(tmp_path)["stream"]["points"][-1]
    assert (point["message_bytes"], point["slots"]) == (size, 1 << 20)
    assert point["bytes"] == 1000 * size
    assert point["host_doorbells"] == 2 ** 53 - 1
    assert "64 MiB" in (tmp_path / "performance_report.txt").read_text()
    png(tmp_path / "stream_throughput.png")


# ----------------------------------------------------------------- comparison


def slower_copy(out, directory):
    """The real run as if a second one had half the message rate at twice
    the CPU per message: known ratios."""
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
    (directory / "run.json").write_text((out / "run.json").read_text())
    relist(directory, mode="doorbell", accel="tcg", guest="micro")


def with_errors(out, directory, errors):
    """The real run's file with errors set on some rows: {row: errors}."""
    directory.mkdir()
    rows = read_rows(out / STREAM_CSV)
    for i, count in errors.items():
        rows[i]["errors"] = str(count)
    write_rows(directory / STREAM_CSV, rows)


@pytest.fixture(scope="module")
def comparison(real, tmp_path_factory):
    out = real[0]
    root = tmp_path_factory.mktemp("compare-stream")
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
        "report.html"}  # no latency or frames: no comparison.png
    assert png(out / "comparison_stream.png") > 10_000
    for d, size in itertools.product(DIRECTIONS, ("64 B", "4 KiB")):
        assert metric(data, f"stream {d} {size} msgs/s")["ratios"] == pytest.approx([1, 0.5])
        assert metric(data, f"stream {d} {size} GB/s")["ratios"] == pytest.approx([1, 0.5])
        assert metric(data, f"stream {d} {size} host CPU")["ratios"] == pytest.approx([1, 2])
        assert metric(data, f"stream {d} {size} guest CPU")["ratios"] == pytest.approx([1, 1])


def test_compare_text_and_bad_points(real, comparison, tmp_path):
    out, proc, _ = comparison
    text = (out / "comparison.txt").read_text()
    assert text in proc.stdout + "\n"
    row = next(l for l in text.splitlines() if l.startswith("stream h2g 64 B msgs/s"))
    assert "(x0.50)" in row and "BAD" not in row
    # A second run with a bad point: marked in the table, and exit 1.
    with_errors(real[0], tmp_path / "bad", {0: 5})
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


# ------------------------------------------------ the kernel's counters


def test_counters_shown_once_beside_each_point(real):
    """host_writer's counters (analysis/counters.py): ctx-sw/kmsg in the
    table, what run.json says was counted once, in the report and on the
    page."""
    out, _, summary = real
    st = summary["stream"]
    info = json.loads((out / "run.json").read_text())["stream"]["counters"]
    assert st["counters"]["software"] == info["software"]
    report = (out / "performance_report.txt").read_text()
    assert report.count("Counters (run.json):") == 1 and "ctx-sw/kmsg" in report
    html = (out / "report.html").read_text()
    assert html.count("Counters (run.json):") == 1 and "ctx-sw/kmsg" in html
    for p in st["points"]:
        if p["ctx_switches_per_kmsg"] is not None:
            assert p["ctx_switches_per_kmsg"] == pytest.approx(
                1000 * p["host_ctx_switches"] / p["messages"], abs=5e-4)


COUNTER_CASES = [
    # (cells of row 2, fragments of the error)
    ({"ctx_switches_per_kmsg": "999.000"}, ["line 2: column ctx_switches_per_kmsg",
                                            "is not 1000 x host_ctx_switches / messages"]),
    ({"host_ctx_switches": "", "ctx_switches_per_kmsg": "1.000"},
     ["column ctx_switches_per_kmsg", "without host_ctx_switches"]),
    ({"host_task_clock_ns": "9000000000"}, ["line 2: column host_task_clock_ns",
                                            "more time on a CPU than"]),
    ({"host_page_faults": "-1"}, ["column host_page_faults", "below 0"]),
    ({"vcpu_migrations": "1.5"}, ["column vcpu_migrations", "expected an integer"]),
]


@pytest.mark.parametrize("case", range(len(COUNTER_CASES)))
def test_counters_no_measurement_gives_are_refused(real, tmp_path, case):
    cells, fragments = COUNTER_CASES[case]
    rows = read_rows(real[0] / STREAM_CSV)
    rows[0].update(cells)
    write_rows(tmp_path / STREAM_CSV, rows)
    assert_one_line_error(run(tmp_path, "--no-plots"), str(tmp_path / STREAM_CSV), *fragments)


def test_rows_without_counters_read_as_before(real, tmp_path):
    """A host_writer before the counters: no such key in the points, no
    column in the table."""
    rows = [{k: v for k, v in r.items() if not k.startswith(("host_c", "host_m", "host_p",
                                                              "host_t", "host_i", "vcpu_",
                                                              "ctx_"))
             or k in ("host_cpu_us_per_msg", "host_cpu_percent")}
            for r in read_rows(real[0] / STREAM_CSV)]
    write_rows(tmp_path / STREAM_CSV, rows)
    proc = run(tmp_path, "--no-plots")
    assert proc.returncode == 0, proc.stderr
    points = summary_of(tmp_path)["stream"]["points"]
    assert "host_ctx_switches" not in points[0] and "counters" not in summary_of(tmp_path)["stream"]
    assert "ctx-sw/kmsg" not in (tmp_path / "performance_report.txt").read_text()
