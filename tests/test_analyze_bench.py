# timeout: 300
"""The page of `make bench` (analysis/bench.py): a bench directory built from
real host-only runs (host_writer's latency, streams and rate sweep against
guest_reader, eventfd_pingpong on two CPUs and on one) and VM
configurations made from them with known factors (plain 2.5 times
host-only, doorbell 1.3 times the eventfd floor, guest to guest 1.4 times
plain, streams 6 and 6.5 times slower) is recognised and analysed: each
configuration's round trip and its ratio to its limit computed here
independently from the CSV files and run.json, the streams' and the knee's
ratios, summary.json and report.html agreeing (the headline's ratios as
summary.json has them), the configurations not measured named, a partial
configuration refused (3) or marked, and a limit's run.json that is not a
latency summary refused in one line. And the same bench with its latency
and stream points measured three times (IVSHMEM_BENCH_REPEAT: rep-1..rep-3
merged), each repetition the run scaled by 1, 1.2 and 0.9: each figure the
median (the run itself) with its interval ([min, max] of three), each
ratio the same as before with a bootstrap interval around it.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_bench.py
"""

import json
import shutil

import numpy as np
import pytest
from analyze_common import (REPEAT_FACTORS, assert_one_line_error, make_bench, make_repeated,
                            need_shm, png, read_rows, run, summary_of)
from analyze_page import Page, check_facts, check_self_contained, check_tables, ratio_text


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    need_shm()
    d = make_bench(tmp_path_factory.mktemp("bench") / "bench")
    proc = run(d, "-q")
    return d, proc, summary_of(d), Page((d / "report.html").read_text())


def p50(directory):
    """The round trip's p50 of a configuration, from its CSV (numpy), or
    from run.json for the eventfd floor."""
    path = directory / "latency_results.csv"
    if path.exists():
        return float(np.percentile([float(r["latency_ns"]) for r in read_rows(path)], 50))
    return json.loads((directory / "run.json").read_text())["latency"]["p50_ns"]


def test_bench_analysed(bench):
    d, proc, summary, _ = bench
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert summary["partial"] is False
    assert summary["not_run"] == ["vm-vm-doorbell"]
    for name in ("bench_latency.png", "bench_stream.png", "bench_rate.png",
                 "transport_latency.png", "transport_throughput.png"):
        assert png(d / name) > 10_000, name
    # The runs themselves are left as they were.
    assert not (d / "host" / "summary.json").exists()


def test_round_trip_ratios_to_the_limits(bench):
    d, _, summary, _ = bench
    rows = {r["config"]: r for r in summary["latency"]}
    assert list(rows) == ["host", "eventfd", "eventfd-same-cpu", "plain", "doorbell",
                          "vm-vm-plain"]
    for config, limit in (("plain", "host"), ("doorbell", "eventfd"),
                          ("vm-vm-plain", "plain")):
        assert rows[config]["limit"] == limit
        assert rows[config]["p50_ns"] == pytest.approx(p50(d / config), rel=1e-12)
        assert rows[config]["ratio_to_limit"] == pytest.approx(p50(d / config) / p50(d / limit),
                                                               rel=1e-12)
        assert rows[config]["ratio_to_host_only"] == pytest.approx(
            p50(d / config) / p50(d / "host"), rel=1e-12)
    # The factors the VMs were made with, to the rounding of integer ns.
    assert rows["plain"]["ratio_to_limit"] == pytest.approx(2.5, rel=0.01)
    assert rows["vm-vm-plain"]["ratio_to_limit"] == pytest.approx(1.4, rel=0.01)
    assert rows["doorbell"]["ratio_to_limit"] == pytest.approx(1.3, rel=0.01)
    assert rows["host"]["limit"] is None and rows["eventfd"]["from"] == "run.json"


def test_stream_and_knee_ratios(bench):
    d, _, summary, _ = bench
    host = {int(r["message_bytes"]): float(r["msgs_per_s"])
            for r in read_rows(d / "host-stream" / "stream_results.csv")}
    assert [r["message_bytes"] for r in summary["stream"]] == sorted(host)
    for r in summary["stream"]:
        for name, factor in (("plain-stream", 6), ("doorbell-stream", 6.5)):
            mine = {int(x["message_bytes"]): float(x["msgs_per_s"])
                    for x in read_rows(d / name / "stream_results.csv")}
            assert r[name]["ratio_to_host_only"] == pytest.approx(
                mine[r["message_bytes"]] / host[r["message_bytes"]], rel=1e-12)
            assert r[name]["ratio_to_host_only"] == pytest.approx(1 / factor, rel=0.01)
    knees = summary["rate"]["knee_per_s"]
    info = json.loads((d / "host-rate" / "run.json").read_text())
    assert knees["host-rate"] == info["rate"]["knee_per_s"]["none"] == knees["plain-rate"]
    if knees["host-rate"]:
        assert summary["rate"]["knee_ratio"] == 1.0
    assert {p["config"] for p in summary["rate"]["under_load"]} == {"host-rate-load",
                                                                   "plain-rate-load"}


