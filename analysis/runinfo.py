"""
runinfo - run.json: the provenance of a run (version, mode, topology,
accelerator, guest, kernels, CPU, clock source, pinning, times), its status,
and which CSV files with how many rows the run wrote. It is read strictly,
as input: bounded in size and depth, strict JSON, every string text. What
makes a run partial (a status other than "complete", a file it does not
list, fewer rows than listed) is decided here and gathered by run.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from analysis.errors import DataError
from analysis.tables import MAX_JSON_DEPTH, MAX_RUN_JSON, check_text, read_bytes, shown

RUN_JSON = "run.json"

def load_run_info(path: Path) -> dict:
    """Read run.json strictly: a JSON object of bounded size and depth,
    finite numbers, no repeated keys, text that can be written out again.
    DataError (one line) otherwise."""
    data = read_bytes(path, MAX_RUN_JSON)
    check_text(path, data)

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        for k in keys:
            if keys.count(k) > 1:
                raise DataError(f"{path}: key {shown(k)} appears twice in one object")
        return dict(pairs)

    def finite(text):
        value = float(text)
        if not math.isfinite(value):
            raise DataError(f"{path}: number {shown(text)} is out of range")
        return value

    def bounded(text):
        if len(text.lstrip("-")) > 20 or abs(int(text)) >= 2 ** 64:
            raise DataError(f"{path}: number {shown(text)} is out of range")
        return int(text)

    def constant(text):
        raise DataError(f"{path}: {text} is not a number JSON allows")

    try:
        info = json.loads(data.decode("utf-8-sig"), object_pairs_hook=no_repeats,
                          parse_float=finite, parse_int=bounded, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise DataError(f"{path}: nested too deeply (more than "
                        f"{MAX_JSON_DEPTH} levels)") from None
    if not isinstance(info, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(info).__name__}")
    check_json_tree(path, info)
    return info


def check_json_tree(path: Path, info: dict) -> None:
    """Depth and text of every value, without recursion (the tree is input)."""
    stack = [(info, "", 1)]
    while stack:
        node, where, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise DataError(f"{path}: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            name = f"{where}.{key}" if where else str(key)
            for text in (key, value):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        raise DataError(f"{path}: {shown(name, 30)}: a lone UTF-16 "
                                        "surrogate (\\ud800-\\udfff), not text") from None
            if isinstance(value, (dict, list)):
                stack.append((value, name, depth + 1))


@dataclass
class Provenance:
    """What run.json says about the run's end and the files it wrote."""

    status: str | None             # "complete", "running" or what went wrong
    run_id: str | None
    files: dict[str, int] | None   # file name -> data rows; None: not recorded
    info: dict | None = None       # the whole run.json


def provenance(path: Path, info: dict | None) -> Provenance:
    """The status, run_id and files of run.json, type-checked; any of them may
    be absent (run.json of an older host_writer, or no run.json)."""
    if info is None:
        return Provenance(None, None, None)
    status, run_id, files = info.get("status"), info.get("run_id"), info.get("files")
    if status is not None and (not isinstance(status, str) or not status.strip()):
        raise DataError(f"{path}: status: expected a sentence, got {shown(str(status))}")
    if run_id is not None and (not isinstance(run_id, str) or not run_id.strip()):
        raise DataError(f"{path}: run_id: expected a string, got {shown(str(run_id))}")
    if files is not None:
        if not isinstance(files, dict):
            raise DataError(f"{path}: files: expected an object of file name to row count")
        for name, rows in files.items():
            if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
                raise DataError(f"{path}: files: {shown(name)}: expected a row count, "
                                f"got {shown(str(rows))}")
    return Provenance(status, run_id, files, info)


def status_problem(prov: Provenance) -> str | None:
    """Why run.json's status makes the results partial, or None."""
    if prov.status is None or prov.status == "complete":
        return None
    if prov.status == "running":
        return ("run.json says the run is still running: it stopped before its end "
                "(or is still going)")
    return f"the run did not complete: {prov.status}"


def row_problem(name: str, rows: int, listed: int, status: str | None) -> str | None:
    """Why a CSV's row count against run.json's makes the results partial."""
    if rows < listed:
        return (f"{name} has {rows:,} data rows, run.json lists {listed:,}: truncated, "
                "or replaced by another run")
    if rows > listed and status != "running":
        return (f"{name} has {rows:,} data rows, run.json lists {listed:,}: rows written "
                "after the run ended, by another run")
    return None


def describe_value(key: str, value) -> str:
    """run.json values for the header; sizes in bytes get a MiB reading."""
    if key == "shm_size" and isinstance(value, int) and value >= 1 << 20:
        return f"{value} ({value / (1 << 20):g} MiB)"
    return str(value)


def flatten(info: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested run.json objects as 'pinning.host = 2' style pairs."""
    pairs = []
    for key, value in info.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs.extend(flatten(value, name + "."))
        elif isinstance(value, list):
            pairs.append((name, ", ".join(map(str, value))))
        else:
            pairs.append((name, describe_value(key, value)))
    return pairs


# What the HTML page's provenance table shows of run.json, in this order:
# (label, the keys that hold it, the first found shown; pinning shows every
# one found). The whole file follows it.
PROVENANCE = (
    ("version", ("version",)),
    ("program", ("program",)),
    ("status", ("status",)),
    ("mode", ("mode",)),
    ("topology", ("topology", "target")),
    ("accelerator", ("accel",)),
    ("guest", ("guest",)),
    ("QEMU", ("qemu_version",)),
    ("host kernel", ("host_kernel", "host_machine_kernel")),
    ("guest kernel", ("guest_kernel",)),
    ("CPU model", ("host_cpu", "host_machine_cpu")),
    ("clock source", ("clocksource",)),
    ("clock read", ("clock_read_ns",)),
    ("pinning", ("writer_cpu", "reader_cpu", "vcpu_cpu", "guest_a_vcpu_cpu",
                 "guest_b_vcpu_cpu", "cpu", "peer_cpu", "cpus")),
    ("shared memory", ("shm_size",)),
    ("started", ("start_time",)),
    ("ended", ("end_time",)),
    ("run id", ("run_id",)),
)


def provenance_rows(info: dict | None) -> list[tuple[str, str]]:
    """(label, value) pairs of run.json for the page, in PROVENANCE's order;
    a key the run did not record is left out, several are joined with
    their names ('writer_cpu 0, reader_cpu 1')."""
    rows = []
    for label, keys in PROVENANCE:
        found = [(k, info[k]) for k in keys if info and info.get(k) not in (None, "")]
        if not found:
            continue
        if label == "clock read":
            rows.append((label, f"{found[0][1]} ns a read"))
        elif label == "pinning":
            rows.append((label, ", ".join(f"{k} {describe_pin(v)}" for k, v in found)))
        else:  # the first key found: the others are other programs' names for it
            rows.append((label, describe_value(*found[0])))
    return rows


def describe_pin(value) -> str:
    """A CPU as run.json gives it: -1 is 'none' (not pinned)."""
    if isinstance(value, list):
        return "+".join(map(describe_pin, value))
    return "none" if value in (-1, "-1") else str(value)
