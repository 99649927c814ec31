"""
stats - what the kinds' statistics share: JSON-friendly values (numpy
scalars made Python, NaN made None), the sample standard deviation, the
spread of a series, a CSV's rows as written (records) in size order, ratios,
and rows keyed by what they measure for the comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.tables import Column, Schema


def clean(value):
    """Make a value JSON-friendly: numpy scalars to Python, NaN to None.
    (Infinities cannot come from checked input; they would become None too.)"""
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def sample_std(values: np.ndarray) -> float | None:
    """Sample standard deviation (n-1), None for fewer than two values."""
    return float(np.std(values, ddof=1)) if values.size > 1 else None


def spread(values) -> dict:
    """mean, std (n-1), min, max and median of a series, None when empty."""
    v = np.asarray(pd.Series(values).dropna(), dtype=float)
    if v.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "median": None}
    return {
        "mean": float(v.mean()),
        "std": sample_std(v),
        "min": float(v.min()),
        "max": float(v.max()),
        "median": float(np.median(v)),
    }


def records(df: pd.DataFrame, schema: Schema, rename: dict[str, str]) -> list[dict]:
    """Each row as a dict of the schema's columns (as written: integers as
    int, an empty or absent column as None) and the line it came from."""
    out = []
    names = [n for n in schema.columns if n in df] + ["line"]
    for row in df[names].itertuples(index=False):
        item = {}
        for name, value in zip(names, row):
            column = schema.columns.get(name, Column(integer=True))
            value = clean(value)
            if column.integer and value is not None:
                value = int(value)
            item[rename.get(name, name)] = value
        for name in schema.columns:
            item.setdefault(rename.get(name, name), None)
        out.append(item)
    return out


def size_order(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by message size; repeats of one size stay in file order."""
    return df.sort_values("message_bytes", kind="stable")


def ratio(value, base) -> float | None:
    return None if value is None or not base else value / base


def keyed(rows: list[dict], key) -> dict:
    """Rows by (key, repeat): the first row of a key is repeat 0, a second
    one (a size measured twice) repeat 1, so no row hides another."""
    out, seen = {}, {}
    for row in rows:
        k = key(row)
        seen[k] = seen.get(k, -1) + 1
        out[(k, seen[k])] = row
    return out


def finite(payload):
    """The payload with numpy scalars made Python and every NaN or infinity
    made None: strict JSON, whatever the numbers (NaN means 'absent' here)."""
    if isinstance(payload, dict):
        return {k: finite(v) for k, v in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [finite(v) for v in payload]
    return clean(payload)
