# timeout: 180
"""The chain kind (analysis/kinds/chain.py): chain_results.csv, the
forwarding chain's rate and latency by message size, batch and touch, from
a real host-only run of host_writer -t chain against guest_reader: every
row as written, the text section, the plot, the page (self-contained,
headline figures as summary.json has them); rows no measurement gives
refused with one line naming the line and column (msgs_per_s that is not
messages / seconds, gbps that is not bytes / seconds, an unknown touch,
percentiles out of order, more latencies than messages, latency cells
empty with latencies timed); and a row whose messages failed a check
(errors or nf_errors > 0) flagged as bad messages, exit 1.

Exits 77 (skip) when the programs cannot be built or /dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_chain.py
"""

import json
import shutil

import pytest
from analyze_common import (assert_one_line_error, build, host_writer_run, need_shm, package,
                            png, read_rows, run, run_cases, summary_of, write_rows)
from analyze_page import Page, check_facts, check_self_contained, check_tables, check_text

CHAIN_CSV = "chain_results.csv"
SIZES = (64, 4096)
TOUCHES = ("none", "write")
BATCHES = (1, 16)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """host_writer -t chain, two sizes, two batches, two touches, then the
    analysis with its plots."""
    need_shm()
    build()
    out = tmp_path_factory.mktemp("chain") / "results"
    host_writer_run(out, 16 << 20, "-t", "chain", "--chain-sizes", "64,4k", "--chain-batch",
                    "1,16", "--chain-touch", ",".join(TOUCHES), "--chain-duration", "20ms",
                    "--meta", "target=host", "--meta", "guest=host", "--meta", "accel=none")
    proc = run(out, "-q")
    return out, proc, summary_of(out)


def test_real_run_analysed_cleanly(real):
    out, proc, summary = real
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert summary["partial"] is False and summary["bad_messages"] == []
    ch = summary["chain"]
    assert ch["touches"] == list(TOUCHES) and ch["batches"] == list(BATCHES)
    assert ch["sizes"] == list(SIZES) and ch["bad_points"] == 0
    assert set(ch["peaks"]) == set(TOUCHES)
    info = json.loads((out / "run.json").read_text())["chain"]
    assert ch["settings"]["duration_ns"] == info["duration_ns"] == 20_000_000
    assert png(out / "chain.png") > 10_000


def test_points_are_the_csv_rows(real):
    """Every row, every column as written, with its line; in touch, batch,
    size order."""
    out, _, summary = real
    rows = read_rows(out / CHAIN_CSV)
    points = summary["chain"]["points"]
    assert len(points) == len(rows) == len(SIZES) * len(TOUCHES) * len(BATCHES)
    assert [(p["touch"], p["batch"], p["message_bytes"]) for p in points] == sorted(
        ((p["touch"], p["batch"], p["message_bytes"]) for p in points),
        key=lambda k: (TOUCHES.index(k[0]), k[1], k[2]))
    for p in points:
        row = rows[p["line"] - 2]
        for name, text in row.items():
            key = "p99_9_ns" if name == "p999_ns" else name
            if name in ("touch", "verify", "wait", "latency_method", "receiver"):
                assert p[key] == text, name
            elif text == "":
                assert p[key] is None, name
            else:
                assert p[key] == float(text), name


def test_report_and_page(real):
    out, _, summary = real
    report = (out / "performance_report.txt").read_text()
    assert "FORWARDING CHAIN" in report and "Peak per touch:" in report
    first = summary["chain"]["points"][0]
    assert f"{first['msgs_per_s']:,.0f}" in report
    page = Page((out / "report.html").read_text())
    check_self_contained(page)
    check_tables(page)
    check_text(page)
    facts = check_facts(page, summary, wanted=["chain.points.0.p50_ns"])
    assert any(key.endswith(".msgs_per_s") for key in facts)
    assert "chain" in page.section_ids()


# ------------------------------------------------ rows no measurement gives


