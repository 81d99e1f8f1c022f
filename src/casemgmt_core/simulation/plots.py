"""Plots of a simulation run (matplotlib, Agg backend, saved as PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted, also in worker processes

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .results import STAGES, SimulationResult

__all__ = ["plot_all", "plot_caseload", "plot_outcomes", "plot_time_in_state"]


def plot_caseload(result: SimulationResult, path: str | Path) -> Path:
    """Cases held and waiting over time: mean across replications with its confidence band."""
    df = result.caseload()
    sc = result.scenario
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for column, label in (("held", "held by caseworkers"), ("waiting", "waiting for a caseworker")):
        ax.plot(df["day"], df[column], label=label)
        low = np.maximum(df[f"{column}_ci_low"], 0)
        ax.fill_between(df["day"], low, df[f"{column}_ci_high"], alpha=0.25)
    ax.axhline(sc.staff.caseworkers * sc.staff.caseload_cap, color="grey", ls=":", label="total caseload cap")
    ax.axvspan(0, sc.warmup_days, color="grey", alpha=0.1, label="warm-up (deleted)")
    ax.set_xlabel("day")
    ax.set_ylabel("cases")
    ax.set_title(f"{sc.name}: caseload over time ({len(result.replications)} replications, 95% CI)")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def plot_time_in_state(result: SimulationResult, path: str | Path) -> Path:
    """The distribution of completed stays in each stage after the warm-up (box plots, days)."""
    visits = result.visits()
    visits = visits[(visits["entered"] >= result.scenario.warmup_days) & visits["left"].notna()]
    stages = [s for s in STAGES if (visits["state"] == s).any()]
    data = [visits.loc[visits["state"] == s, "days"].to_numpy() for s in stages]
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    if data:
        ax.boxplot(data, tick_labels=stages, showfliers=False)
    ax.set_ylabel("days in stage")
    ax.set_title("time in each stage (whiskers 1.5 IQR, outliers not drawn)")
    ax.tick_params(axis="x", labelrotation=30)
    return _save(fig, path)


def plot_outcomes(result: SimulationResult, path: str | Path) -> Path:
    """Where the cases referred after the warm-up stand at the horizon, and why closed ones closed."""
    summary = result.summary()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for ax, metric, title in (
        (axes[0], "outcome_share", "state at the horizon"),
        (axes[1], "closure_reason_share", "closure reasons"),
    ):
        rows = summary[(summary["metric"] == metric) & (summary["mean"] > 0)]
        err = np.vstack([rows["mean"] - rows["ci_low"], rows["ci_high"] - rows["mean"]])
        ax.barh(rows["key"], rows["mean"], xerr=np.clip(np.nan_to_num(err, posinf=0), 0, None))
        ax.set_xlabel("share (95% CI)")
        ax.set_title(title)
        ax.invert_yaxis()
    return _save(fig, path)


def plot_all(result: SimulationResult, folder: str | Path) -> dict[str, Path]:
    """All plots as PNG files in ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "caseload.png": plot_caseload(result, out / "caseload.png"),
        "time_in_state.png": plot_time_in_state(result, out / "time_in_state.png"),
        "outcomes.png": plot_outcomes(result, out / "outcomes.png"),
    }


def _save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    fig.tight_layout()
    fig.savefig(target, format="png")
    plt.close(fig)
    return target
