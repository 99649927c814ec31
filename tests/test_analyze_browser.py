# timeout: 400
"""report.html in a real browser: Debian's Chromium, headless, with the
network off (a network namespace of its own where unshare can make one,
every request sent to a closed port otherwise) and its net log kept. Each
page kind is rendered: a real host-only run of every workload with
transport_bench's transports beside it, the fixtures of tests/golden/runs
(a synthetic run, a killed run, a run under TCG whose frames failed, bad
messages), a directory with only one CSV of each kind, a comparison, and a
bench. For each: the screenshot at 1280 px is not blank (its pixels), the
DOM after rendering holds the headline figures exactly as summary.json has
them and as a reader must see them (p50, p99, frames verified, the stream's
peak, the knee, the bench's ratios), the page asked the network for
nothing, and at a phone's 390 px the page does not scroll sideways (wide
tables scroll in their own boxes, figures fit). The screenshots are kept in
build/test-logs/analyze-screenshots/ to be looked at.

Exits 77 (skip) when Chromium is not installed (apt-get install chromium;
make check's set-up installs it), when the programs cannot be built or
/dev/shm is not there.
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_browser.py
"""

import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
from analyze_common import (BUILD, GOLDEN_RUNS, build, host_writer_run, make_bench, need_shm,
                            run, skip, summary_of)
from analyze_page import (Page, browse, check_facts, chromium, layout, page_requests, pixels,
                          ratio_text, sig_text, time_text)

SHOTS = BUILD / "test-logs" / "analyze-screenshots"
PHONE, DESKTOP = 390, 1280


def real_run(root):
    """Every workload host-only, small, and transport_bench beside it."""
    build("transport_bench")
    out = root / "host"
    host_writer_run(out, 16 << 20, "-t", "latency,frames,stream,sizelat,rate",
                    "--iterations", "2000", "--frames", "64x64,320x240", "--frame-iterations",
                    "3", "--sizes", "64,4k,64k", "--duration", "30ms", "--lat-sizes",
                    "8,512,4k,32k", "--lat-iterations", "100", "--rate-sweep", "--sweep-from",
                    "5k", "--sweep-to", "20k", "--rate-duration", "100ms", "--p99-bound", "1s",
                    "--meta", "target=host", "--meta", "guest=host", "--meta", "accel=none",
                    timeout=180)
    proc = subprocess.run([str(BUILD / "transport_bench"), "-o", str(out / "transports"), "-q",
                           "-T", "pipe,unix,tcp", "--lat-sizes", "8,512,4k,32k",
                           "--lat-iterations", "100", "--sizes", "64,4k,64k",
                           "--duration", "30ms", "--unavailable", "vsock=no vhost-vsock here"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return out


def one_csv(root, name, source, files):
    d = root / name
    d.mkdir()
    for f in files:
        shutil.copy(source / f, d / f)
    return d


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """{name: (report.html, summary.json's figures, analysis process)} of
    every page kind, each analysed with plots."""
    if chromium() is None:
        skip("Debian's chromium is not installed (apt-get install chromium): no browser to "
             "render report.html in")
    need_shm()
    build()
    root = tmp_path_factory.mktemp("browser")
    host = real_run(root)
    runs = {"real-run": (host, []),
            "synthetic": (GOLDEN_RUNS / "synthetic", []),
            "killed": (GOLDEN_RUNS / "killed", ["--allow-partial"]),
            "tcg-failed-frames": (GOLDEN_RUNS / "frames-failed", []),
            "bad-messages": (GOLDEN_RUNS / "bad-messages", ["--allow-partial"])}
    for name, files in (("only-latency", ["latency_results.csv"]),
                        ("only-frames", ["bandwidth_results.csv"]),
                        ("only-stream", ["stream_results.csv"]),
                        ("only-sizelat", ["size_latency_results.csv"]),
                        ("only-rate", ["rate_results.csv", "rate_histograms.csv"])):
        runs[name] = (one_csv(root, name, host, files), [])
    runs["only-transport"] = (host / "transports", [])
    bench = make_bench(root / "bench")

    def analyse(item):
        name, (directory, args) = item
        out = root / "out" / name
        return name, out, run(directory, "-q", "--output", out, *args)

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(analyse, runs.items()))
        cmp = pool.submit(run, "--compare", GOLDEN_RUNS / "synthetic",
                          GOLDEN_RUNS / "synthetic-slow", GOLDEN_RUNS / "killed", "-q",
                          "--allow-partial", "--output", root / "out" / "comparison")
        b = pool.submit(run, bench, "-q")
        cmp, b = cmp.result(), b.result()
    found = {name: (out / "report.html", summary_of(out), proc) for name, out, proc in done}
    found["comparison"] = (root / "out" / "comparison" / "report.html", None, cmp)
    found["bench"] = (bench / "report.html", summary_of(bench), b)
    return found


@pytest.fixture(scope="module")
def rendered(pages, tmp_path_factory):
    """Each page in Chromium: its DOM at 1280 px with the net log, its
    layout at 390 px, its screenshot at 1280 px (and at 390 px for the
    pages a phone's reader opens first)."""
    work = tmp_path_factory.mktemp("chromium")
    SHOTS.mkdir(parents=True, exist_ok=True)

    def one(name):
        html = pages[name][0]
        netlog = work / f"{name}.netlog.json"
        dom = browse(html, DESKTOP, netlog=netlog)
        shot = SHOTS / f"{name}-{DESKTOP}.png"
        browse(html, DESKTOP, 1800, screenshot=shot)
        phone = None
        if name in ("real-run", "comparison", "bench", "killed"):
            phone = SHOTS / f"{name}-{PHONE}.png"
            browse(html, PHONE, 1600, screenshot=phone)
        return name, {"dom": Page(dom), "requests": page_requests(netlog), "shot": shot,
                      "phone": phone, "layout": layout(html, PHONE, work)}

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, pages))


