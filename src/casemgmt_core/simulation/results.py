"""What a simulation produced: the event log, per-case tables and summaries across replications.

Summaries delete the warm-up: per-case measures count the cases (or visits, waits, episodes)
that began after ``warmup_days``; time averages run over ``[warmup_days, horizon_days]``. Each
measure is computed per replication, and reported as the mean across replications with a
t-based confidence interval (replications are independent; values within one are not).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from attrs import define

from ..lifecycle import LIVE_STATES
from ..model import CaseState, ClosureReason
from .caseflow import ReplicationResult
from .scenario import Scenario
from .stats import confidence_interval, t_quantile

__all__ = ["PM4PY_COLUMNS", "STAGES", "SimulationResult", "parquet_available"]

#: The column names pm4py reads by default.
PM4PY_COLUMNS = ("case:concept:name", "concept:name", "time:timestamp", "org:resource")
#: The stages whose time is summarised, in lifecycle order.
STAGES = (
    "referred",
    "intake",
    "screening",
    "assessment",
    "planning",
    "service",
    "reassessment",
    "crisis",
    "aftercare",
)
_OUTCOMES = ("closed", "aftercare", "redirected", "general_counselling", "declined", "handed_over", "open")
_OPEN = frozenset(s.value for s in LIVE_STATES if s is not CaseState.AFTERCARE)


def parquet_available() -> bool:
    """Whether Parquet can be written (the ``parquet`` extra, pyarrow, is installed)."""
    return importlib.util.find_spec("pyarrow") is not None


def _arr(values: Iterable[Any]) -> np.ndarray[Any, Any]:
    return np.asarray(list(values), dtype=float)


def _time_average(times: list[float], values: list[int], start: float, end: float) -> float:
    """The mean over ``[start, end]`` of the step function that is ``values[i]`` from ``times[i]``."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    edges = np.clip(np.append(t, end), start, end)
    return float(np.sum(v * np.diff(edges)) / (end - start))


def _mean(x: np.ndarray[Any, Any]) -> float:
    return float(x.mean()) if x.size else math.nan


