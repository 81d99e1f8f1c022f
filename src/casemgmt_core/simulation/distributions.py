"""Duration distributions of a scenario, and fast samplers for them.

A distribution is written in TOML as a small table, e.g. ``{ dist = "gamma", mean = 14, sd = 7 }``.
Samplers draw from numpy in batches and hand the values out one by one: a numpy call per draw
costs more than the rest of a simulated step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from attrs import frozen

__all__ = ["KINDS", "Distribution", "Sampler", "categorical", "sampler", "uniforms"]

Sampler = Callable[[], float]

#: Each kind with the parameters it needs.
KINDS: Mapping[str, tuple[str, ...]] = {
    "constant": ("value",),
    "exponential": ("mean",),
    "uniform": ("low", "high"),
    "triangular": ("low", "mode", "high"),
    "lognormal": ("mean", "sd"),
    "gamma": ("mean", "sd"),
    "empirical": ("values",),
}

_BATCH = 512


@frozen
class Distribution:
    """A non-negative duration distribution (days). Build with :meth:`parse` to validate."""

    kind: str
    params: tuple[tuple[str, float], ...] = ()
    values: tuple[float, ...] = ()
    """The observed values of an ``empirical`` distribution."""

    def param(self, name: str) -> float:
        return dict(self.params)[name]

    @property
    def mean(self) -> float:
        p = dict(self.params)
        if self.kind == "constant":
            return p["value"]
        if self.kind == "uniform":
            return (p["low"] + p["high"]) / 2
        if self.kind == "triangular":
            return (p["low"] + p["mode"] + p["high"]) / 3
        if self.kind == "empirical":
            return sum(self.values) / len(self.values)
        return p["mean"]

    @classmethod
    def constant(cls, value: float) -> Distribution:
        return cls.parse({"dist": "constant", "value": value})

    @classmethod
    def exponential(cls, mean: float) -> Distribution:
        return cls.parse({"dist": "exponential", "mean": mean})

    @classmethod
    def parse(cls, raw: Any) -> Distribution:
        """Validate a TOML table; raise :class:`ValueError` saying what is wrong and what would fit."""
        if isinstance(raw, Distribution):
            return raw
        if not isinstance(raw, Mapping):
            raise ValueError('must be a table such as { dist = "exponential", mean = 7 }')
        kind = raw.get("dist")
        if not isinstance(kind, str) or kind not in KINDS:
            raise ValueError(f"dist {kind!r} is unknown (allowed: {', '.join(KINDS)})")
        wanted = KINDS[kind]
        extra = sorted(set(raw) - {"dist", *wanted})
        missing = [k for k in wanted if k not in raw]
        if extra or missing:
            raise ValueError(
                f"a {kind} distribution takes exactly {', '.join(wanted)}"
                + (f"; unknown: {', '.join(extra)}" if extra else "")
                + (f"; missing: {', '.join(missing)}" if missing else "")
            )
        if kind == "empirical":
            values = raw["values"]
            if not isinstance(values, list) or not values or not all(_number(v) for v in values):
                raise ValueError("values must be a non-empty list of numbers")
            if min(values) < 0:
                raise ValueError("values must be 0 or more")
            return cls(kind, (), tuple(float(v) for v in values))
        p: dict[str, float] = {}
        for name in wanted:
            value = raw[name]
            if not _number(value) or value < 0 or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            p[name] = float(value)
        if kind in ("exponential", "lognormal", "gamma") and p["mean"] == 0:
            raise ValueError(f"a {kind} distribution needs mean > 0 (use constant for 0)")
        if kind in ("lognormal", "gamma") and p["sd"] == 0:
            raise ValueError(f"a {kind} distribution needs sd > 0 (use constant)")
        if kind == "uniform" and not p["low"] <= p["high"]:
            raise ValueError("uniform needs low <= high")
        if kind == "triangular" and not (p["low"] <= p["mode"] <= p["high"] and p["low"] < p["high"]):
            raise ValueError("triangular needs low <= mode <= high and low < high")
        return cls(kind, tuple(p.items()))


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stream(draw: Callable[[int], np.ndarray[Any, Any]]) -> Iterator[float]:
    while True:
        yield from draw(_BATCH).tolist()


def sampler(dist: Distribution, rng: np.random.Generator) -> Sampler:
    """A function returning one draw of ``dist`` per call, from ``rng``."""
    p = dict(dist.params)
    kind = dist.kind
    if kind == "constant":
        value = p["value"]
        return lambda: value
    draw: Callable[[int], np.ndarray[Any, Any]]
    if kind == "exponential":
        mean = p["mean"]
        draw = lambda n: rng.exponential(mean, n)  # noqa: E731
    elif kind == "uniform":
        low, high = p["low"], p["high"]
        draw = lambda n: rng.uniform(low, high, n)  # noqa: E731
    elif kind == "triangular":
        lo, mode, hi = p["low"], p["mode"], p["high"]
        draw = lambda n: rng.triangular(lo, mode, hi, n)  # noqa: E731
    elif kind == "lognormal":
        m, s = p["mean"], p["sd"]
        sigma2 = math.log1p((s / m) ** 2)
        mu = math.log(m) - sigma2 / 2
        draw = lambda n: rng.lognormal(mu, math.sqrt(sigma2), n)  # noqa: E731
    elif kind == "gamma":
        m, s = p["mean"], p["sd"]
        shape, scale = (m / s) ** 2, s * s / m
        draw = lambda n: rng.gamma(shape, scale, n)  # noqa: E731
    else:
        values = np.asarray(dist.values, dtype=float)
        draw = lambda n: rng.choice(values, n)  # noqa: E731
    return _stream(draw).__next__


def uniforms(rng: np.random.Generator) -> Sampler:
    """Uniform draws on [0, 1), for Bernoulli trials and categorical choices."""
    return _stream(rng.random).__next__


def categorical(weights: Sequence[float], u: Sampler) -> Callable[[], int]:
    """Index ``i`` with probability ``weights[i] / sum(weights)``, drawn with ``u``."""
    total = float(sum(weights))
    cumulative: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w / total
        cumulative.append(acc)
    cumulative[-1] = 1.0
    last = len(cumulative) - 1

    def draw() -> int:
        x = u()
        for i, edge in enumerate(cumulative):
            if x < edge:
                return i
        return last

    return draw
