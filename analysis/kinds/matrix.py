"""
matrix - a grid of runs (run_test.sh --matrix, vm/matrix.bash):
matrix_results.csv holds one row per cell and headline figure, the axes as
columns; matrix.json beside it lists the axes with their values and
defaults, the cells in the order they ran, their status and the boots
(run.json: the matrix's provenance and status).

The kind reads the table back: every cell's status, the best cell of each
headline figure (and its ratio to the cell of the defaults, when the
defaults are a cell), a heatmap of each figure over each pair of axes (the
other axes held at the best cell's values) or, with one axis, its line,
and the failed cells with their reasons.

The same module writes the table, for vm/matrix.bash (run from the tree's
top directory):

    python3 -c 'from analysis.kinds.matrix import main; ...' write OUT TMP --status S --started T [--table]
        reads the plan and each cell's state (tab-separated lines on
        standard input: matrix_state) and writes TMP/run.json (provenance,
        status, files), TMP/matrix.json (the plan: axes, cells, order,
        boots) and, with --table, TMP/matrix_results.csv: each cell that ran, read with
        analysis/repeated.py (a single run or its merged repetitions), one
        row per headline figure (the median over its repetitions), or one
        row with the reason for a cell that failed; the shell moves them
        into OUT with files_write.
    ... same OUT          exit 0 when OUT's matrix.json is of this matrix (the
                          plan on standard input), else 1 and why
    ... finished OUT DIR...
                          the cell directories whose run.json says complete
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from analysis import page
from analysis.errors import DataError, PartialError
from analysis.kind import Fact, Kind
from analysis.plots import Plot, headline, pyplot
from analysis.runinfo import RUN_JSON, load_run_info
from analysis.tables import (TEXT, Column, Loaded, Schema, check_header, first_bad, read_bytes,
                             read_table, row_frame, shown)
from analysis.units import fmt_sig, table

STATUSES = ("ok", "failed", "interrupted")
# The columns before the axes and after them, in the order written.
HEAD = dict(cell=Column(required=True, integer=True, minimum=1, maximum=10_000,
                        why="the cell's number, at most 10,000 cells"))
TAIL = dict(
    status=Column(numeric=False, required=True),
    workload=Column(numeric=False, allow_empty=True),
    figure=Column(numeric=False, allow_empty=True),
    value=Column(allow_empty=True, required=True),
    unit=Column(numeric=False, allow_empty=True),
    better=Column(numeric=False, allow_empty=True),
    repetitions=Column(integer=True, allow_empty=True),
    ci_low=Column(allow_empty=True),
    ci_high=Column(allow_empty=True),
    errors=Column(integer=True, allow_empty=True),
    reason=Column(numeric=False, allow_empty=True),
)
MATRIX = Schema("matrix", "matrix_results.csv", {**HEAD, **TAIL}, program="run_test.sh")
AXIS_NAME = re.compile(r"[a-z][a-z0-9-]*")
MATRIX_JSON = "matrix.json"  # the plan, beside run.json
MAX_PLOTTED = 8   # figures drawn; the others are in the tables


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def axes_of(path: Path) -> list[str]:
    """The axis columns: those between cell and status in the header."""
    data = read_bytes(path)
    first = data.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    header = [h.strip() for h in next(csv.reader([first]), [])]
    check_header(path, header, MATRIX.columns)
    if header[:1] != ["cell"] or "status" not in header:
        raise DataError(f"{path}: line 1: expected cell, the axes, then status, ... "
                        f"(got {shown(first, 60)})")
    axes = header[1:header.index("status")]
    for name in axes:
        if not AXIS_NAME.fullmatch(name) or name in TAIL:
            raise DataError(f"{path}: line 1: {shown(name)} is not an axis's name")
    return axes


def load_matrix(path: Path) -> Loaded:
    """matrix_results.csv: the axes as text, the rest as MATRIX says."""
    axes = axes_of(path)
    spec = {**HEAD, **{a: TEXT for a in axes}, **TAIL}
    tbl = read_table(path, spec)
    if tbl.rows == 0:
        return Loaded(path, None, 0, tbl.cut)
    status = tbl.columns["status"]
    first_bad(tbl, "status", ~np.isin(status, STATUSES),
              lambda v: f"expected {', '.join(STATUSES)}, got {shown(v)}")
    ok = status == "ok"
    first_bad(tbl, "value", ok & (tbl.columns["figure"] != "") & np.isnan(tbl.columns["value"]),
              lambda _: "a measured cell's figure without a value")
    first_bad(tbl, "better", (tbl.columns["figure"] != "")
              & ~np.isin(tbl.columns["better"], ("higher", "lower")),
              lambda v: f"expected higher or lower, got {shown(v)}")
    df = row_frame(tbl)
    df["cell"] = df["cell"].astype(np.int64)
    df.attrs["axes"] = axes
    return Loaded(path, df, tbl.rows, tbl.cut)


def assemble(run, loaded: dict, _prov, _info_path):
    """The table with the matrix's plan from run.json (axes' values in the
    order given, their defaults), when run.json has one."""
    got = loaded.get(MATRIX.file)
    if got is None or got.frame is None:
        return None
    df = got.frame
    path = run.directory / MATRIX_JSON
    plan = load_run_info(path) if path.is_file() else {}
    if not plan:
        run.notes.append(f"no {MATRIX_JSON}: the axes' order, defaults and boots are not known")
    return {"frame": df, "axes": df.attrs["axes"], "plan": plan}


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


def same_value(a: str, b: str) -> bool:
    """Two axis values that say the same: equal text, or equal numbers."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def summarize(data: dict, _run) -> dict:
    df, axes, plan = data["frame"], data["axes"], data["plan"]
    planned = {a.get("name"): a for a in plan.get("axes", []) if isinstance(a, dict)}
    axis_list = []
    for a in axes:
        seen = list(dict.fromkeys(df[a]))
        values = planned.get(a, {}).get("values")
        if isinstance(values, list) and set(seen) <= set(map(str, values)):
            seen = [str(v) for v in values]
        default = planned.get(a, {}).get("default") or None
        axis_list.append({"name": a, "kind": planned.get(a, {}).get("kind"), "values": seen,
                          "default": default})
    cells = []
    for number, rows in df.groupby("cell", sort=True):
        first = rows.iloc[0]
        cells.append({"cell": int(number), "values": {a: str(first[a]) for a in axes},
                      "label": ",".join(f"{a}={first[a]}" for a in axes),
                      "status": str(first["status"]),
                      "reason": str(first["reason"]) if first["status"] != "ok" else "",
                      "errors": int(np.nansum(rows["errors"])) if "errors" in rows else 0})
    defaults = {a["name"]: a["default"] for a in axis_list}
    default_cell = next((c["cell"] for c in cells if all(
        defaults[a] is not None and same_value(c["values"][a], defaults[a]) for a in axes)),
        None) if axes and all(v is not None for v in defaults.values()) else None
    figures = []
    measured = df[(df["status"] == "ok") & (df["figure"] != "")]
    for name in dict.fromkeys(measured["figure"]):
        rows = measured[measured["figure"] == name]
        better = rows["better"].iloc[0]
        per = {int(r.cell): float(r.value) for r in rows.itertuples()}
        pick = max if better == "higher" else min
        best = pick(per, key=lambda c: per[c])
        fig = {"name": name, "workload": rows["workload"].iloc[0], "unit": rows["unit"].iloc[0],
               "better": better, "values": {str(c): v for c, v in per.items()},
               "best": {"cell": best, "value": per[best],
                        "label": next(c["label"] for c in cells if c["cell"] == best)},
               "default": None}
        if default_cell is not None and default_cell in per:
            d = per[default_cell]
            fig["default"] = {"cell": default_cell, "value": d,
                              "ratio": per[best] / d if d else None}
        figures.append(fig)
    counts = {s: sum(1 for c in cells if c["status"] == s) for s in STATUSES}
    return {"axes": axis_list, "cells": cells, "figures": figures, "counts": counts,
            "default_cell": default_cell, "planned_cells": len(plan.get("cells", []))
            if isinstance(plan.get("cells"), list) else len(cells),
            "boots": [b for b in plan.get("boots", []) if isinstance(b, dict)],
            "guest_after": plan.get("guest_after")}