def test_page_shows_the_ratios_as_summary_has_them(bench):
    _, _, summary, page = bench
    check_self_contained(page)
    check_tables(page)
    rows = summary["latency"]
    wanted = [f"latency.{i}.ratio_to_limit" for i, r in enumerate(rows) if r["limit"]]
    facts = check_facts(page, summary, wanted=["latency.0.p50_ns", *wanted,
                                               "stream.0.plain-stream.ratio_to_host_only"])
    for key in wanted:
        assert facts[key]["text"] == ratio_text(float(facts[key]["value"]))
    assert page.section_ids() == ["latency", "stream", "rate", "transport", "plots",
                                  "configurations"]
    assert len(page.figures) == 5 and all(f["svg"] for f in page.figures)
    table = next(t for t in page.tables if t["head"][:2] == ["configuration", "round trips"])
    plain = next(r for r in table["rows"] if r[0].startswith("VM, plain"))
    assert plain[-2:] == [ratio_text(rows[3]["ratio_to_limit"]), "host-only"]
    banners = [b["text"] for b in page.banners]
    assert any(b.startswith("Under TCG") for b in banners)
    assert "Not measured in this bench: vm-vm-doorbell" in banners


def test_the_other_transports(bench):
    """run_test.sh --transports' run (plain-transports/): its transports
    beside ivshmem, as the run's own page would show them."""
    d, _, summary, page = bench
    tr = summary["transport"]
    assert tr["baselines"] == ["ivshmem (plain)"]
    assert tr["transports"] == ["ivshmem (plain)", "unix", "pipe"]
    assert tr["unavailable"][0]["transport"] == "virtio-serial"
    rows = {(r["transport"], r["message_bytes"]): r for r in tr["sizes"]}
    assert rows[("unix", 64)]["ratio_to_ivshmem"]["p50"] == pytest.approx(
        rows[("unix", 64)]["p50_ns"] / rows[("ivshmem (plain)", 64)]["p50_ns"])
    assert "no micro guest running" in page.visible


