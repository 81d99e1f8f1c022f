"""Confidence intervals across replications, and the Student-t quantiles they need (no SciPy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

from attrs import frozen

__all__ = ["Interval", "confidence_interval", "t_quantile"]


def _two_sided(t: float, df: int) -> float:
    """P(|T| < t) for integer ``df``: the finite series of Abramowitz & Stegun 26.7.3-4."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 1:
        total, term = 0.0, 1.0
        if df > 1:
            term = math.cos(theta)
            total = term
            for k in range(3, df - 1, 2):
                term *= c2 * (k - 1) / k
                total += term
        return 2 / math.pi * (theta + s * total) if df > 1 else 2 * theta / math.pi
    total, term = 1.0, 1.0
    for k in range(2, df - 1, 2):
        term *= c2 * (k - 1) / k
        total += term
    return s * total


def _cornish_fisher(p: float, df: int) -> float:
    z = NormalDist().inv_cdf(p)
    n = float(df)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / n + g2 / n**2 + g3 / n**3 + g4 / n**4


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom.

    Solved on the exact distribution function (a finite series for integer ``df``) up to 1000
    degrees of freedom; beyond, the Cornish-Fisher expansion, accurate there to about 1e-12.
    """
    if not 0 < p < 1:
        raise ValueError("p must be between 0 and 1")
    if df < 1:
        raise ValueError("df must be at least 1")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if p == 0.5:
        return 0.0
    if df > 1000:
        return _cornish_fisher(p, df)
    target = 2 * p - 1
    low, high = 0.0, 1.0
    while _two_sided(high, df) < target:
        low, high = high, high * 2
    for _ in range(200):
        mid = (low + high) / 2
        if _two_sided(mid, df) < target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-12 * high:
            break
    return (low + high) / 2


@frozen
class Interval:
    """A mean across ``n`` replications with its two-sided confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def confidence_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The t-based interval for the mean of independent replication values (``nan`` ignored).

    With one value the interval is unbounded: one replication says nothing about its spread.
    """
    xs = [float(v) for v in values if not math.isnan(v)]
    n = len(xs)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, level)
    mean = math.fsum(xs) / n
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, level)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2, n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, level)