def change(rows, i, **cells):
    rows = [dict(r) for r in rows]
    rows[i].update({k: str(v) for k, v in cells.items()})
    return rows


BAD_ROWS = [
    # (what, row index, cells, fragments of the error)
    ("rate", 1, {"msgs_per_s": "9999999.0"}, ["line 3: column msgs_per_s", "is not messages / "
                                             "seconds", "a row no measurement can give"]),
    ("gbps", 0, {"gbps": "99.0000"}, ["line 2: column gbps", "is not messages x "
                                     "message_bytes / seconds"]),
    ("touch", 2, {"touch": "poke"}, ["line 4: column touch", "expected none, read or write, "
                                    "got 'poke'"]),
    ("method", 0, {"latency_method": "guess"}, ["column latency_method",
                                                "expected exact or histogram"]),
    ("order", 0, {"p90_ns": "1.0"}, ["line 2: column p90_ns", "is below p50_ns"]),
    ("count", 0, {"latency_count": "999999999"}, ["line 2: column latency_count",
                                                  "latencies of"]),
    ("empty", 0, {"p50_ns": ""}, ["line 2: column p50_ns", "empty, with"]),
    ("slots", 0, {"slots": "100"}, ["line 2: column slots", "not a power of two"]),
    ("small", 0, {"message_bytes": "8"}, ["column message_bytes", "below 24"]),
    ("negative", 0, {"nf_errors": "-1"}, ["column nf_errors", "below 0"]),
]


@pytest.fixture(scope="module")
def bad_runs(real, tmp_path_factory):
    rows = read_rows(real[0] / CHAIN_CSV)

    def prepare(directory, _what, i, cells, _fragments):
        write_rows(directory / CHAIN_CSV, change(rows, i, **cells))

    return run_cases(tmp_path_factory.mktemp("bad"), BAD_ROWS, prepare, "--no-plots")


@pytest.mark.parametrize("case", range(len(BAD_ROWS)), ids=[c[0] for c in BAD_ROWS])
def test_a_row_no_measurement_gives_is_refused(bad_runs, case):
    directory, proc = bad_runs[case]
    assert_one_line_error(proc, str(directory / CHAIN_CSV), *BAD_ROWS[case][3])


# ------------------------------------------------ bad messages


@pytest.mark.parametrize("cells", [{"errors": 3}, {"nf_errors": 2, "errors": 2},
                                   {"nf_errors": 1}])
def test_bad_messages_are_flagged(real, tmp_path, cells):
    d = tmp_path / "run"
    shutil.copytree(real[0], d, ignore=shutil.ignore_patterns("*.png", "*.html", "summary.json"))
    write_rows(d / CHAIN_CSV, change(read_rows(real[0] / CHAIN_CSV), 1, **cells))
    proc = run(d, "--no-plots", "-q")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = summary_of(d)
    bad = max(cells.get("errors", 0), cells.get("nf_errors", 0))
    [flag] = summary["bad_messages"]
    assert flag["file"] == CHAIN_CSV and flag["line"] == 3 and flag["errors"] == bad
    assert flag["point"].startswith("chain ")
    assert summary["chain"]["bad_points"] == 1
    assert f"BAD: {bad:,} bad messages" in (d / "performance_report.txt").read_text()
    page = Page((d / "report.html").read_text())
    assert any("BAD MESSAGES" in b["text"].upper() for b in page.banners)


def test_headline_figures_of_a_repeated_run():
    """msgs/s and p50 of each point are what a repeated run gives
    intervals for; GB/s and p99 are not."""
    chain = package().kinds.chain
    assert chain.headline_figure("chain none batch 1 64 B msgs/s")
    assert chain.headline_figure("chain write batch 16 4 KiB p50")
    assert not chain.headline_figure("chain none batch 1 64 B p99")
    assert not chain.headline_figure("chain none batch 1 64 B GB/s")
    assert not chain.headline_figure("stream h2g 64 B msgs/s p50")
