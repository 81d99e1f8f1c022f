"""A Markdown report of a simulation run: assumptions, measures with intervals, checks."""

from __future__ import annotations

import math

import pandas as pd

from .results import SimulationResult
from .scenario import Scenario

__all__ = ["markdown_report"]


def _fmt(x: float) -> str:
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _table(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame.itertuples(index=False):
        cells = [_fmt(v) if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _limits(sc: Scenario) -> str:
    tl, o = sc.policy.time_limits, sc.outcomes
    return (
        f"case limit {tl.case_max}, extended by a supervisor with probability "
        f"{o.p_extend_case_at_limit:g} (at most {tl.max_case_extensions} x {tl.case_extension}); "
        f"service item limit {tl.service_item_max}, extended after a reassessment with probability "
        f"{o.p_extend_service_at_limit:g} (at most {tl.max_service_extensions} x {tl.service_extension})"
    )


def markdown_report(result: SimulationResult, *, plots: dict[str, str] | None = None) -> str:
    """The report as Markdown; ``plots`` maps a title to an image path to embed."""
    sc = result.scenario
    reps = result.replications
    summary = result.summary()
    lines = [
        f"# Caseflow simulation: {sc.name}",
        "",
        sc.description or "",
        "",
        f"- replications: {len(reps)}, seed {result.seed} (replication streams spawned by "
        "`numpy.random.SeedSequence`)",
        f"- horizon {sc.horizon_days:g} days from {sc.start.isoformat()}, warm-up {sc.warmup_days:g} "
        "days deleted",
        f"- caseworkers: {sc.staff.caseworkers}, caseload cap {sc.staff.caseload_cap}, "
        f"queue {sc.staff.queue}",
        f"- policy: programme {sc.policy.programme!r}, time zone {sc.policy.time_zone}; {_limits(sc)}",
        f"- decisions by the rule engine: {sum(r.decisions for r in reps):,}, stage transitions "
        f"{sum(r.transitions for r in reps):,}, compute time {sum(r.wall_seconds for r in reps):.1f} s",
        "",
        "## Measures (mean across replications, 95% confidence interval)",
        "",
    ]
    shown = summary[summary["mean"].notna()].copy()
    shown["measure"] = shown["metric"] + shown["key"].map(lambda k: f" [{k}]" if k else "")
    lines += _table(shown[["measure", "mean", "ci_low", "ci_high"]], ["measure", "mean", "low", "high"])
    lines += ["", "## Little's law (L = λW) after the warm-up", ""]
    lines += _table(
        result.littles_law(),
        ["system", "L", "λW", "relative gap", "gap low", "gap high"],
    )
    lines += ["", "## Time limits: extensions and closures at the limit (per replication, whole run)", ""]
    lines += _table(result.time_limits(), ["measure", "per replication"])
    lines += ["", "## Refusals by the guards (per replication)", ""]
    refusals = result.refusals()
    if refusals.empty:
        lines.append("None.")
    else:
        lines += _table(refusals, ["event", "guard", "reason", "per replication"])
    for title, path in (plots or {}).items():
        lines += ["", f"## {title}", "", f"![{title}]({path})"]
    return "\n".join(lines) + "\n"
