"""
analyze_common - what the analysis tests that run real programs share:
where the tree and its build are, skipping the way tests/run.sh counts it,
building host_writer and guest_reader, waiting for guest_reader's
readiness line, and the checks of a one-line error and of a PNG.
"""
import csv
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path

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


def build():
    proc = subprocess.run(["make", "-s", f"BUILD={BUILD}", f"{BUILD}/host_writer",
                           f"{BUILD}/guest_reader"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        skip(f"cannot build host_writer and guest_reader: {tail}")


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