# --------------------------------------------------------------------------
# Text and page
# --------------------------------------------------------------------------


def value_text(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else fmt_sig(value)


def better_text(fig: dict) -> str:
    """'1.42x the defaults' (how much better the best is, either way of better)."""
    d = fig["default"]
    if not d or not d["value"] or not fig["best"]["value"]:
        return "-"
    gain = fig["best"]["value"] / d["value"]
    if fig["better"] == "lower":
        gain = 1 / gain
    return "the defaults' cell" if d["cell"] == fig["best"]["cell"] else f"{gain:.3g}x better"


def best_rows(st: dict) -> tuple[list[str], list[list[str]]]:
    head = ["figure", "unit", "best", "cell", "defaults' cell", "best vs defaults"]
    rows = []
    for f in st["figures"]:
        d = f["default"]
        rows.append([f["name"], f["unit"], value_text(f["best"]["value"]),
                     f"{f['best']['cell']}: {f['best']['label']}",
                     value_text(d["value"]) if d else "-", better_text(f)])
    return head, rows


def cell_rows(st: dict) -> tuple[list[str], list[list[str]]]:
    """One row per cell: its values, status and each figure's value."""
    names = [a["name"] for a in st["axes"]]
    figs = st["figures"]
    head = ["cell", *names, "status", *[f"{f['name']} ({f['unit']})" for f in figs], "reason"]
    rows = []
    for c in st["cells"]:
        rows.append([str(c["cell"]), *[c["values"][a] for a in names], c["status"],
                     *[value_text(f["values"].get(str(c["cell"]))) for f in figs],
                     c["reason"]])
    return head, rows


def summary_line(st: dict) -> str:
    n = st["counts"]
    axes = "; ".join(f"{a['name']} = {', '.join(a['values'])}" for a in st["axes"])
    line = (f"{len(st['cells'])} cells of {st['planned_cells']} ran ({n['ok']} measured, "
            f"{n['failed']} failed, {n['interrupted']} interrupted) over {axes}.")
    if st["boots"]:
        line += f" The guest was booted {len(st['boots'])} time(s), once per VM-level setting."
    if st["default_cell"] is not None:
        line += f" Cell {st['default_cell']} is the defaults'."
    return line


def report(st: dict) -> list[str]:
    lines = ["", "MATRIX", "------", summary_line(st)]
    if st["figures"]:
        head, rows = best_rows(st)
        lines += ["", "Best cell per headline figure:", ""] + ["  " + l for l in table([head] + rows, "ll")]
    head, rows = cell_rows(st)
    lines += ["", "Every cell:", ""] + ["  " + l for l in table([head] + rows, "l")]
    return lines


def html(st: dict) -> str:
    parts = [page.para(summary_line(st))]
    if st["figures"]:
        head, rows = best_rows(st)
        parts += [page.tag("h3", "Best cell per headline figure"), page.table(head, rows, "llrlrr")]
    head, rows = cell_rows(st)
    marked = [page.Row(r, "" if c["status"] == "ok" else "bad") for r, c in zip(rows, st["cells"])]
    n = len(st["axes"])
    align = "l" * (n + 2) + "r" * len(st["figures"]) + "l"
    parts += [page.tag("h3", "Every cell"), page.table(head, marked, align)]
    return page.join(*parts)


def facts(st: dict) -> list[Fact]:
    out = []
    for f in st["figures"][:4]:
        note = f"cell {f['best']['cell']}: {f['best']['label']}"
        if f["default"] and f["default"]["cell"] != f["best"]["cell"]:
            note += f"; {better_text(f)} than the defaults"
        out.append(Fact(f"best {f['name']}", value_text(f["best"]["value"]), f["unit"],
                        f["best"]["value"], "", note))
    return out


def warnings(st: dict) -> list[str]:
    return [f"cell {c['cell']} ({c['label']}) {c['status']}: {c['reason']}"
            for c in st["cells"] if c["status"] != "ok"]


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:60]


