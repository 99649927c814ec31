"""
analyze_common - what the analysis tests share: where the tree and its build
are, skipping the way tests/run.sh counts it, running the script, building
host_writer and guest_reader and running them host-only, waiting for
guest_reader's readiness line, the checks of a one-line error and of a PNG,
and results files written as host_writer writes them (synthetic latency and
frames with known figures).
"""
import csv
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "analyze_results.py"
BUILD = Path(os.environ.get("BUILD", "build"))
BUILD = BUILD if BUILD.is_absolute() else ROOT / BUILD
PROG = "analyze_results.py: "


def skip(reason):
    """Skip the whole file the way tests/run.sh counts it: exit status 77."""
    pytest.exit(f"SKIP: {reason}", returncode=77)


def assert_one_line_error(proc, *fragments, code=1):
    """Exit status, one error line with the prefix (warnings aside), no
    traceback, every fragment in it."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert all(line.startswith(PROG) for line in lines), proc.stderr
    errors = [line for line in lines if not line.startswith(PROG + "warning:")]
    assert len(errors) == 1, proc.stderr
    assert len(errors[0]) < 400, errors[0]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def png(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return len(data)


def write_rows(path, rows):
    """rows (dicts) back as CSV, in host_writer's form: no quotes, \\n ends."""
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def build(*programs):
    """Build host_writer, guest_reader and the programs named, or skip."""
    names = ("host_writer", "guest_reader") + programs
    proc = subprocess.run(["make", "-s", f"BUILD={BUILD}", *(f"{BUILD}/{n}" for n in names)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        skip(f"cannot build {', '.join(names)}: {tail}")


def need_shm():
    if not os.path.isdir("/dev/shm") or not os.access("/dev/shm", os.W_OK):
        skip("no writable /dev/shm")


def wait_ready(reader, deadline_s):
    """Wait (bounded) for guest_reader's readiness line on its stdout."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([reader.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = reader.stdout.readline()
        if not line:
            raise AssertionError(f"guest_reader exited first: {reader.wait(5)}")
        if line.startswith("IVB-GUEST-READY"):
            return
    raise AssertionError(f"guest_reader not ready within {deadline_s} s")


def host_writer_run(out, shm_size, *args, timeout=180):
    """host_writer --output OUT ARGS against guest_reader --once on a file
    of shm_size bytes in /dev/shm (mode 0600, removed afterwards); both
    must exit 0. Returns OUT."""
    fd, shm = tempfile.mkstemp(prefix="ivb-analyze-", dir="/dev/shm")
    reader = None
    try:
        os.ftruncate(fd, shm_size)
        os.close(fd)
        reader = subprocess.Popen([str(BUILD / "guest_reader"), "--shm", shm, "--once",
                                   "--idle-exit", "60s"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        wait_ready(reader, 30)
        writer = subprocess.run([str(BUILD / "host_writer"), "--shm", shm, "--output", out,
                                 "--cpu", "none", "--quiet", *map(str, args)],
                                capture_output=True, text=True, timeout=timeout)
        assert writer.returncode == 0, writer.stderr
        assert reader.wait(timeout=30) == 0, reader.stderr.read()
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait(timeout=10)
        os.unlink(shm)
    return out


# ------------------------------------------------ running the analysis


def run(*args, cwd=None, timeout=120):
    """The script with this interpreter, as a separate process."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def run_all(dirs, *args):
    """run(d, *args) for each directory, four processes at a time (each is
    mostly one pandas import)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda d: run(d, *args), dirs))


def run_cases(root, cases, prepare, *args):
    """Prepare each case in a directory of its own under root, then analyse
    them all, four processes at a time. Returns [(directory, finished
    process)] in case order."""
    dirs = []
    for i, case in enumerate(cases):
        directory = root / f"case{i}"
        directory.mkdir()
        prepare(directory, *case)
        dirs.append(directory)
    return list(zip(dirs, run_all(dirs, *args)))


def package():
    """The analysis package imported into this process (analyze_results.py
    puts its directory on sys.path the same way)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import analysis.kinds  # noqa: F401 -- every kind with it
    return sys.modules["analysis"]


def summary_of(directory):
    return json.loads((Path(directory) / "summary.json").read_text())


# ------------------------------------------------ files as host_writer writes them


def write_any(path, content):
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


def read_rows(path):
    """The CSV's rows as dicts of strings, with the csv module."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def data_rows(path):
    return path.read_text().count("\n") - 1


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


LAT_HEADER = "iteration,latency_ns,latency_us,received_ns,received_us"
BW_HEADER = ("frame,width,height,bytes,iteration,success,error_code,error_name,"
             "copy_ns,handoff_ns,verify_ns,total_ns,guest_read_ns,guest_hash_ns,"
             "transfer_gbps,bandwidth_gbps")
FRAMES = {"1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160)}

# Round-trip latencies 1..1000 ns in a shuffled order: the order statistics
# and so every percentile are known in advance.
LATENCY = np.random.default_rng(7).permutation(np.arange(1, 1001))
RECEIVED = LATENCY // 2 + 3

# Frame transfers: (frame, total_ns or None for a failure, error name).
# 1080p: 8 of 10 succeed; 1440p: 5 of 5 with empty gbps columns (the script
# must compute them); 4k: 3 of 4. Listed largest frame first on purpose.
TRANSFERS = (
    [("4k", t, "ok") for t in (10_000_000, 12_000_000, 8_000_000)]
    + [("4k", None, "bad_size")]
    + [("1080p", t, "ok") for t in (2_000_000, 2_500_000, 3_000_000, 3_100_000,
                                    4_000_000, 5_000_000, 2_200_000, 2_900_000)]
    + [("1080p", None, "digest"), ("1080p", None, "timeout")]
    + [("1440p", t, "ok") for t in (4_000_000, 4_400_000, 5_000_000, 6_000_000,
                                    4_100_000)]
)


def frame_bytes(frame):
    width, height = FRAMES[frame]
    return width * height * 3


def write_latency(directory, latency=LATENCY, received=RECEIVED):
    rows = [LAT_HEADER] + [f"{i},{l},{l / 1000:.3f},{r},{r / 1000:.3f}"
                           for i, (l, r) in enumerate(zip(latency, received))]
    (directory / "latency_results.csv").write_text("\n".join(rows) + "\n")


def write_bandwidth(directory, transfers=TRANSFERS, scale=1):
    """One row per transfer; total_ns multiplied by scale."""
    rows, counts = [BW_HEADER], {}
    for frame, total, error in transfers:
        it = counts[frame] = counts.get(frame, -1) + 1
        (w, h), b = FRAMES[frame], frame_bytes(frame)
        if total is None:
            code = {"digest": 3, "bad_size": 2}.get(error, 99)
            rows.append(f"{frame},{w},{h},{b},{it},0,{code},{error},,,,,,,,")
            continue
        total *= scale
        copy, handoff = total // 5, total // 20
        verify = total - copy - handoff
        rates = ("", "") if frame == "1440p" else (f"{b / copy!r}", f"{b / total!r}")
        rows.append(f"{frame},{w},{h},{b},{it},1,0,ok,{copy},{handoff},{verify},{total},"
                    f"{verify // 3},{verify // 2},{rates[0]},{rates[1]}")
    (directory / "bandwidth_results.csv").write_text("\n".join(rows) + "\n")


def write_run_json(directory, files="count", **info):
    """run.json as host_writer writes it: status complete, a run_id, and the
    rows of each CSV already in directory (files="count"), the files given,
    or no files key at all (files=None, an older host_writer)."""
    base = {"version": "v1.2-3-gabcdef", "mode": "plain", "accel": "kvm",
            "guest": "micro", "qemu_version": "8.2.2", "shm_size": 67108864,
            "latency_iterations": 1000, "pinning": {"host": 2, "vcpu": 3},
            "status": "complete", "run_id": "9f86d081884c7d65"}
    if files == "count":
        files = {p.name: data_rows(p) for p in sorted(directory.glob("*_results.csv"))}
    if files is not None:
        base["files"] = files
    base.update(info)
    (directory / "run.json").write_text(json.dumps(base))


def relist(directory, **changes):
    """run.json of directory with changes, its files the CSVs now in it."""
    info = {**json.loads((directory / "run.json").read_text()), **changes}
    info["files"] = {p.name: len(read_rows(p)) for p in sorted(directory.glob("*.csv"))}
    (directory / "run.json").write_text(json.dumps(info))


# The golden fixtures (tests/golden/runs/): a real host-only run of every
# workload ("host") and synthetic ones, as files to copy.
GOLDEN_RUNS = ROOT / "tests" / "golden" / "runs"


# ------------------------------------------------ a bench directory

def fake_vm(src, dst, mode, latency=None, slower=None, **extra):
    """A configuration of the bench as if measured in a TCG guest, made from
    a host-only one: its latency scaled by latency, or its stream points
    slower times slower (rows host_writer could have written), run.json
    saying a VM."""
    scaled(src, dst, latency, slower)
    info = json.loads((src / "run.json").read_text())
    info.update({"mode": mode, "target": "vm", "topology": "host-vm", "guest": "micro",
                 "accel": "tcg", "qemu_version": "7.2.19", "guest_kernel": "6.1.0-41-amd64",
                 "boot_seconds": "7.1", "vcpu_cpu": "1", **extra})
    info["files"] = {p.name: len(read_rows(p)) for p in sorted(dst.glob("*.csv"))}
    (dst / "run.json").write_text(json.dumps(info))


def scaled(src, dst, latency=None, slower=None):
    """A copy of the run src in dst, its latency scaled by latency, or its
    stream points slower times slower (rows host_writer could have
    written); run.json as it was."""
    if latency is None and slower is None:
        shutil.copytree(src, dst)
    else:
        dst.mkdir()
        shutil.copy(src / "run.json", dst / "run.json")
    if latency is not None:
        rows = read_rows(src / "latency_results.csv")
        for r in rows:
            for k in ("latency_ns", "received_ns"):
                r[k] = str(round(float(r[k]) * latency))
                r[k.replace("_ns", "_us")] = f"{float(r[k]) / 1000:.3f}"
        write_rows(dst / "latency_results.csv", rows)
    if slower is not None:
        rows = read_rows(src / "stream_results.csv")
        for r in rows:
            r["seconds"] = f"{float(r['seconds']) * slower:.6f}"
            r["msgs_per_s"] = f"{int(r['messages']) / float(r['seconds']):.1f}"
            r["gbps"] = f"{int(r['bytes']) / float(r['seconds']) / 1e9:.4f}"
        write_rows(dst / "stream_results.csv", rows)


# How make_repeated() scales each repetition: the median is the run itself.
REPEAT_FACTORS = (1.0, 1.2, 0.9)


def make_repeated(part, factors=REPEAT_FACTORS):
    """A configuration of the bench as `make bench` leaves it with
    IVSHMEM_BENCH_REPEAT: rep-1, rep-2, ... made from the run in part (its
    latency, or its stream points' time, scaled by each factor), merged
    into part by python3 -m analysis.repeat merge, as run_test.sh --repeat
    does."""
    single = part.with_name(part.name + ".single")
    part.rename(single)
    part.mkdir()
    stream = (single / "stream_results.csv").exists()
    for k, factor in enumerate(factors, 1):
        rep = part / f"rep-{k}"
        if factor == 1.0:
            shutil.copytree(single, rep)
        else:
            scaled(single, rep, slower=factor) if stream else scaled(single, rep,
                                                                      latency=factor)
        info = json.loads((rep / "run.json").read_text())
        info["run_id"] = f"{info.get('run_id', 'run')}-{k}"
        (rep / "run.json").write_text(json.dumps(info))
    shutil.rmtree(single)
    proc = subprocess.run([sys.executable, "-m", "analysis.repeat", "merge", str(part),
                           "--plan", str(len(factors)), "--stopped", "done"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return part


def make_bench(bench):
    """A directory as `make bench` leaves it, from real host-only runs
    (host_writer's latency, streams, limits and rate sweep against guest_reader,
    eventfd_pingpong on two CPUs and on one) and VM configurations made from
    them (fake_vm): plain 2.5 times host-only, doorbell 1.3 times the
    eventfd floor, guest to guest 1.4 times plain, streams 6 times slower."""
    build("eventfd_pingpong", "transport_bench")
    bench.mkdir(parents=True, exist_ok=True)
    meta = ["--meta", "target=host", "--meta", "guest=host", "--meta", "accel=none"]
    host_writer_run(bench / "host", 4 << 20, "-t", "latency", "--iterations", "2000", *meta)
    host_writer_run(bench / "host-stream", 64 << 20, "-t", "stream", "--direction", "h2g",
                    "--sizes", "64,4k,1M", "--duration", "30ms", *meta)
    host_writer_run(bench / "host-limits", 64 << 20, "-t", "limits",
                    "--limit-sizes", "64,4k,1M", "--limit-duration", "20ms", *meta)
    host_writer_run(bench / "host-rate", 64 << 20, "-t", "rate", "--rate-sweep",
                    "--sweep-from", "5k", "--sweep-to", "20k", "--rate-duration", "100ms",
                    "--p99-bound", "1s", *meta)
    corunner = ["--interference", "cpu"] if shutil.which("stress-ng") else []
    host_writer_run(bench / "host-rate-load", 64 << 20, "-t", "rate", "--rate", "5k",
                    "--rate-duration", "100ms", "--p99-bound", "1s", *corunner, *meta)
    cpus = sorted(os.sched_getaffinity(0))
    for name, other in (("eventfd", cpus[-1]), ("eventfd-same-cpu", cpus[0])):
        proc = subprocess.run([str(BUILD / "eventfd_pingpong"), "-n", "2000", "-a",
                               str(cpus[0]), "-b", str(other), "-o", str(bench / name)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
    host = json.loads((bench / "host" / "run.json").read_text())["latency"]["p50_ns"]
    floor = json.loads((bench / "eventfd" / "run.json").read_text())["latency"]["p50_ns"]
    fake_vm(bench / "host", bench / "plain", "plain", latency=2.5)
    fake_vm(bench / "host", bench / "doorbell", "doorbell", latency=1.3 * floor / host)
    fake_vm(bench / "host", bench / "vm-vm-plain", "plain", latency=3.5, topology="vm-vm")
    fake_vm(bench / "host-stream", bench / "plain-stream", "plain", slower=6)
    fake_vm(bench / "host-stream", bench / "doorbell-stream", "doorbell", slower=6.5)
    fake_vm(bench / "host-limits", bench / "plain-limits", "plain")
    fake_vm(bench / "host-limits", bench / "doorbell-limits", "doorbell")
    fake_vm(bench / "host-rate", bench / "plain-rate", "plain")
    fake_vm(bench / "host-rate-load", bench / "plain-rate-load", "plain")
    # The other channels as run_test.sh --transports runs them without a VM:
    # ivshmem host-only, the host's channels beside it.
    host_writer_run(bench / "plain-transports", 8 << 20, "-t", "sizelat,stream",
                    "--lat-sizes", "64,4k", "--lat-iterations", "100", "--sizes", "64,4k",
                    "--direction", "h2g", "--duration", "30ms", *meta)
    proc = subprocess.run([str(BUILD / "transport_bench"), "-o",
                           str(bench / "plain-transports" / "transports"), "-q",
                           "-T", "unix=unix,pipe=pipe", "--lat-sizes", "64,4k",
                           "--lat-iterations", "100", "--sizes", "64,4k", "--duration", "30ms",
                           "--unavailable", "virtio-serial=no micro guest running"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (bench / "summary.txt").write_text("the table run_test.sh prints\n")
    return bench