NAMES = ["real-run", "synthetic", "killed", "tcg-failed-frames", "bad-messages", "only-latency",
         "only-frames", "only-stream", "only-sizelat", "only-rate", "only-transport",
         "comparison", "bench"]


@pytest.mark.parametrize("name", NAMES)
def test_rendered_not_blank(rendered, name):
    ink, colours = pixels(rendered[name]["shot"])
    assert ink > 0.03 and colours > 40, (ink, colours)
    if rendered[name]["phone"] is not None:
        ink, colours = pixels(rendered[name]["phone"])
        assert ink > 0.03 and colours > 40, (ink, colours)


@pytest.mark.parametrize("name", NAMES)
def test_no_network_request(rendered, name):
    assert rendered[name]["requests"] == []


@pytest.mark.parametrize("name", NAMES)
def test_no_sideways_scrolling_on_a_phone(rendered, name):
    scroll, client, boxes = rendered[name]["layout"]
    assert client <= PHONE and scroll <= client, (scroll, client)
    for tag, right, _ in boxes:
        if tag in ("FIGURE", "SECTION"):
            assert right <= client, (tag, right, client)


@pytest.mark.parametrize("name", NAMES)
def test_page_rendered_whole(pages, rendered, name):
    """The analysis succeeded (or exited 1 for what it flags) and every
    section is in the DOM with its heading."""
    _, _, proc = pages[name]
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    dom = rendered[name]["dom"]
    assert dom.sections and all(heading for _, heading in dom.sections)
    assert "Traceback" not in dom.visible and " None " not in dom.visible


def test_real_run_key_figures(pages, rendered):
    """p50, p99, frames verified, the stream's peaks, the knee and the
    fastest other transport: summary.json's, shown as a reader sees them."""
    summary, dom = pages["real-run"][1], rendered["real-run"]["dom"]
    facts = check_facts(dom, summary, wanted=(
        "latency.round_trip.p50_ns", "latency.round_trip.p99_ns",
        "bandwidth.overall.successful", "rate.knee_per_s.none"))
    for key in ("latency.round_trip.p50_ns", "latency.round_trip.p99_ns"):
        value, unit = time_text(float(facts[key]["value"]))
        assert facts[key]["text"] == f"{value} {unit}"
    o = summary["bandwidth"]["overall"]
    assert facts["bandwidth.overall.successful"]["text"] == \
        f"{o['successful']:,} of {o['total']:,}"
    peaks = summary["stream"]["peaks"]
    best = max(peaks, key=lambda d: peaks[d]["msgs_per_s"]["value"])
    assert facts[f"stream.peaks.{best}.msgs_per_s.value"]["text"] == \
        f"{peaks[best]['msgs_per_s']['value']:,.0f} msgs/s"
    fast = max(peaks, key=lambda d: peaks[d]["gbps"]["value"])
    assert facts[f"stream.peaks.{fast}.gbps.value"]["text"] == \
        f"{sig_text(peaks[fast]['gbps']['value'])} GB/s"
    knee = summary["rate"]["knee_per_s"]["none"]
    assert facts["rate.knee_per_s.none"]["text"] == (f"{knee:,} msgs/s" if knee else "none")
    assert any(k.startswith("transport.sizes.") for k in facts)
    assert [s for s, _ in dom.sections] == ["provenance", "latency", "frames", "stream",
                                            "sizelat", "rate", "transport"]
    assert len(dom.figures) == 10 and all(f["svg"] for f in dom.figures)


def test_bench_ratios(pages, rendered):
    summary, dom = pages["bench"][1], rendered["bench"]["dom"]
    wanted = [f"latency.{i}.ratio_to_limit" for i, r in enumerate(summary["latency"])
              if r["limit"]]
    facts = check_facts(dom, summary, wanted=wanted)
    for key in wanted:
        assert facts[key]["text"] == ratio_text(float(facts[key]["value"]))


@pytest.mark.parametrize("name,title", [
    ("killed", "PARTIAL RESULTS"), ("tcg-failed-frames", "Under TCG"),
    ("tcg-failed-frames", "Frames: 3 of 3 frame transfers failed"),
    ("bad-messages", "BAD MESSAGES"),
    ("comparison", "[3] plain/kvm/micro [PARTIAL] is PARTIAL"), ("bench", "Under TCG"),
])
def test_banner_rendered(rendered, name, title):
    assert any(b["text"].startswith(title) for b in rendered[name]["dom"].banners), \
        [b["text"][:50] for b in rendered[name]["dom"].banners]


@pytest.mark.parametrize("name", ["real-run", "synthetic", "only-latency", "only-stream",
                                  "only-transport"])
def test_no_banner_rendered_without_a_reason(rendered, name):
    banners = [b["text"] for b in rendered[name]["dom"].banners]
    if name == "synthetic":  # three of its frame transfers failed, on purpose
        assert [b[:39] for b in banners] == ["Frames: 3 of 19 frame transfers failed "]
    else:
        assert banners == []