def lookup(st: dict, fig: dict, want: dict) -> float:
    """The figure at the cell whose values are want's, NaN if none measured it."""
    for c in st["cells"]:
        if all(c["values"][a] == v for a, v in want.items()):
            v = fig["values"].get(str(c["cell"]))
            return np.nan if v is None else v
    return np.nan


def draw(st: dict, fig: dict, title: str, partial: list[str]):
    """Heatmaps of the figure over each pair of axes that vary (the others
    at the best cell's values), or its line over the one axis that varies."""
    plt = pyplot()
    varied = [a for a in st["axes"] if len(a["values"]) > 1]
    best = next(c for c in st["cells"] if c["cell"] == fig["best"]["cell"])["values"]
    pairs = [(x, y) for i, x in enumerate(varied) for y in varied[i + 1:]]
    panels = max(len(pairs), 1)
    cols = min(panels, 2)
    rows = math.ceil(panels / cols)
    mpl, axes = plt.subplots(rows, cols, figsize=(6.6 * cols, 5.2 * rows + 0.6),
                             constrained_layout=True, squeeze=False)
    for ax in list(axes.flat)[panels:]:
        ax.set_visible(False)
    better = f"{fig['better']} is better"
    headline(mpl, f"{fig['name']} ({fig['unit']}, {better}): {title}", partial)
    if len(varied) == 1:
        a = varied[0]
        ax = axes.flat[0]
        y = [lookup(st, fig, {**best, a["name"]: v}) for v in a["values"]]
        ax.plot(range(len(y)), y, marker="o", color="tab:blue")
        ax.set_xticks(range(len(y)), a["values"])
        ax.set_xlabel(a["name"])
        ax.set_ylabel(fig["unit"])
        ax.set_title(f"{fig['name']} by {a['name']}")
        for i, v in enumerate(y):
            if np.isnan(v):
                ax.annotate("failed", (i, 0), xycoords=("data", "axes fraction"),
                            xytext=(0, 4), textcoords="offset points", ha="center",
                            color="tab:red")
        return mpl
    for ax, (x, y) in zip(axes.flat, pairs):
        grid = np.array([[lookup(st, fig, {**best, x["name"]: vx, y["name"]: vy})
                          for vx in x["values"]] for vy in y["values"]])
        shown_grid = np.ma.masked_invalid(grid)
        cmap = plt.get_cmap("viridis" if fig["better"] == "higher" else "viridis_r").copy()
        cmap.set_bad("#dddddd")
        image = ax.imshow(shown_grid, cmap=cmap, aspect="auto", origin="lower")
        ax.set_xticks(range(len(x["values"])), x["values"])
        ax.set_yticks(range(len(y["values"])), y["values"])
        ax.set_xlabel(x["name"])
        ax.set_ylabel(y["name"])
        ax.grid(False)
        others = [f"{a['name']}={best[a['name']]}" for a in st["axes"]
                  if a["name"] not in (x["name"], y["name"]) and len(a["values"]) > 1]
        ax.set_title(f"{y['name']} x {x['name']}" + (f" ({', '.join(others)})" if others else ""))
        finite = grid[np.isfinite(grid)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0
        for (j, i), v in np.ndenumerate(grid):
            light = fig["better"] == "higher" and v < middle or fig["better"] == "lower" and v > middle
            ax.text(i, j, "failed" if np.isnan(v) else fmt_sig(v), ha="center", va="center",
                    fontsize=8, color="tab:red" if np.isnan(v) else ("white" if light else "black"))
        bi = x["values"].index(best[x["name"]])
        bj = y["values"].index(best[y["name"]])
        ax.add_patch(plt.Rectangle((bi - 0.5, bj - 0.5), 1, 1, fill=False, lw=2.5,
                                   edgecolor="tab:red"))
        mpl.colorbar(image, ax=ax, label=fig["unit"])
    return mpl


def plots(_data, st: dict, title: str, partial: list[str]) -> list[Plot]:
    varied = [a for a in st["axes"] if len(a["values"]) > 1]
    if not varied:
        return []
    found = []
    for fig in st["figures"][:MAX_PLOTTED]:
        what = ("over each pair of axes, the other axes at the best cell's values (the best "
                "cell boxed in red; grey: a cell that failed)") if len(varied) > 1 else \
            f"by {varied[0]['name']}"
        found.append(Plot(f"matrix_{slug(fig['name'])}.png",
                          f"{fig['name']} ({fig['unit']}, {fig['better']} is better) {what}.",
                          lambda fig=fig: draw(st, fig, title, partial)))
    return found


KIND = Kind(
    name="matrix", key="matrix", title="Matrix",
    files=((MATRIX, load_matrix),),
    summarize=summarize, text=report, html=html, assemble=assemble, plots=plots,
    headline=facts, warnings=warnings, always=False,
)


# --------------------------------------------------------------------------
# Writing the table (for vm/matrix.bash)
# --------------------------------------------------------------------------


def read_state(stream) -> dict:
    """The plan and states matrix_state prints, one record a line."""
    state = {"run": None, "axes": [], "cells": [], "boots": []}
    for line in stream.read().splitlines():
        f = line.split("\t")
        if f[0] == "run":
            spec, runner, host_only, args, plan, ci, before = f[1:8]
            state["run"] = {"spec": spec, "runner": runner, "host_only": host_only == "1",
                            "args": args, "repeat": {"plan": plan or None, "ci": ci or None},
                            "guest_before": before == "1"}
        elif f[0] == "axis":
            name, kind, var, values, default = f[1:6]
            state["axes"].append({"name": name, "kind": kind, "variable": var or None,
                                  "values": values.split(), "default": default or None})
        elif f[0] == "cell":
            number, label, directory, opts, vm, status, reason, seconds, boot = f[1:10]
            values = dict(p.split("=", 1) for p in label.split(","))
            state["cells"].append({"cell": int(number), "label": label, "dir": directory,
                                   "values": values, "options": opts, "vm_settings": vm,
                                   "status": status, "reason": reason,
                                   "seconds": int(seconds) if seconds else None,
                                   "boot": int(boot) if boot else None})
        elif f[0] == "boot":
            k, vm, status, seconds, reason, log = f[1:7]
            state["boots"].append({"boot": int(k), "vm_settings": vm, "status": status,
                                   "seconds": int(seconds), "reason": reason, "log": log})
    if state["run"] is None:
        raise DataError("no plan on standard input")
    return state


def cell_figures(out: Path, cell: dict, state: dict) -> list[dict]:
    """The rows of one cell: its headline figures, or why it has none."""
    from analysis.repeated import figures, load_any  # the kinds' table, loaded late

    base = {"status": cell["status"], "reason": cell["reason"]}
    if cell["status"] != "ok":
        return [base]
    directory = out / cell["dir"]
    try:
        rep = load_any(directory, lambda _t: None, False)
    except (DataError, PartialError, OSError) as e:
        return [{"status": "failed", "reason": f"its results cannot be read: {e}"}]
    if state["run"]["host_only"]:
        # A VM-level setting host-only is honoured only if run.json says so.
        info = rep.whole.info or {}
        for axis in state["axes"]:
            if axis["kind"] == "vm" and str(info.get(axis["name"])) != cell["values"][axis["name"]]:
                return [{"status": "failed",
                         "reason": f"run.json does not record {axis['name']}="
                                   f"{cell['values'][axis['name']]}: run_host_only did not "
                                   f"apply {axis['variable']}"}]
    rows = []
    for fig in figures(rep):
        rows.append({"status": "ok", "workload": fig["kind"].name, "figure": fig["name"],
                     "value": fig["median"], "unit": fig["unit"], "better": fig["better"],
                     "repetitions": fig["repetitions"],
                     "ci_low": fig["ci_low"] if fig["repetitions"] > 1 else None,
                     "ci_high": fig["ci_high"] if fig["repetitions"] > 1 else None,
                     "errors": sum(fig["bad"]), "reason": cell["reason"]})
    return rows or [{"status": "ok", "reason": "no headline figure in its results"}]


def number_text(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, int) or float(v).is_integer() and abs(v) < 2 ** 53:
        return str(int(v))
    return f"{v:.10g}"


def write_table(out: Path, state: dict) -> tuple[str, dict]:
    """matrix_results.csv's text, and each cell's status as the table has it."""
    names = [a["name"] for a in state["axes"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cell", *names, *TAIL])
    final = {}
    for cell in state["cells"]:
        if cell["status"] == "not run":
            continue
        rows = cell_figures(out, cell, state)
        final[cell["cell"]] = rows[0]
        for r in rows:
            w.writerow([cell["cell"], *[cell["values"][a] for a in names], r["status"],
                        r.get("workload", ""), r.get("figure", ""), number_text(r.get("value")),
                        r.get("unit", ""), r.get("better", ""), number_text(r.get("repetitions")),
                        number_text(r.get("ci_low")), number_text(r.get("ci_high")),
                        number_text(r.get("errors")), r.get("reason", "")])
    return buf.getvalue(), final


def version() -> str | None:
    try:
        text = Path("build/version.h").read_text()
    except OSError:
        return None
    m = re.search(r'"([^"]+)"', text)
    return m.group(1) if m else None


def write(out: Path, tmp: Path, status: str, started: str, with_table: bool,
          stream) -> int:
    state = read_state(stream)
    rows = None
    if with_table:
        text, final = write_table(out, state)
        for cell in state["cells"]:
            got = final.get(cell["cell"])
            if got and got["status"] != cell["status"]:
                cell["status"], cell["reason"] = got["status"], got["reason"]
        (tmp / MATRIX.file).write_text(text)
        rows = text.count("\n") - 1
    elif (out / RUN_JSON).is_file():
        try:  # the table written last stays listed while the next cells run
            rows = load_run_info(out / RUN_JSON).get("files", {}).get(MATRIX.file)
        except DataError:
            rows = None
    counts = {s: sum(1 for c in state["cells"] if c["status"] == s)
              for s in (*STATUSES, "not run")}
    run = state["run"]
    guest_after = None
    if any(a["kind"] == "vm" for a in state["axes"]) and not run["host_only"]:
        guest_after = ("booted again with its own settings" if run["guest_before"]
                       else "stopped") if status == "complete" else \
            ("left with the last cell's settings" if run["guest_before"] else "stopped")
    plan = {
        **run, "status": status, "axes": state["axes"],
        "order": "VM-level axes slowest (in the order given), then the workload axes in "
                 "the order given, the last the fastest: one boot per VM-level setting",
        "cells": state["cells"], "counts": counts,
        "boots": state["boots"], "reboots": len(state["boots"]),
        "guest_after": guest_after,
    }
    # run.json: the provenance and status the analysis reads of any run;
    # matrix.json: the whole plan (too long for a report's header).
    info = {
        "program": "run_test.sh --matrix", "version": version(),
        "status": status, "run_id": f"matrix-{started}-{os.getpid()}",
        "target": "host" if run["host_only"] else "vm",
        "host": socket.gethostname(), "start_time": started,
        "end_time": None if status == "running" else
        datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "matrix": run["spec"], "cells": len(state["cells"]),
        "cells_measured": counts["ok"], "cells_failed": counts["failed"],
        "reboots": len(state["boots"]),
        "files": {MATRIX.file: rows} if rows is not None else {},
    }
    if guest_after:
        info["guest_after"] = guest_after
    (tmp / MATRIX_JSON).write_text(json.dumps(plan, indent=2) + "\n")
    (tmp / RUN_JSON).write_text(json.dumps(info, indent=2) + "\n")
    return 0


def signature(state: dict) -> dict:
    run = state["run"]
    return {"axes": [(a["name"], a["values"]) for a in state["axes"]], "args": run["args"],
            "host_only": run["host_only"], "repeat": run["repeat"], "runner": run["runner"]}


def same(out: Path, stream) -> int:
    """Whether OUT's run.json is of the matrix planned on standard input."""
    try:
        old = load_run_info(out / MATRIX_JSON)
    except (DataError, OSError):
        print(f"no {MATRIX_JSON} of a matrix in it: nothing to resume")
        return 1
    if not isinstance(old.get("axes"), list):
        print(f"its {MATRIX_JSON} lists no axes: nothing to resume")
        return 1
    mine = signature(read_state(stream))
    theirs = {"axes": [(a.get("name"), a.get("values")) for a in old["axes"]],
              "args": old.get("args"), "host_only": old.get("host_only"),
              "repeat": old.get("repeat"), "runner": old.get("runner")}
    for key, what in (("axes", "axes"), ("args", "options"), ("host_only", "--host-only"),
                      ("repeat", "repetitions"), ("runner", "topology")):
        if mine[key] != theirs[key]:
            def text(v):
                if key == "axes":
                    return " ".join(f"{n}={','.join(vs or [])}" for n, vs in v)
                return json.dumps(v)
            print(f"not the same matrix: its {what} were {text(theirs[key])}, "
                  f"now {text(mine[key])} (resume with the same command)")
            return 1
    return 0


def finished(out: Path, names: list[str]) -> int:
    for name in names:
        try:
            info = load_run_info(out / name / RUN_JSON)
        except (DataError, OSError):
            continue
        if info.get("status") == "complete":
            print(name)
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="analysis.kinds.matrix")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write")
    w.add_argument("out", type=Path)
    w.add_argument("tmp", type=Path)
    w.add_argument("--status", required=True)
    w.add_argument("--started", required=True)
    w.add_argument("--table", action="store_true")
    s = sub.add_parser("same")
    s.add_argument("out", type=Path)
    f = sub.add_parser("finished")
    f.add_argument("out", type=Path)
    f.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            return write(args.out, args.tmp, args.status, args.started, args.table, sys.stdin)
        if args.command == "same":
            return same(args.out, sys.stdin)
        return finished(args.out, args.names)
    except (DataError, OSError, ValueError) as e:
        sys.stderr.write(f"run_test: --matrix: {e}\n")
        return 2