@define
class SimulationResult:
    """The replications of one run, in replication order, and the tables derived from them."""

    scenario: Scenario
    replications: list[ReplicationResult]
    seed: int

    # -- tables ----------------------------------------------------------------------------

    def event_log(self) -> pd.DataFrame:
        """Every recorded event, one row each, with pm4py's column names.

        ``case:concept:name`` is the case, ``concept:name`` the event, ``time:timestamp`` when
        (timezone-aware), ``org:resource`` the actor; ``case:replication``, ``episode``,
        ``state:from`` and ``state:to`` add the replication and the lifecycle stages, and
        ``days`` the simulated time. Rows are ordered by case, then as decided.
        """
        frames = []
        for r in self.replications:
            log = r.log
            frames.append(
                pd.DataFrame(
                    {
                        "case:concept:name": log["case"],
                        "concept:name": log["event"],
                        "days": log["time"],
                        "org:resource": log["resource"],
                        "case:replication": r.index,
                        "episode": log["episode"],
                        "state:from": log["source"],
                        "state:to": log["target"],
                    }
                )
            )
        df = pd.concat(frames, ignore_index=True)
        start = pd.Timestamp(self.scenario.start)
        df["time:timestamp"] = start + pd.to_timedelta(df["days"], unit="D")
        df = df.sort_values(["case:concept:name", "days"], kind="mergesort", ignore_index=True)
        rest = ["case:replication", "episode", "state:from", "state:to", "days"]
        return df[[*PM4PY_COLUMNS, *rest]]

    def cases(self) -> pd.DataFrame:
        """One row per simulated case: channel, arrival, first wait, state at the horizon, outcome."""
        frames = [pd.DataFrame(r.cases).assign(replication=r.index) for r in self.replications]
        return pd.concat(frames, ignore_index=True)

    def visits(self) -> pd.DataFrame:
        """Every stay in a stage: ``entered``, ``left`` (``nan`` if still there), ``days``."""
        frames = [pd.DataFrame(r.visits).assign(replication=r.index) for r in self.replications]
        df = pd.concat(frames, ignore_index=True)
        return df.assign(days=df["left"] - df["entered"])

    def time_limits(self) -> pd.DataFrame:
        """Extensions and closures at the time limit over the whole run, per replication on
        average, with the extensions the engine refused (``refused_*``)."""
        n = len(self.replications)
        totals: dict[str, float] = {}
        for r in self.replications:
            for name, count in _counts_after(r, 0.0).items():
                totals[name] = totals.get(name, 0.0) + count
            for (event, _, reason), count in r.refusals.items():
                if event in ("extend_case", "extend_service"):
                    key = f"refused_{event}_{reason}"
                    totals[key] = totals.get(key, 0.0) + count
        rows = [(name, total / n) for name, total in sorted(totals.items())]
        return pd.DataFrame(rows, columns=["measure", "per_replication"])

    def refusals(self) -> pd.DataFrame:
        """How often each guard refused each event, per replication on average."""
        rows: dict[tuple[str, str, str], int] = {}
        for r in self.replications:
            for key, n in r.refusals.items():
                rows[key] = rows.get(key, 0) + n
        n = len(self.replications)
        data = [(e, g, reason, total / n) for (e, g, reason), total in sorted(rows.items())]
        return pd.DataFrame(data, columns=["event", "guard", "reason", "per_replication"])

    # -- summaries -------------------------------------------------------------------------

    def metrics(self) -> pd.DataFrame:
        """Each measure per replication: columns ``metric``, ``key``, ``replication``, ``value``."""
        rows = []
        for r in self.replications:
            for (metric, key), value in _replication_metrics(r, self.scenario).items():
                rows.append((metric, key, r.index, value))
        return pd.DataFrame(rows, columns=["metric", "key", "replication", "value"])

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Each measure's mean across replications with its confidence interval."""
        rows = []
        for (metric, key), group in self.metrics().groupby(["metric", "key"], sort=False):
            ci = confidence_interval(group["value"].tolist(), level)
            rows.append((metric, key, ci.mean, ci.low, ci.high, ci.n))
        return pd.DataFrame(rows, columns=["metric", "key", "mean", "ci_low", "ci_high", "replications"])

    def caseload(self, level: float = 0.95) -> pd.DataFrame:
        """Cases held by caseworkers and cases waiting, sampled every ``sample_every_days``:
        the mean across replications and its confidence interval at each sample time."""
        sc = self.scenario
        grid = np.arange(0.0, sc.horizon_days + 1e-9, sc.sample_every_days)
        out: dict[str, Any] = {"day": grid}
        for column in ("held", "waiting"):
            samples = []
            for r in self.replications:
                times = np.asarray(r.caseload["time"], dtype=float)
                values = np.asarray(r.caseload[column], dtype=float)
                samples.append(values[np.searchsorted(times, grid, side="right") - 1])
            m = np.vstack(samples)
            n = m.shape[0]
            mean = m.mean(axis=0)
            half = (
                t_quantile(0.5 + level / 2, n - 1) * m.std(axis=0, ddof=1) / math.sqrt(n)
                if n > 1
                else np.full_like(mean, np.inf)
            )
            out[column] = mean
            out[f"{column}_ci_low"] = mean - half
            out[f"{column}_ci_high"] = mean + half
        return pd.DataFrame(out)

    def littles_law(self, level: float = 0.95) -> pd.DataFrame:
        """Little's law, L = λW, for the queue and for the caseloads.

        Over the first half of the time after the warm-up: L is the time-average count, λ the
        entry rate, W the mean stay of those entries, followed up to the horizon. ``relative_gap``
        is ``(L - λW) / L`` with its interval across replications; a gap far from 0 points at a
        warm-up or a run too short for the stays (or at a bookkeeping error).
        """
        values = self.metrics().set_index(["metric", "key"])["value"]
        rows = []

        def per_replication(metric: str) -> np.ndarray:
            # With one replication .loc gives a scalar, with several a Series: one shape for both.
            return np.atleast_1d(np.asarray(values.loc[(metric, "")], dtype=float))

        for name in ("queue", "caseload"):
            L = per_replication(f"little_L_{name}")
            lw = per_replication(f"little_lambda_{name}") * per_replication(f"little_W_{name}")
            gap = (L - lw) / np.where(L == 0, np.nan, L)
            ci = confidence_interval(gap.tolist(), level)
            rows.append((name, float(np.mean(L)), float(np.mean(lw)), ci.mean, ci.low, ci.high))
        return pd.DataFrame(
            rows, columns=["system", "L", "lambda_W", "relative_gap", "gap_ci_low", "gap_ci_high"]
        )

    # -- files -----------------------------------------------------------------------------

    def write(self, out: str | Path, *, parquet: bool | None = None) -> dict[str, Path]:
        """Write the event log (CSV, and Parquet when pyarrow is installed or ``parquet=True``),
        the case table, the summary, the caseload series and the refusals to ``out``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, Path] = {}
        log = self.event_log()
        files["event_log.csv"] = folder / "event_log.csv"
        log.to_csv(files["event_log.csv"], index=False)
        if parquet is None:
            parquet = parquet_available()
        if parquet:
            files["event_log.parquet"] = folder / "event_log.parquet"
            log.to_parquet(files["event_log.parquet"], index=False)
        for name, frame in (
            ("cases.csv", self.cases()),
            ("summary.csv", self.summary()),
            ("caseload.csv", self.caseload()),
            ("refusals.csv", self.refusals()),
            ("littles_law.csv", self.littles_law()),
        ):
            files[name] = folder / name
            frame.to_csv(files[name], index=False)
        return files


_DAYS_TO_SECONDS = 86_400.0


def _counts_after(r: ReplicationResult, start: float) -> dict[str, float]:
    """How many extensions and closures at the time limit one replication recorded from ``start``."""
    events = np.asarray(r.log["event"], dtype=object)
    times = _arr(r.log["time"])
    after = times >= start
    ep_end = _arr(r.episodes["end"])
    reasons = np.asarray(r.episodes["closure_reason"], dtype=object)
    return {
        "case_extensions": float(((events == "extend_case") & after).sum()),
        "service_extensions": float(((events == "extend_service") & after).sum()),
        "maximum_duration_closures": float(
            ((reasons == ClosureReason.MAXIMUM_DURATION.value) & (ep_end >= start)).sum()
        ),
    }


def _replication_metrics(r: ReplicationResult, sc: Scenario) -> dict[tuple[str, str], float]:
    # The scenario's warm-up, not the run's: a run can be re-read with another warm-up.
    w, h = sc.warmup_days, r.horizon
    span = h - w
    m: dict[tuple[str, str], float] = {}
    arrived = _arr(r.cases["arrived"])
    after = arrived >= w
    m[("arrivals_per_year", "")] = float(after.sum()) / span * 365.0

    entered, left = _arr(r.waits["entered"]), _arr(r.waits["left"])
    done = (entered >= w) & ~np.isnan(left)
    waits = left[done] - entered[done]
    m[("wait_days_mean", "")] = _mean(waits)
    m[("wait_share_waiting", "")] = _mean((waits > 0).astype(float))
    m[("wait_days_p90", "")] = float(np.quantile(waits, 0.9)) if waits.size else math.nan
    m[("queue_entries_per_day", "")] = float((entered >= w).sum()) / span

    assigned, released = _arr(r.holds["assigned"]), _arr(r.holds["released"])
    done = (assigned >= w) & ~np.isnan(released)
    m[("hold_days_mean", "")] = _mean(released[done] - assigned[done])
    m[("assignments_per_day", "")] = float((assigned >= w).sum()) / span

    # Little's law over [w, end], with the stays of those entries followed to the horizon: what
    # the stock present at w adds to L then balances what entries near `end` spill past it.
    end = w + (h - w) / 2
    cl = r.caseload
    for name, start, stop, column in (
        ("queue", entered, left, "waiting"),
        ("caseload", assigned, released, "held"),
    ):
        entries = (start >= w) & (start < end)
        m[(f"little_L_{name}", "")] = _time_average(cl["time"], cl[column], w, end)
        m[(f"little_lambda_{name}", "")] = float(entries.sum()) / (end - w)
        m[(f"little_W_{name}", "")] = _mean(np.fmin(stop[entries], h) - start[entries])
    m[("caseload_mean", "")] = _time_average(cl["time"], cl["held"], w, h)
    m[("queue_mean", "")] = _time_average(cl["time"], cl["waiting"], w, h)
    m[("utilisation", "")] = m[("caseload_mean", "")] / (sc.staff.caseworkers * sc.staff.caseload_cap)

    states = np.asarray(r.visits["state"], dtype=object)
    v_in, v_out = _arr(r.visits["entered"]), _arr(r.visits["left"])
    done = (v_in >= w) & ~np.isnan(v_out)
    for stage in STAGES:
        sel = done & (states == stage)
        m[("time_in_state_days", stage)] = _mean(v_out[sel] - v_in[sel])

    final = np.asarray(r.cases["state"], dtype=object)[after]
    outcome = np.where(np.isin(final, list(_OPEN)), "open", final)
    for name in _OUTCOMES:
        m[("outcome_share", name)] = _mean((outcome == name).astype(float))
    reasons = np.asarray(r.cases["closure_reason"], dtype=object)[after]
    closed = reasons[reasons != ""]
    for reason in ClosureReason:
        m[("closure_reason_share", reason.value)] = _mean((closed == reason.value).astype(float))

    # Each episode's limit is the policy's case_max from its start on the programme's calendar
    # (not a fixed number of days), as the case holds it; extended_to is after the extensions.
    ep = r.episodes
    began, ended = _arr(ep["start"]), _arr(ep["end"])
    limit, extended_to = _arr(ep["limit"]), _arr(ep["extended_to"])
    # Only episodes whose limit falls before the horizon can be seen to run past it.
    observable = (began >= w) & (limit <= h)
    until = np.where(np.isnan(ended), h, ended)
    m[("over_case_limit_share", "")] = _mean((until[observable] > limit[observable]).astype(float))
    m[("extended_episode_share", "")] = _mean((_arr(ep["extensions"])[observable] > 0).astype(float))
    # Past the extended limit only a crisis intervention under way at the limit runs on.
    beyond = (until[observable] - extended_to[observable]) * _DAYS_TO_SECONDS > 1.0
    m[("over_extended_limit_share", "")] = _mean(beyond.astype(float))
    counted = _counts_after(r, w)
    for name, n in counted.items():
        m[(f"{name}_per_year", "")] = n / span * 365.0

    reports = _arr(r.cases["mandatory_reports"])[after]
    m[("mandatory_reports_per_100_cases", "")] = float(reports.sum()) / max(int(after.sum()), 1) * 100
    m[("mandatory_reports_per_year", "")] = float(reports.sum()) / span * 365.0
    return m
