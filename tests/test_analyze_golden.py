# timeout: 240
"""The analysis's outputs, byte for byte: summary.json, performance_report.txt,
comparison.txt and comparison.json of the fixtures in tests/golden/runs/
(synthetic runs, a real host-only run of every workload, bad messages, a
killed run, a run without run.json, failed frames, histograms cut short)
must stay what tests/golden/expected/ holds, and so must the column lists
and ranges of every CSV schema. The expected files were written by
analyze_results.py as it was before it became the analysis/ package
(commit 610afa9), so a layout change that alters a figure, a line of the
report or a schema fails here.

Only the time of the analysis ("generated") is masked. To write the
expected files anew after a deliberate change of the outputs:
    ANALYZE_GOLDEN_WRITE=1 /usr/bin/python3 -m pytest -q tests/test_analyze_golden.py
(ANALYZE_SCRIPT=path runs another copy of the script, e.g. an older one.)
Run: /usr/bin/python3 -m pytest -q tests/test_analyze_golden.py
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from analyze_common import ROOT

SCRIPT = Path(os.environ.get("ANALYZE_SCRIPT", ROOT / "analyze_results.py"))
GOLDEN = ROOT / "tests" / "golden"
RUNS, EXPECTED = GOLDEN / "runs", GOLDEN / "expected"
WRITE = os.environ.get("ANALYZE_GOLDEN_WRITE") == "1"

# (case, arguments): each is run in tests/golden/runs/ with --output into a
# directory of its own; relative paths keep the outputs free of this machine's.
CASES = [
    ("synthetic", ["synthetic"]),
    ("host", ["host"]),
    ("bad-messages", ["bad-messages", "--allow-partial"]),
    ("killed", ["killed", "--allow-partial"]),
    ("bare-latency", ["bare-latency"]),
    ("frames-failed", ["frames-failed"]),
    ("rate-cut", ["rate-cut", "--allow-partial"]),
    ("compare-synthetic", ["--compare", "synthetic", "synthetic-slow", "bare-latency"]),
    ("compare-host", ["--compare", "host", "host-slower", "bad-messages", "--allow-partial"]),
    ("compare-killed", ["synthetic", "killed", "--allow-partial"]),
]
OUTPUTS = ("summary.json", "performance_report.txt", "comparison.txt", "comparison.json")
GENERATED = re.compile(r'("generated": ")[^"]*(")|(Generated: ).*')


def masked(text):
    """The text with the time of the analysis replaced."""
    return GENERATED.sub(lambda m: (m.group(1) + "<time>" + m.group(2)) if m.group(1)
                         else m.group(3) + "<time>", text)


def analyse(case, args, out):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--output", str(out),
                           "--no-plots", "-q"], cwd=RUNS, capture_output=True, text=True,
                          timeout=120)
    files = {name: masked((out / name).read_text()) for name in OUTPUTS
             if (out / name).exists()}
    files["status"] = f"exit {proc.returncode}\n{proc.stderr}"
    return case, files


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(pool.map(lambda c: analyse(c[0], c[1], root / c[0]), CASES))
    if WRITE:
        for case, files in done.items():
            (EXPECTED / case).mkdir(parents=True, exist_ok=True)
            for old in (EXPECTED / case).iterdir():
                old.unlink()
            for name, text in files.items():
                (EXPECTED / case / name).write_text(text)
    return done


@pytest.mark.parametrize("case", [c for c, _ in CASES])
def test_outputs_are_unchanged(results, case):
    got = results[case]
    want = {p.name: p.read_text() for p in (EXPECTED / case).iterdir()}
    assert sorted(got) == sorted(want), "another set of files is written"
    for name in sorted(want):
        assert got[name] == want[name], f"{case}/{name} differs from tests/golden/expected"


def schemas_text():
    """Every schema host_writer writes, as the analysis reads it: file,
    columns in order, and each column's rule."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from analysis.kinds import SCHEMAS
    except ImportError:  # the script before the package: one module
        import importlib.util
        spec = importlib.util.spec_from_file_location("analyze_results_golden", SCRIPT)
        module = sys.modules["analyze_results_golden"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        SCHEMAS = module.SCHEMAS
    out = {}
    for s in SCHEMAS:
        out[s.file] = {"workload": s.workload, "columns": {
            name: {"numeric": c.numeric, "required": c.required, "allow_empty": c.allow_empty,
                   "integer": c.integer, "minimum": c.minimum, "top": c.top,
                   "accepted": c.accepted if c.numeric else None}
            for name, c in s.columns.items()}}
    return json.dumps(out, indent=1) + "\n"


def test_schemas_are_unchanged():
    path = EXPECTED / "schemas.json"
    text = schemas_text()
    if WRITE:
        path.write_text(text)
    assert text == path.read_text()
