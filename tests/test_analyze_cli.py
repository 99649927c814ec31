# timeout: 120
"""analyze_results.py as a command (the thin main over the analysis/
package): the header uv reads, the package importing under Debian's python3
(and with -I, which leaves the script's directory off sys.path), --help with
the defaults and exit statuses, the default results/ directory, --output
leaving the input alone, usage errors (exit 2), an output that cannot be
written (one line, exit 1), and the safety net behind every check: a numpy
error or RuntimeWarning anywhere in the analysis stops it with one line,
exit 1, and numpy's settings are left as they were.

Run: /usr/bin/python3 -m pytest -q tests/test_analyze_cli.py
"""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from analyze_common import (PROG, ROOT, SCRIPT, assert_one_line_error, package, run,
                            write_latency, write_run_json)


def test_script_header_for_uv_and_headless():
    head = SCRIPT.read_text().split('"""')[0]
    assert "# /// script" in head
    for name in ("pandas", "numpy", "matplotlib"):
        assert f'"{name}' in head, name
    source = (ROOT / "analysis" / "plots.py").read_text()
    assert source.index('matplotlib.use("Agg")') < source.index("import matplotlib.pyplot")


def test_every_requirement_is_in_the_header():
    """requirements.txt and the PEP 723 header list the same packages."""
    head = SCRIPT.read_text().split('"""')[0]
    wanted = [line.split(">")[0].split("=")[0].strip()
              for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert wanted and all(f'"{name}' in head for name in wanted), wanted


def test_package_imports_isolated_from_cwd_and_site(tmp_path):
    """python3 -I (no script directory, no user site, no PYTHON* variables)
    from another directory: the script still finds its package."""
    (tmp_path / "r").mkdir()
    write_latency(tmp_path / "r", latency=np.arange(1, 11), received=np.arange(1, 11))
    proc = subprocess.run([sys.executable, "-I", str(SCRIPT), "r", "--no-plots", "-q"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "r" / "report.html").exists()


def test_help_describes_defaults_and_exit_codes():
    proc = run("--help")
    assert proc.returncode == 0
    for text in ("default: results/", "--compare", "--output", "current directory",
                 "exit status", "--allow-partial", "PARTIAL", "report.html"):
        assert text in proc.stdout, text
    codes = proc.stdout[proc.stdout.index("exit status"):]
    for code in ("0  ok", "1  bad or unusable data", "2  usage error", "3  partial"):
        assert code in codes, code


def test_output_option_leaves_input_alone(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out" / "nested"
    src.mkdir()
    write_latency(src, latency=np.arange(10, 20), received=np.arange(5, 15))
    proc = run("--results", src, "--output", out, "--no-plots", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in src.iterdir()) == ["latency_results.csv"]
    assert {p.name for p in out.iterdir()} == {"performance_report.txt", "summary.json",
                                               "report.html"}


def test_default_directory_is_results(tmp_path):
    (tmp_path / "results").mkdir()
    write_latency(tmp_path / "results", latency=np.arange(1, 11),
                  received=np.arange(1, 11))
    proc = run("--no-plots", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    assert summary["latency"]["round_trip"]["p50_ns"] == pytest.approx(5.5)


@pytest.mark.parametrize("args,message", [
    (["--compare", "only-one"], "--compare needs at least two directories"),
    (["--results", "a", "b"], "give the directories one way"),
    (["--bogus"], "unrecognized arguments"),
])
def test_usage_errors_exit_2(args, message):
    proc = run(*args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr
    assert "analyze_results.py: error:" in proc.stderr


def test_output_that_cannot_be_written(tmp_path):
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    write_run_json(tmp_path)
    (tmp_path / "taken").write_text("a file, not a directory")
    proc = run(tmp_path, "-o", tmp_path / "taken", "--no-plots")
    assert_one_line_error(proc, "taken")


def load_script():
    """analyze_results.py imported into this process."""
    spec = importlib.util.spec_from_file_location("analyze_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["analyze_results"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("fault,message", [
    (lambda: np.float64(1e308) * 10, "overflow encountered in"),
    (lambda: np.array([2.0 ** 63]).astype(np.int64), "invalid value encountered in cast"),
    (lambda: np.mean(np.array([])), "Mean of empty slice"),
    (lambda: np.float64(1) / 0, "divide by zero"),
])
def test_a_numeric_error_past_the_checks_is_one_line(tmp_path, capsys, monkeypatch, fault,
                                                       message):
    """The safety net behind the checks: any numpy floating-point error or
    RuntimeWarning during the analysis (here made to happen in the latency
    kind's statistics) stops it with one line and exit 1, never a silent
    wrong figure or a traceback; numpy's error settings are left as they
    were."""
    script = load_script()
    latency = package().kinds.latency
    write_latency(tmp_path, latency=np.arange(1, 11), received=np.arange(1, 11))
    write_run_json(tmp_path)
    before = np.geterr()
    real = latency.latency_stats
    monkeypatch.setattr(latency, "latency_stats", lambda v: (fault(), real(v))[1])
    assert script.main([str(tmp_path), "--no-plots", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(PROG + f"{tmp_path}: stopped on a numeric "
                                                           "error (")
    assert message in err and "Traceback" not in err
    assert np.geterr() == before
