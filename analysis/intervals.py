"""
intervals - what a figure measured several times (once per repetition of a
run) is summed up with: the median with an exact, distribution-free
confidence interval, the interquartile range, the coefficient of variation
behind the instability warning, and the ratio of two runs' medians with a
bootstrap interval behind a comparison's verdict. Pure arithmetic on lists
of numbers: no files, no kinds.

The interval for the median (median_interval) is the classic order-statistic
one. Sort the n values x_(1) <= ... <= x_(n). The true median lies below
x_(k) only if fewer than k of the n values fall below it, and each value
does so with probability 1/2 whatever the distribution, so the pair
(x_(k), x_(n-k+1)) covers the median with probability

    coverage(n, k) = 1 - 2 * P(B <= k - 1),   B ~ binomial(n, 1/2).

The interval is the narrowest such symmetric pair (the largest k) whose
coverage is still at least the level asked for: n = 10 at 95 % gives
(x_(2), x_(9)), coverage 1 - 2 * 11/1024 = 97.85 %. The coverage is a step
function of k, so the interval reports the coverage it achieves, never less
than the level. When n is too small for any pair to reach the level (for
95 %: n < 6, since [min, max] of 5 covers 1 - 2 * 0.5^5 = 93.75 %), the
interval is [min, max] and its coverage the achieved 1 - 2 * 0.5^n, below
the level: such a figure never counts as settled at that level
(analysis.repeat settled). One value gives [x, x] with coverage 0.
"""

from __future__ import annotations

import math

import numpy as np

# The instability warning: a figure whose repetitions' sample standard
# deviation is more than this share of their mean (coefficient of variation).
UNSTABLE_CV = 0.10

# The bootstrap of a comparison's ratio: resamples and the generator's seed
# (fixed, so the same inputs give the same interval; comparison.json says it).
RESAMPLES = 10_000
SEED = 20240618


def coverage(n: int, k: int) -> float:
    """Probability that (x_(k), x_(n-k+1)) of n values covers their
    distribution's median: 1 - 2 * P(binomial(n, 1/2) <= k - 1)."""
    below = sum(math.comb(n, i) for i in range(k))
    return 1.0 - 2.0 * below / 2.0 ** n


def median_interval(values, level: float) -> tuple[float, float, float]:
    """(low, high, achieved coverage as a fraction) of the exact
    order-statistic interval for the median of values, at level (a fraction,
    0.95); see the module's note. values: at least one number."""
    x = sorted(float(v) for v in values)
    n = len(x)
    if n == 0:
        raise ValueError("median_interval of no values")
    best = 1  # [min, max] when no pair reaches the level
    for k in range(2, n // 2 + 1):
        if coverage(n, k) < level:
            break
        best = k
    return x[best - 1], x[n - best], coverage(n, best)


def iqr(values) -> float:
    """Interquartile range (numpy's 'linear' percentiles, as everywhere else)."""
    p25, p75 = np.percentile(np.asarray(values, dtype=float), [25, 75])
    return float(p75 - p25)


def cv(values) -> float | None:
    """Coefficient of variation: sample standard deviation (n-1) over the
    mean; None for fewer than two values or a mean of 0."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or v.mean() == 0:
        return None
    return float(np.std(v, ddof=1) / abs(v.mean()))


def bootstrap_ratio(a, b, level: float, resamples: int = RESAMPLES,
                    seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval (at level, a fraction) of median(b) /
    median(a): each resample draws len(a) of a's values and len(b) of b's
    with replacement. a's values must be non-zero (a median of 0 has no
    ratio: the caller leaves such a figure out)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ma = np.median(a[rng.integers(0, a.size, (resamples, a.size))], axis=1)
    mb = np.median(b[rng.integers(0, b.size, (resamples, b.size))], axis=1)
    keep = ma != 0
    ratios = mb[keep] / ma[keep]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def verdict(low: float, high: float, better: str) -> str:
    """'faster', 'slower' or 'no difference detected' for an interval of
    B / A: only an interval that excludes 1 is a difference; whether a
    ratio above 1 is faster depends on which way the figure is better."""
    if low <= 1 <= high:
        return "no difference detected"
    up = low > 1
    return "faster" if up == (better == "higher") else "slower"
