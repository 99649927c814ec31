# timeout: 180
"""The limits kind (analysis/kinds/limits.py): limits_results.csv, each
side's copy and XXH3 speed by message size, written in tmp_path as
workloads/limits.c writes it, analysed alone (a directory with only that
file is a run): each size and loop's GB/s of both sides and their ratio as
written, the receiver's copy + XXH3 as one speed, the text section, the
plot, the page (self-contained, units named, headline figures as
summary.json has them); rows no measurement gives refused with one line
(gbps that is not bytes / seconds, bytes that are not iterations x size,
an unknown loop or side, no time measured, more CPU than the time
allows); the headline figures a repeated run gives intervals for; and a
real host-only run of host_writer -t limits, when the programs are built.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_limits.py
"""

import json

import pytest
from analyze_common import (BUILD, assert_one_line_error, host_writer_run, need_shm, package,
                            png, read_rows, run, run_all, skip, summary_of, write_rows)
from analyze_page import Page, check_facts, check_self_contained, check_tables, check_text

LIMITS_CSV = "limits_results.csv"
SIZES = (64, 4096, 1 << 20)
LOOPS = ("copy", "copy_shm", "xxh3")
# GB/s of each loop and side at each size: (initiator, responder).
SPEED = {("copy", 64): (16.0, 19.0), ("copy_shm", 64): (12.0, 11.0), ("xxh3", 64): (7.5, 7.0),
         ("copy", 4096): (28.0, 66.0), ("copy_shm", 4096): (52.0, 48.0),
         ("xxh3", 4096): (17.5, 18.5), ("copy", 1 << 20): (44.0, 34.0),
         ("copy_shm", 1 << 20): (39.0, 38.0), ("xxh3", 1 << 20): (19.5, 15.0)}


def row(size, loop, side, gbps, seconds=0.2, cpu=99.5):
    """A row as limits.c's write_row() prints it, for a loop that ran at
    about gbps for seconds."""
    iterations = max(1, round(gbps * 1e9 * seconds / size))
    moved = iterations * size
    return {"message_bytes": str(size), "loop": loop, "side": side,
            "iterations": str(iterations), "bytes": f"{moved:.0f}",
            "seconds": f"{seconds:.6f}", "bytes_per_s": f"{moved / seconds:.1f}",
            "gbps": f"{moved / (seconds * 1e9):.4f}", "cpu_percent": f"{cpu:.1f}"}


def good_rows():
    """Every size, loop and side, in limits.c's order (per size, per loop,
    the initiator's row and then the responder's)."""
    return [row(size, loop, side, SPEED[loop, size][i])
            for size in SIZES for loop in LOOPS for i, side in enumerate(("initiator",
                                                                          "responder"))]


