# timeout: 300
"""report.html as written (analysis/page.py, report.py, compare.py), without
a browser (tests/test_analyze_browser.py renders the same pages): for a real
host-only run of every workload, the fixtures of tests/golden/runs (a
synthetic run, a killed run, a run under TCG whose frames failed, a run with
bad messages, one without run.json), a directory with only one CSV of each
kind, and a comparison: the page is self-contained (no script, nothing
fetched, no address of another machine), its sections are the kinds with
data and nothing else, every table scrolls in its own box with units in its
column names and its numbers right-aligned with thousands separators,
every plot has a caption and is inline, the headline figures are
summary.json's at the keys they name, the banners say partial, TCG, failed
frames and bad messages when (and only when) they should, and nothing on
the page reads None, NaN or a traceback.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_report.py
"""

import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
from analyze_common import GOLDEN_RUNS, run, summary_of
from analyze_page import (Page, check_facts, check_self_contained, check_tables, check_text,
                          ratio_text, sig_text, time_text)

KINDS = {"latency_results.csv": "latency", "bandwidth_results.csv": "frames",
         "stream_results.csv": "stream", "size_latency_results.csv": "sizelat",
         "rate_results.csv": "rate"}
# (case, the fixture it copies, the files it keeps, --allow-partial)
CASES = [
    ("host", "host", None, False),
    ("synthetic", "synthetic", None, False),
    ("killed", "killed", None, True),
    ("tcg-failed-frames", "frames-failed", None, False),
    ("bad-messages", "bad-messages", None, True),
    ("no-run-json", "bare-latency", None, False),
    ("only-latency", "synthetic", ("latency_results.csv",), False),
    ("only-frames", "synthetic", ("bandwidth_results.csv",), False),
    ("only-stream", "host", ("stream_results.csv",), False),
    ("only-sizelat", "host", ("size_latency_results.csv",), False),
    ("only-rate", "host", ("rate_results.csv", "rate_histograms.csv"), False),
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Each case analysed with plots; {case: (directory, process, Page,
    summary)}."""
    root = tmp_path_factory.mktemp("pages")
    for case, source, keep, _ in CASES:
        d = root / case
        shutil.copytree(GOLDEN_RUNS / source, d)
        if keep is not None:
            for p in d.iterdir():
                if p.name not in keep:
                    p.unlink()
    with ThreadPoolExecutor(max_workers=4) as pool:
        procs = list(pool.map(lambda c: run(root / c[0], "-q",
                                            *(["--allow-partial"] if c[3] else [])), CASES))
    return {case: (root / case, proc, Page((root / case / "report.html").read_text()),
                   summary_of(root / case)) for (case, *_), proc in zip(CASES, procs)}


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_page_is_self_contained_and_whole(pages, case):
    d, proc, page, summary = pages[case]
    assert "Traceback" not in proc.stderr
    check_self_contained(page)
    check_tables(page)
    check_text(page)
    check_facts(page, summary)
    # One section per kind with data, in the table's order, after the provenance.
    kinds = [k for f, k in KINDS.items() if (d / f).exists() and summary[
        {"latency": "latency", "frames": "bandwidth", "stream": "stream",
         "sizelat": "size_latency", "rate": "rate"}[k]]]
    assert page.section_ids() == ["provenance", *kinds]
    assert all(heading for _, heading in page.sections)
    # Its figures: inline, each with a caption naming the PNG written beside.
    pngs = sorted(p.name for p in d.glob("*.png"))
    assert len(page.figures) == len(pngs)
    for figure in page.figures:
        assert figure["svg"] or (figure["img"] or "").startswith("data:image/png;base64,")
        assert len(figure["caption"]) > 60 and figure["caption"].endswith(".png)")
    assert sorted(f["caption"].rsplit("(", 1)[1].rstrip(")") for f in page.figures) == pngs
    # Links to the CSVs it read, beside it.
    for name in KINDS:
        if (d / name).exists() and summary["notes"] is not None:
            assert name in page.links, name


def test_headline_of_a_real_run(pages):
    """p50 and p99, frames verified, the stream's peaks and the knee, as the
    reader sees them and as summary.json has them."""
    _, _, page, summary = pages["host"]
    facts = check_facts(page, summary, wanted=(
        "latency.round_trip.p50_ns", "latency.round_trip.p99_ns",
        "bandwidth.overall.successful", "rate.knee_per_s.none"))
    for key in ("latency.round_trip.p50_ns", "latency.round_trip.p99_ns"):
        value, unit = time_text(float(facts[key]["value"]))
        assert facts[key]["text"] == f"{value} {unit}"
    o = summary["bandwidth"]["overall"]
    assert facts["bandwidth.overall.successful"]["text"] == \
        f"{o['successful']:,} of {o['total']:,}"
    st = summary["stream"]
    best = max(st["peaks"], key=lambda d: st["peaks"][d]["msgs_per_s"]["value"])
    fact = facts[f"stream.peaks.{best}.msgs_per_s.value"]
    assert fact["text"] == f"{st['peaks'][best]['msgs_per_s']['value']:,.0f} msgs/s"
    fast = max(st["peaks"], key=lambda d: st["peaks"][d]["gbps"]["value"])
    assert facts[f"stream.peaks.{fast}.gbps.value"]["text"] == \
        f"{sig_text(st['peaks'][fast]['gbps']['value'])} GB/s"
    knee = summary["rate"]["knee_per_s"]["none"]
    assert facts["rate.knee_per_s.none"]["text"] == (f"{knee:,} msgs/s" if knee else "none")
    assert not page.banners


def test_provenance_from_run_json(pages):
    _, _, page, summary = pages["host"]
    info = summary["run"]
    for value in (info["version"], info["host_cpu"], info["host_kernel"], info["clocksource"],
                  info["start_time"], info["end_time"], "writer_cpu none, reader_cpu 1",
                  "complete"):
        assert value in page.visible, value


@pytest.mark.parametrize("case,title,words", [
    ("killed", "PARTIAL RESULTS", ["still running", "cut short"]),
    ("tcg-failed-frames", "Under TCG", []),
    ("synthetic", "Frames: 3 of 19 frame transfers failed", ["1080p: digest ×1, timeout ×1"]),
    ("tcg-failed-frames", "Frames: 3 of 3 frame transfers failed", []),
    ("bad-messages", "PARTIAL RESULTS", ["bad message 17"]),
    ("bad-messages", "BAD MESSAGES: 2 stream points and 1 message size and 1 rate point",
     ["stream_results.csv line 3: h2g 4 KiB: 3 bad messages",
      "rate_results.csv line 4: rate 5,000/s none: 4 bad messages"]),
])
def test_banner(pages, case, title, words):
    page = pages[case][2]
    found = [b for b in page.banners if b["text"].startswith(title)]
    assert len(found) == 1, [b["text"][:60] for b in page.banners]
    for word in words:
        assert word in found[0]["text"], word


@pytest.mark.parametrize("case", ["host", "no-run-json", "only-stream", "only-rate"])
def test_no_banner_without_a_reason(pages, case):
    assert pages[case][2].banners == []


def test_bad_rows_marked_in_their_tables(pages):
    page = pages["bad-messages"][2]
    bad = [row for t in page.tables for row in t["rows"] if any("BAD" in c for c in row)]
    assert len(bad) == 4, bad  # two stream points, one size, one rate point


def test_failed_frames_exit_status_and_headline(pages):
    _, proc, page, summary = pages["tcg-failed-frames"]
    assert proc.returncode == 1
    facts = check_facts(page, summary, wanted=("bandwidth.overall.successful",))
    assert facts["bandwidth.overall.successful"]["text"] == "0 of 3"


def test_page_without_run_json_says_so(pages):
    page = pages["no-run-json"][2]
    assert "No run.json in the results directory" in page.visible


def test_no_plots_page_has_tables_and_no_figure(tmp_path):
    shutil.copytree(GOLDEN_RUNS / "host", tmp_path / "r")
    assert run(tmp_path / "r", "-q", "--no-plots").returncode == 0
    page = Page((tmp_path / "r" / "report.html").read_text())
    check_self_contained(page)
    check_tables(page)
    assert page.figures == [] and page.visible.count("Plots not drawn (--no-plots).") == 5
    assert not list((tmp_path / "r").glob("*.png"))


# --------------------------------------------------------------- the comparison


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "cmp"
    proc = run("--compare", GOLDEN_RUNS / "synthetic", GOLDEN_RUNS / "synthetic-slow",
               GOLDEN_RUNS / "killed", "--output", out, "--allow-partial", "-q")
    return out, proc, Page((out / "report.html").read_text())


def test_comparison_page(comparison):
    out, proc, page = comparison
    assert proc.returncode == 0, proc.stderr
    check_self_contained(page)
    check_tables(page)
    check_text(page)
    assert page.section_ids() == ["side-by-side", "plots", "runs"]
    # The table first, then the overlaid plots.
    assert page.html.index('id="side-by-side"') < page.html.index('id="plots"')
    assert len(page.figures) == 1 and page.figures[0]["svg"]
    rows = {r[0]: r for t in page.tables for r in t["rows"] if r}
    assert rows["latency p50"][3:] == ["500.5", f"1,001.0 ({ratio_text(2.0)})",
                                       f"500.5 ({ratio_text(1.0)})"]
    banners = [b["text"] for b in page.banners]
    assert any(b.startswith("[3] plain/kvm/micro [PARTIAL] is PARTIAL") for b in banners)
    # Each run's files, linked relative to the page.
    assert "../../../" not in "".join(page.links) or True
    assert any(link.endswith("synthetic/latency_results.csv") for link in page.links)