def test_a_partial_configuration(bench, tmp_path):
    d = tmp_path / "bench"
    shutil.copytree(bench[0], d)
    info = json.loads((d / "plain" / "run.json").read_text())
    info["status"] = "running"
    (d / "plain" / "run.json").write_text(json.dumps(info))
    assert_one_line_error(run(d, "-q", "--no-plots"), "plain: partial results",
                          "still running", code=3)
    proc = run(d, "-q", "--no-plots", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    assert summary_of(d)["partial_reasons"]["plain"]
    assert any(b["text"].startswith("plain/ is PARTIAL")
               for b in Page((d / "report.html").read_text()).banners)


def test_a_limit_without_a_latency_summary(bench, tmp_path):
    d = tmp_path / "bench"
    shutil.copytree(bench[0], d, ignore=shutil.ignore_patterns("*.png", "*.html"))
    info = json.loads((d / "eventfd" / "run.json").read_text())
    info["latency"]["p50_ns"] = -1
    (d / "eventfd" / "run.json").write_text(json.dumps(info))
    assert_one_line_error(run(d, "-q", "--no-plots"), f"{d / 'eventfd' / 'run.json'}: latency: "
                          "expected an object with count, p50_ns")


def test_host_only_bench(bench, tmp_path):
    """A bench that booted no VM: the limits alone, no ratio to show."""
    d = tmp_path / "bench"
    d.mkdir()
    for name in ("host", "eventfd", "host-stream"):
        shutil.copytree(bench[0] / name, d / name)
    proc = run(d, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    summary = summary_of(d)
    assert [r["config"] for r in summary["latency"]] == ["host", "eventfd"]
    page = Page((d / "report.html").read_text())
    check_facts(page, summary, wanted=["latency.0.p50_ns"])
    assert "plain" in summary["not_run"]


# ------------------------------------------------ parts measured several times

REPEATED = ("host", "host-stream", "plain", "plain-stream", "doorbell", "doorbell-stream")


@pytest.fixture(scope="module")
def repeated_bench(bench, tmp_path_factory):
    d = tmp_path_factory.mktemp("repeated") / "bench"
    shutil.copytree(bench[0], d, ignore=shutil.ignore_patterns("*.png", "*.html",
                                                               "summary.json"))
    for name in REPEATED:
        make_repeated(d / name)
    proc = run(d, "-q")
    return d, proc, summary_of(d), Page((d / "report.html").read_text())


def test_repeated_parts_analysed(bench, repeated_bench):
    """Merged latency CSVs repeat their iteration numbers: each repetition
    is read as a run of its own, and nothing else changes."""
    d, proc, summary, _ = repeated_bench
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert summary["partial"] is False
    assert (d / "host" / "rep-3").is_dir() and summary["not_run"] == bench[2]["not_run"]
    assert summary["rate"] == bench[2]["rate"]
    assert summary["transport"] == bench[2]["transport"]


def test_repeated_round_trip_is_the_median_with_its_interval(bench, repeated_bench):
    d, _, summary, _ = repeated_bench
    single = {r["config"]: r for r in bench[2]["latency"]}
    rows = {r["config"]: r for r in summary["latency"]}
    for config in ("host", "plain", "doorbell"):
        r = rows[config]
        assert r["repetitions"] == len(REPEAT_FACTORS)
        p50s = sorted(p50(d / config / f"rep-{k}") for k in (1, 2, 3))
        assert r["p50_ns"] == pytest.approx(p50s[1], rel=1e-12)
        assert r["p50_ns"] == pytest.approx(single[config]["p50_ns"], rel=1e-12)
        # Three repetitions cannot reach 95 %: [min, max], at 75 %.
        assert r["intervals"]["p50_ns"] == pytest.approx([p50s[0], p50s[2]], rel=1e-12)
        assert r["coverage"]["p50_ns"] == pytest.approx(75.0)
        assert r["count"] == 3 * single[config]["count"]
    for config in ("plain", "doorbell", "vm-vm-plain"):
        r = rows[config]
        assert r["ratio_to_limit"] == pytest.approx(single[config]["ratio_to_limit"], rel=1e-9)
        low, high = r["ratio_to_limit_interval"]
        assert low <= r["ratio_to_limit"] <= high and low < high
    # eventfd's floor is one run.json, host-only's p50 the median of three.
    assert rows["eventfd"]["ratio_to_host_only_interval"] is not None
    assert rows["host"]["ratio_to_host_only_interval"] is None
    assert rows["eventfd-same-cpu"]["intervals"] == {}


def test_repeated_streams_and_their_ratios(bench, repeated_bench):
    _, _, summary, _ = repeated_bench
    single = {r["message_bytes"]: r for r in bench[2]["stream"]}
    for r in summary["stream"]:
        for name in ("host-stream", "plain-stream", "doorbell-stream"):
            p, before = r[name], single[r["message_bytes"]][name]
            assert p["repetitions"] == 3
            assert p["msgs_per_s"] == pytest.approx(before["msgs_per_s"], rel=1e-9)
            low, high = p["intervals"]["msgs_per_s"]
            assert low < p["msgs_per_s"] < high
            if name != "host-stream":
                assert p["ratio_to_host_only"] == pytest.approx(before["ratio_to_host_only"],
                                                                rel=1e-9)
                low, high = p["ratio_to_host_only_interval"]
                assert low <= p["ratio_to_host_only"] <= high
    # The limits rows hold the streams' medians to their receivers' speed.
    assert len(summary["limits"]) == len(bench[2]["limits"])
    for mine, before in zip(summary["limits"], bench[2]["limits"]):
        assert mine["config"] == before["config"]
        assert mine["stream_gbps"] == pytest.approx(before["stream_gbps"], rel=1e-9)


def test_repeated_page(repeated_bench):
    d, _, summary, page = repeated_bench
    check_self_contained(page)
    check_tables(page)
    check_facts(page, summary, wanted=["latency.0.p50_ns"])
    assert "3 repetitions" in page.visible
    table = next(t for t in page.tables if t["head"][:2] == ["configuration", "round trips"])
    plain = next(r for r in table["rows"] if r[0].startswith("VM, plain"))
    low, high = summary["latency"][3]["ratio_to_limit_interval"]
    assert plain[-2] == (f"{ratio_text(summary['latency'][3]['ratio_to_limit'])} "
                         f"[{ratio_text(low)}, {ratio_text(high)}]")
    assert "percentile-bootstrap interval" in page.visible
    assert png(d / "bench_stream.png") > 10_000 and png(d / "bench_latency.png") > 10_000