def write_run(directory, rows, guest="micro", refused=0, **meta):
    """limits_results.csv and a run.json as host_writer writes them (meta:
    run.json's other fields)."""
    directory.mkdir()
    write_rows(directory / LIMITS_CSV, rows)
    info = {"version": "v1.2-3-gabcdef", "mode": "plain", "accel": "kvm", "guest": guest,
            "target": "host" if guest == "host" else "vm", "status": "complete",
            "run_id": "9f86d081884c7d65", "files": {LIMITS_CSV: len(rows)},
            "limits": {"sizes": list(SIZES), "loops": list(LOOPS), "duration_ns": 200000000,
                       "warmup_ns": 40000000, "initiator_copy_impl": "memcpy,-,memcpy",
                       "responder_copy_impl": "memcpy,-,memcpy",
                       "initiator_xxh3_impl": "xxh3-vector",
                       "responder_xxh3_impl": "xxh3-vector", "loops_measured": len(rows) // 2,
                       "loops_refused": refused, "sizes_skipped": 0}, **meta}
    (directory / "run.json").write_text(json.dumps(info))
    return directory


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A run of every size, loop and side, analysed with plots."""
    d = write_run(tmp_path_factory.mktemp("limits") / "good", good_rows())
    return d, run(d), summary_of(d)


def test_a_run_of_limits_alone_is_analysed(good):
    d, proc, summary = good
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert summary["partial"] is False and summary["notes"] == []
    lim = summary["limits"]
    assert lim["loops"] == list(LOOPS) and lim["sizes"] == list(SIZES)
    assert lim["responder"] == "guest_reader in the guest"
    rows = read_rows(d / LIMITS_CSV)
    assert len(lim["rows"]) == len(rows)
    assert [(p["message_bytes"], p["loop"]) for p in lim["points"]] == [
        (s, l) for s in SIZES for l in LOOPS]
    for i, p in enumerate(lim["points"]):
        mine, theirs = rows[2 * i], rows[2 * i + 1]
        assert p["initiator_gbps"] == float(mine["gbps"])
        assert p["responder_gbps"] == float(theirs["gbps"])
        assert p["responder_over_initiator"] == pytest.approx(
            float(theirs["gbps"]) / float(mine["gbps"]))
        assert p["lines"] == [2 * i + 2, 2 * i + 3]
    for r in lim["receiver"]:
        shm = next(p for p in lim["points"]
                   if p["loop"] == "copy_shm" and p["message_bytes"] == r["message_bytes"])
        xxh3 = next(p for p in lim["points"]
                    if p["loop"] == "xxh3" and p["message_bytes"] == r["message_bytes"])
        assert r["copy"] == "copy_shm"
        assert r["copy_and_xxh3_gbps"] == pytest.approx(
            1 / (1 / shm["responder_gbps"] + 1 / xxh3["responder_gbps"]))
    report = (d / "performance_report.txt").read_text()
    assert "EACH SIDE'S LIMITS" in report
    assert "  1 MiB  copy_shm              39              38      x0.97" in report
    assert "responder's implementations: copy memcpy,-,memcpy, xxh3 xxh3-vector." in report
    assert png(d / "limits_speed.png") > 10_000


def test_the_page_of_a_limits_run(good):
    d, _, summary = good
    page = Page((d / "report.html").read_text())
    check_self_contained(page)
    check_tables(page)
    check_text(page)
    facts = check_facts(page, summary)
    assert page.section_ids() == ["provenance", "limits"]
    # The responder's copy out of shared memory and its XXH3 at 1 MiB.
    points = summary["limits"]["points"]
    wanted = [f"limits.points.{i}.responder_gbps" for i, p in enumerate(points)
              if p["message_bytes"] == 1 << 20 and p["loop"] in ("copy_shm", "xxh3")]
    assert sorted(facts) == sorted(wanted)
    assert LIMITS_CSV in page.links


def test_headline_figures_are_the_responders():
    """The rows a repeated run gives intervals for: the responder's copy
    out of shared memory and its XXH3, per size."""
    kind = next(k for k in package().kinds.KINDS if k.name == "limits")
    assert kind.headline_figure("limits copy_shm 4 KiB responder GB/s")
    assert kind.headline_figure("limits xxh3 64 B responder GB/s")
    assert not kind.headline_figure("limits copy 4 KiB responder GB/s")
    assert not kind.headline_figure("limits xxh3 64 B initiator GB/s")


def test_compare_two_runs(good, tmp_path):
    slower = [dict(r) for r in good_rows()]
    slower = [row(int(r["message_bytes"]), r["loop"], r["side"], float(r["gbps"]) / 10)
              if r["side"] == "responder" else r for r in slower]
    other = write_run(tmp_path / "tcg", slower, accel="tcg")
    proc = run("--compare", good[0], other, "--output", tmp_path / "cmp")
    assert proc.returncode == 0, proc.stderr
    metrics = {m["metric"]: m for m in json.loads(
        (tmp_path / "cmp" / "comparison.json").read_text())["metrics"]}
    m = metrics["limits copy_shm 1 MiB responder GB/s"]
    written = [float(read_rows(d / LIMITS_CSV)[-3]["gbps"]) for d in (good[0], other)]
    assert m["values"] == written and m["better"] == "higher"
    assert m["values"][1] == pytest.approx(m["values"][0] / 10, rel=1e-3)
    assert png(tmp_path / "cmp" / "comparison_limits.png") > 10_000


def test_loops_left_out_are_said(tmp_path):
    """A loop whose responder figures host_writer refused has no rows and
    its run did not complete (partial: 3); analysed with --allow-partial,
    the report and the page say what was left out."""
    why = ("the responder's copy loop over 64 bytes left a buffer whose XXH3 is "
           "0123456789abcdef, not the posted bytes' fedcba9876543210: its figures are not "
           "recorded")
    d = write_run(tmp_path / "refused", good_rows()[2:], refused=1, status=why)
    assert_one_line_error(run(d, "-q", "--no-plots"), "partial results", why, code=3)
    proc = run(d, "-q", "--no-plots", "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    assert "NOTE: 1 loop(s) left out: the responder's figures were refused" in \
        (d / "performance_report.txt").read_text()
    banners = [b["text"] for b in Page((d / "report.html").read_text()).banners]
    assert any(b.startswith("Each side's limits: 1 loop(s) left out") for b in banners)


# ------------------------------------------------------------- refused rows


def edit(rows, index, **values):
    rows = [dict(r) for r in rows]
    rows[index].update({k: str(v) for k, v in values.items()})
    return rows


BAD = {
    # gbps disagreeing with bytes / seconds (a forged or miscopied figure)
    "gbps": (edit(good_rows(), 3, gbps="12.0000"),
             ["line 5: column gbps: 12 is not bytes / seconds / 10^9",
              "a row no measurement can give"]),
    "bytes_per_s": (edit(good_rows(), 0, bytes_per_s="1.0"),
                    ["line 2: column bytes_per_s: 1 is not bytes / seconds"]),
    "bytes": (edit(good_rows(), 1, bytes="64"),
              ["line 3: column bytes: 64 is not iterations x message_bytes"]),
    "loop": (edit(good_rows(), 2, loop="memcpy"),
             ["line 4: column loop: expected copy, copy_shm or xxh3, got 'memcpy'"]),
    "side": (edit(good_rows(), 2, side="guest"),
             ["line 4: column side: expected initiator or responder, got 'guest'"]),
    "seconds": (edit(good_rows(), 0, seconds="0.000000"),
                ["line 2: column seconds: 0: no time measured"]),
    "cpu": (edit(good_rows(), 1, cpu_percent="900.0"),
            ["line 3: column cpu_percent: 900 % is more CPU than 0.2 s of looping can use"]),
    "iterations": (edit(good_rows(), 0, iterations="0"),
                   ["line 2: column iterations: value 0 is below 1"]),
    "gbps-range": (edit(good_rows(), 0, gbps="5000"),
                   ["line 2: column gbps: 5000 is out of range", "limits.c MAX_BYTES_PER_NS"]),
}


@pytest.fixture(scope="module")
def refused(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    dirs = [write_run(root / name, rows) for name, (rows, _) in BAD.items()]
    return dict(zip(BAD, run_all(dirs, "--no-plots")))


@pytest.mark.parametrize("name", list(BAD))
def test_rows_no_measurement_gives_are_refused(refused, name):
    assert_one_line_error(refused[name], LIMITS_CSV, *BAD[name][1])


# -------------------------------------------------------------------- a real run


def test_a_real_host_only_run(tmp_path):
    """host_writer -t limits against guest_reader on the host, analysed."""
    need_shm()
    if not all((BUILD / p).exists() for p in ("host_writer", "guest_reader")):
        skip("host_writer and guest_reader are not built (make)")
    out = host_writer_run(tmp_path / "host", 8 << 20, "-t", "limits", "--limit-sizes", "64,4k",
                          "--limit-duration", "5ms", "--meta", "target=host",
                          "--meta", "guest=host", timeout=60)
    proc = run(out, "-q", "--no-plots")
    assert proc.returncode == 0, proc.stderr
    lim = summary_of(out)["limits"]
    assert lim["sizes"] == [64, 4096] and lim["loops"] == list(LOOPS)
    assert lim["responder"] == "guest_reader on the host, host-only"
    assert len(lim["points"]) == 6 and all(p["responder_gbps"] for p in lim["points"])
    info = json.loads((out / "run.json").read_text())["limits"]
    assert lim["implementations"]["responder_xxh3_impl"] == info["responder_xxh3_impl"]
