# timeout: 240
"""The transport kind (analysis/kinds/transport.py): a real host-only run of
host_writer's sizelat and stream workloads with transport_bench's pipe, UNIX
socket and TCP loopback beside it in transports/ (and a transport marked
unavailable), analysed and checked against the CSV files: every row as
written, ivshmem's rows taken from host_writer's files of the same run, each
figure's ratio to ivshmem's at the same size computed here independently,
the text and page sections and the two plots; transport_bench's directory
analysed by itself (no ivshmem, no ratios); a run without transports keeps
its summary.json as it was; transports/run.json's status and files making
the results partial (3, or marked with --allow-partial, a lost transport
in the warning banner); bad messages in a transport's row flagged (exit 1);
malformed rows refused with one line; transport_bench's own header against
the schema; and --compare of two runs with transports.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_transport.py
"""

import json
import re
import shutil
import subprocess

import pytest
from analyze_common import (BUILD, ROOT, assert_one_line_error, build, host_writer_run,
                            need_shm, package, png, read_rows, run, run_all, summary_of,
                            write_rows)

SHM_SIZE = 8 << 20
LAT_SIZES, STREAM_SIZES = (8, 512, 4096), (64, 4096)
TRANSPORTS = ("pipe", "unix", "tcp")
CSV = "transport_results.csv"
SUB = "transports"
UNAVAILABLE = ("vsock", "no /dev/vhost-vsock here")


def transport_bench(out, *args):
    proc = subprocess.run([str(BUILD / "transport_bench"), "-o", str(out), "-q",
                           "--lat-sizes", ",".join(map(str, LAT_SIZES)), "--lat-iterations",
                           "100", "--sizes", ",".join(map(str, STREAM_SIZES)),
                           "--duration", "30ms", *args], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """host_writer's sizelat and stream (h2g) and transport_bench's three
    host transports in transports/, the sizes matched; analysed with plots."""
    need_shm()
    build("transport_bench")
    out = tmp_path_factory.mktemp("transport") / "results"
    host_writer_run(out, SHM_SIZE, "-t", "sizelat,stream", "--lat-sizes",
                    ",".join(map(str, LAT_SIZES)), "--lat-iterations", "100", "--sizes",
                    ",".join(map(str, STREAM_SIZES)), "--direction", "h2g",
                    "--duration", "30ms", timeout=120)
    transport_bench(out / SUB, "-T", ",".join(TRANSPORTS),
                    "--unavailable", "=".join(UNAVAILABLE))
    return out, run(out), summary_of(out)


def rows_of(path, test):
    return [(i + 2, r) for i, r in enumerate(read_rows(path)) if r["test"] == test]


def test_analysed_cleanly(real):
    out, proc, summary = real
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    tr = summary["transport"]
    assert tr["source"] == f"{SUB}/{CSV}"
    assert tr["baselines"] == ["ivshmem (plain)"]
    assert tr["transports"] == ["ivshmem (plain)", *TRANSPORTS]
    assert tr["run"]["status"] == "complete" and tr["run"]["program"] == "transport_bench"
    assert tr["unavailable"] == [{"transport": UNAVAILABLE[0], "test": "all",
                                  "reason": UNAVAILABLE[1], "line": 2}]
    assert tr["bad_points"] == 0 and summary["bad_messages"] == []
    for name in ("transport_latency.png", "transport_throughput.png"):
        assert png(out / name) > 10_000, name


def test_rows_are_the_csv_rows(real):
    """Every measured row of transport_results.csv, as written, in the
    transports' order, with its line."""
    out, _, summary = real
    tr = summary["transport"]
    for test, mine, names in (("sizelat", tr["sizes"], ("count", "min_ns", "mean_ns", "p50_ns",
                                                        "p90_ns", "p99_ns", "max_ns")),
                              ("stream", tr["stream"], ("messages", "seconds", "msgs_per_s",
                                                        "gbps"))):
        rows = rows_of(out / SUB / CSV, test)
        got = [r for r in mine if r["file"] == f"{SUB}/{CSV}"]
        assert [(r["transport"], r["line"]) for r in got] == [
            (row["transport"], line) for line, row in rows]
        for r, (_, row) in zip(got, rows):
            for name in names + ("errors", "host_cpu_us_per_msg", "peer_cpu_us_per_msg"):
                assert r[name] == float(row[name]), name
            assert r["message_bytes"] == int(row["message_bytes"])
            if test == "sizelat":
                assert r["p99_9_ns"] == float(row["p999_ns"])


def test_ivshmem_rows_are_host_writers(real):
    out, _, summary = real
    tr = summary["transport"]
    sizes = [r for r in tr["sizes"] if r["transport"] in tr["baselines"]]
    assert [(r["message_bytes"], r["p50_ns"], r["file"]) for r in sizes] == [
        (int(r["message_bytes"]), float(r["p50_ns"]), "size_latency_results.csv")
        for r in read_rows(out / "size_latency_results.csv")]
    points = [r for r in tr["stream"] if r["transport"] in tr["baselines"]]
    assert [(r["message_bytes"], r["msgs_per_s"]) for r in points] == [
        (int(r["message_bytes"]), float(r["msgs_per_s"]))
        for r in read_rows(out / "stream_results.csv") if r["direction"] == "h2g"]


def test_ratios_to_ivshmem(real):
    """Each figure over ivshmem's at the same size, from the CSV files."""
    out, _, summary = real
    tr = summary["transport"]
    base = {int(r["message_bytes"]): r for r in read_rows(out / "size_latency_results.csv")}
    stream = {int(r["message_bytes"]): r for r in read_rows(out / "stream_results.csv")}
    checked = 0
    for r in tr["sizes"]:
        if r["transport"] in tr["baselines"]:
            assert r["ratio_to_ivshmem"] is None
            continue
        b = base[r["message_bytes"]]
        assert r["ratio_to_ivshmem"]["p50"] == pytest.approx(r["p50_ns"] / float(b["p50_ns"]))
        assert r["ratio_to_ivshmem"]["p99"] == pytest.approx(r["p99_ns"] / float(b["p99_ns"]))
        checked += 1
    for r in tr["stream"]:
        if r["transport"] not in tr["baselines"]:
            b = stream[r["message_bytes"]]
            assert r["ratio_to_ivshmem"]["gbps"] == pytest.approx(r["gbps"] / float(b["gbps"]))
            checked += 1
    assert checked == len(TRANSPORTS) * (len(LAT_SIZES) + len(STREAM_SIZES))


def test_text_and_page_sections(real):
    out, _, summary = real
    report = (out / "performance_report.txt").read_text()
    section = report[report.index("OTHER TRANSPORTS"):]
    for name in TRANSPORTS + ("ivshmem (plain)", "p50 x ivshmem", "Not available:",
                              UNAVAILABLE[1]):
        assert name in section, name
    page = (out / "report.html").read_text()
    assert 'id="transport"' in page and "ivshmem and the other transports" in page
    assert f'href="{SUB}/{CSV}"' in page and f'href="{SUB}/run.json"' in page
    for name in ("fig-transport_latency", "fig-transport_throughput", "p50 × ivshmem",
                 UNAVAILABLE[1]):
        assert name in page, name


def test_schema_is_transport_benchs(real):
    """The columns transport_bench writes (its header, and the list in
    transport_bench.c) are the schema's, in order."""
    out = real[0]
    header = (out / SUB / CSV).read_text().splitlines()[0].split(",")
    schema = package().kinds.transport.TRANSPORT
    assert list(schema.columns) == header
    source = (ROOT / "transport_bench.c").read_text()
    spelled = "".join(re.findall(r'"([^"]*)"', source[source.index("transport_csv = {"):
                                                      source.index("};", source.index(
                                                          "transport_csv = {"))])[1:])
    assert spelled == ",".join(header)


def test_transport_benchs_directory_alone(real, tmp_path):
    """results/transports analysed by itself: its rows, no ivshmem, no
    ratios, and its own run.json as the run's."""
    shutil.copytree(real[0] / SUB, tmp_path / "t")
    proc = run(tmp_path / "t", "-q")
    assert proc.returncode == 0, proc.stderr
    tr = summary_of(tmp_path / "t")["transport"]
    assert tr["source"] == CSV and tr["baselines"] == [] and tr["run"] is None
    assert tr["transports"] == list(TRANSPORTS)
    assert all(r["ratio_to_ivshmem"] is None for r in tr["sizes"] + tr["stream"])
    assert "no ratios" in (tmp_path / "t" / "performance_report.txt").read_text()


def test_a_run_without_transports_has_no_transport_key(real, tmp_path):
    shutil.copytree(real[0], tmp_path / "r", ignore=shutil.ignore_patterns(SUB, "*.png",
                                                                          "*.html"))
    assert run(tmp_path / "r", "-q", "--no-plots").returncode == 0
    assert "transport" not in summary_of(tmp_path / "r")


def copy_with(real, directory, rows=None, **info):
    """The real run with transports/'s rows replaced and its run.json's
    fields changed (files: the rows now there)."""
    shutil.copytree(real[0], directory, ignore=shutil.ignore_patterns("*.png", "*.html"))
    sub = directory / SUB
    if rows is not None:
        write_rows(sub / CSV, rows)
    meta = json.loads((sub / "run.json").read_text())
    meta["files"] = {CSV: len(read_rows(sub / CSV))}
    meta.update(info)
    (sub / "run.json").write_text(json.dumps(meta))
    return directory


def test_a_lost_transport_is_partial_and_in_the_banner(real, tmp_path):
    rows = read_rows(real[0] / SUB / CSV)
    lost = dict(rows[-1], test="failed", available="0", reason="broken pipe in a stream",
                **{k: "" for k in rows[-1] if k not in ("transport", "test", "verify",
                                                          "available", "reason")})
    d = copy_with(real, tmp_path / "lost", rows + [lost],
                  status="1 transport(s) failed, 0 point(s) with bad messages")
    assert_one_line_error(run(d, "-q", "--no-plots"), "partial results",
                          f"{SUB}/run.json: the run did not complete: 1 transport(s) failed",
                          code=3)
    proc = run(d, "-q", "--no-plots", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(d)
    assert summary["partial"] is True
    assert summary["transport"]["unavailable"][-1]["test"] == "failed"
    page = (d / "report.html").read_text()
    assert "PARTIAL RESULTS" in page and "lost during the run: broken pipe in a stream" in page
    assert "ivshmem and the other transports: tcp: lost during the run" in page


def test_rows_of_another_run_are_left_out(real, tmp_path):
    d = copy_with(real, tmp_path / "other", files={"something_else.csv": 3})
    assert_one_line_error(run(d, "-q", "--no-plots"), "partial results",
                          f"{SUB}/{CSV} is not in {SUB}/run.json's files", code=3)
    assert run(d, "-q", "--no-plots", "--allow-partial").returncode == 0
    assert "transport" not in summary_of(d)


def test_bad_messages_in_a_transport_row(real, tmp_path):
    rows = read_rows(real[0] / SUB / CSV)
    line = next(i for i, r in enumerate(rows) if r["test"] == "stream")
    rows[line]["errors"] = "7"
    d = copy_with(real, tmp_path / "bad", rows)
    proc = run(d, "-q", "--no-plots")
    size = int(rows[line]["message_bytes"])
    name = {64: "64 B", 4096: "4 KiB"}[size]
    assert_one_line_error(proc, f"{d / SUB / CSV}: bad messages (errors > 0) in 1 of "
                                f"{len(TRANSPORTS) * (len(LAT_SIZES) + len(STREAM_SIZES))} "
                                f"transport points: {rows[line]['transport']} stream {name} "
                                f"(line {line + 2}, 7)")
    summary = summary_of(d)
    assert summary["bad_messages"] == [{"file": f"{SUB}/{CSV}", "line": line + 2,
                                        "point": f"transport {rows[line]['transport']} "
                                                 f"stream {name}", "errors": 7}]
    report = (d / "performance_report.txt").read_text()
    assert "*** BAD MESSAGES: 1 transport point" in report


# ------------------------------------------------------------- malformed rows

HEADER = ("transport,test,message_bytes,verify,count,min_ns,mean_ns,p50_ns,p90_ns,p99_ns,"
          "p999_ns,max_ns,messages,seconds,msgs_per_s,gbps,errors,host_cpu_us_per_msg,"
          "peer_cpu_us_per_msg,available,reason")
SIZELAT = "pipe,sizelat,8,xxh3,200,7371,7959.1,7466.0,8744.0,9306.7,9630.1,9644,,,,,0,4.3,4.1,1,"
STREAM = "pipe,stream,64,xxh3,,,,,,,,,34752,0.050436,689026.5,0.0441,0,0.6190,0.6940,1,"
NONE = "vsock,all,,xxh3,,,,,,,,,,,,,,,,0,no /dev/vhost-vsock"
N = {name: i for i, name in enumerate(HEADER.split(","))}


def row(base, **cells):
    out = base.split(",")
    for name, value in cells.items():
        out[N[name]] = str(value)
    return ",".join(out)


MALFORMED = [
    ("test", row(SIZELAT, test="pingpong"),
     "line 3: column test: expected sizelat, stream, all or failed, got 'pingpong'"),
    ("verify", row(SIZELAT, verify="md5"), "line 3: column verify: expected xxh3, sha256 or "
     "none, got 'md5'"),
    ("available-measured", row(SIZELAT, available=0), "line 3: column available: 0 with test "
     "'sizelat': a measured row"),
    ("available-none", row(NONE, available=1), "line 3: column available: 1 with test 'all'"),
    ("available-2", row(SIZELAT, available=2), "line 3: column available: 2 is out of range"),
    ("no-reason", row(NONE, reason=""), "line 3: column reason: empty: a transport not "
     "available says why"),
    ("figures-unavailable", row(NONE, count=5), "line 3: column count: 5 in the row of a "
     "transport not available"),
    ("stream-percentile", row(STREAM, p50_ns=5), "line 3: column p50_ns: 5 in a row of the "
     "other test"),
    ("sizelat-rate", row(SIZELAT, gbps=1), "line 3: column gbps: 1 in a row of the other test"),
    ("no-count", row(SIZELAT, count=""), "line 3: column count: empty value"),
    ("no-p90", row(SIZELAT, p90_ns=""), "line 3: column p90_ns: empty value: a row of timed"),
    ("count-0-no-errors", row(SIZELAT, count=0, **{k: "" for k in ("min_ns", "mean_ns",
                                                                    "p50_ns", "p90_ns",
                                                                    "p99_ns", "p999_ns",
                                                                    "max_ns")}),
     "line 3: column errors: 0 with no round trip timed"),
    ("order", row(SIZELAT, p50_ns=7000), "line 3: column p50_ns: 7000 is below min_ns"),
    ("size-0", row(SIZELAT, message_bytes=0), "line 3: column message_bytes: value 0 is "
     "below 1"),
    ("size-64M+1", row(SIZELAT, message_bytes=(64 << 20) + 1), "line 3: column message_bytes: "
     "67108865 is out of range"),
    ("count-over", row(SIZELAT, count=100_000_001), "line 3: column count: 100000001 is out of "
     "range (more than 100,000,000): accepted 0..100,000,000 (--lat-iterations, at most 100M)"),
    ("messages-2^63", row(STREAM, messages=2 ** 63), "line 3: column messages: "
     "9223372036854775808 is out of range"),
    ("seconds-0", row(STREAM, seconds="0.000000"), "line 3: column seconds: 0: a stream point "
     "lasts"),
    ("rate", row(STREAM, msgs_per_s="700000.0"), "line 3: column msgs_per_s: 700000 is not "
     "messages / seconds (34752 in 0.050436 s): a row no measurement can give"),
    ("gbps", row(STREAM, gbps="0.0500"), "line 3: column gbps: 0.05 is not messages x "
     "message_bytes / seconds / 10^9"),
    ("no-message-size", row(STREAM, message_bytes=""), "line 3: column message_bytes: empty "
     "value: a measured row has one"),
    ("nan", row(STREAM, gbps="nan"), "line 3: column gbps: non-numeric value 'nan'"),
    ("no-transport", row(STREAM, transport=""), "line 3: column transport: empty value"),
]


@pytest.fixture(scope="module")
def malformed(tmp_path_factory):
    root = tmp_path_factory.mktemp("malformed-transport")
    dirs = []
    for name, line, _ in MALFORMED:
        d = root / name
        (d / SUB).mkdir(parents=True)
        (d / SUB / CSV).write_text(f"{HEADER}\n{SIZELAT}\n{line}\n")
        dirs.append(d)
    return dict(zip((m[0] for m in MALFORMED), zip(dirs, run_all(dirs, "--no-plots"))))


@pytest.mark.parametrize("case", [m[0] for m in MALFORMED])
def test_malformed_row_one_line_exit_1(malformed, case):
    directory, proc = malformed[case]
    message = next(m[2] for m in MALFORMED if m[0] == case)
    assert_one_line_error(proc, f"{directory / SUB / CSV}: ", message)
    assert not (directory / "summary.json").exists()


def test_well_formed_rows_of_every_kind(tmp_path):
    """A measured row of each test and an unavailable one, by themselves."""
    (tmp_path / SUB).mkdir()
    (tmp_path / SUB / CSV).write_text(f"{HEADER}\n{SIZELAT}\n{STREAM}\n{NONE}\n")
    proc = run(tmp_path, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    tr = summary_of(tmp_path)["transport"]
    assert [r["p50_ns"] for r in tr["sizes"]] == [7466.0]
    assert [r["msgs_per_s"] for r in tr["stream"]] == [689026.5]
    assert tr["unavailable"][0]["reason"] == "no /dev/vhost-vsock"


# ----------------------------------------------------------------- comparison


def test_compare_two_runs_with_transports(real, tmp_path):
    rows = read_rows(real[0] / SUB / CSV)
    for r in rows:
        if r["test"] == "sizelat":
            for name in ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
                r[name] = repr(float(r[name]) * 2)
    d = copy_with(real, tmp_path / "slow", rows)
    proc = run("--compare", real[0], d, "--output", tmp_path / "cmp", "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    metrics = {m["metric"]: m for m in data["metrics"]}
    assert metrics["transport pipe 8 B p50"]["ratios"] == pytest.approx([1, 2])
    assert metrics["transport unix stream 64 B msgs/s"]["ratios"] == pytest.approx([1, 1])
    assert "transport tcp 4 KiB p99" in (tmp_path / "cmp" / "comparison.txt").read_text()


# ------------------------------------------------- a run in a VM: two sides


@pytest.fixture(scope="module")
def vm_run(real, tmp_path_factory):
    """The real run as run_test.sh --transports leaves it in a VM: its own
    ivshmem rows the VM's (run.json target vm), "tcp" renamed a guest's
    channel (virtio-net-tcp), and ivshmem host-only in host-ivshmem/ with
    half the round trip and twice the rate: the host's channels (pipe, unix)
    go over that, the guest's over the VM's."""
    d = tmp_path_factory.mktemp("vm") / "results"
    shutil.copytree(real[0], d, ignore=shutil.ignore_patterns("*.png", "*.html", "*.json",
                                                              "*.txt"))
    shutil.copy(real[0] / "run.json", d / "run.json")
    shutil.copy(real[0] / SUB / "run.json", d / SUB / "run.json")
    info = json.loads((d / "run.json").read_text())
    info.update(target="vm", accel="tcg", guest="micro")
    (d / "run.json").write_text(json.dumps(info))
    rows = read_rows(d / SUB / CSV)
    for r in rows:
        r["transport"] = {"tcp": "virtio-net-tcp"}.get(r["transport"], r["transport"])
    write_rows(d / SUB / CSV, rows)
    host = d / "host-ivshmem"
    host.mkdir()
    sizes = read_rows(real[0] / "size_latency_results.csv")
    for r in sizes:
        for name in ("min_ns", "mean_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"):
            r[name] = repr(float(r[name]) / 2)
    write_rows(host / "size_latency_results.csv", sizes)
    points = read_rows(real[0] / "stream_results.csv")
    for r in points:  # the same messages in half the time: rows that can have happened
        seconds = float(r["seconds"]) / 2
        r["seconds"] = repr(seconds)
        r["msgs_per_s"] = repr(int(r["messages"]) / seconds)
        r["gbps"] = repr(int(r["bytes"]) / seconds / 1e9)
        for name in ("host_task_clock_ns", "vcpu_task_clock_ns"):  # and half the CPU time
            if r.get(name):
                r[name] = str(int(r[name]) // 2)
    write_rows(host / "stream_results.csv", points)
    meta = json.loads((real[0] / "run.json").read_text())
    meta["files"] = {"size_latency_results.csv": len(sizes), "stream_results.csv": len(points)}
    (host / "run.json").write_text(json.dumps(meta))
    return d, run(d, "-q"), summary_of(d)


def test_each_channel_beside_ivshmem_on_its_side(vm_run):
    d, proc, summary = vm_run
    assert proc.returncode == 0, proc.stderr
    tr = summary["transport"]
    assert tr["baselines"] == ["ivshmem (plain), VM", "ivshmem (plain), host-only"]
    assert tr["transports"][:2] == tr["baselines"]
    vm = {int(r["message_bytes"]): float(r["p50_ns"])
          for r in read_rows(d / "size_latency_results.csv")}
    host = {int(r["message_bytes"]): float(r["p50_ns"])
            for r in read_rows(d / "host-ivshmem" / "size_latency_results.csv")}
    for r in tr["sizes"]:
        if r["transport"] in tr["baselines"]:
            continue
        guest = r["transport"] == "virtio-net-tcp"
        base = vm if guest else host
        assert r["baseline"] == tr["baselines"][0 if guest else 1]
        assert r["ratio_to_ivshmem"]["p50"] == pytest.approx(
            r["p50_ns"] / base[r["message_bytes"]])
    host_rows = [r for r in tr["sizes"] if r["transport"] == tr["baselines"][1]]
    assert [r["file"] for r in host_rows] == ["host-ivshmem/size_latency_results.csv"] * len(
        LAT_SIZES)
    report = (d / "performance_report.txt").read_text()
    assert "the host's over ivshmem host-only (over)" in report
    assert "× ivshmem of" in (d / "report.html").read_text()


def test_host_ivshmem_is_held_to_its_run_json(vm_run, tmp_path):
    d = tmp_path / "results"
    shutil.copytree(vm_run[0], d)
    meta = json.loads((d / "host-ivshmem" / "run.json").read_text())
    meta["status"] = "running"
    (d / "host-ivshmem" / "run.json").write_text(json.dumps(meta))
    assert_one_line_error(run(d, "-q", "--no-plots"), "partial results",
                          "host-ivshmem/run.json: run.json says the run is still running",
                          code=3)
