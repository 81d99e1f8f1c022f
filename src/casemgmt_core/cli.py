"""The ``casemgmt`` command line. Each subcommand is one function, registered in :func:`build_parser`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import CaseManagementError

if TYPE_CHECKING:
    from .simulation import Scenario

__all__ = ["build_parser", "main"]

Handler = Callable[[argparse.Namespace], int]


def _add_simulate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="simulate caseflows from a scenario file",
        description="Run the replications of a TOML scenario with the production rules and write the "
        "report, the event log (CSV, and Parquet with pyarrow) and the plots to a folder.",
    )
    p.add_argument("scenario", type=Path, help="the scenario TOML file")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: simulation-<name>)")
    p.add_argument("--replications", type=int, default=None, help="override the scenario's replications")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per CPU; 1: none)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="also commit the first replication's cases through this store and verify its hash chain "
        "(default: sqlite:///OUT/cases.db, the embedded default store)",
    )
    p.add_argument("--no-store", action="store_true", help="do not store the first replication's cases")
    p.set_defaults(handler=simulate_command)


def simulate_command(args: argparse.Namespace) -> int:
    """``casemgmt simulate``: returns the exit status."""
    try:
        from .simulation import load_scenario, parquet_available, simulate
        from .simulation.plots import plot_all
        from .simulation.report import markdown_report
    except ImportError as exc:
        print(
            f"casemgmt simulate needs the simulation extra: pip install 'casemgmt-core[simulation]' ({exc})",
            file=sys.stderr,
        )
        return 2
    from tqdm import tqdm

    scenario = load_scenario(args.scenario)
    if args.replications is not None and args.replications < 1:
        print("--replications must be at least 1", file=sys.stderr)
        return 2
    out: Path = args.out or Path(f"simulation-{scenario.name}")
    total = args.replications or scenario.replications
    with tqdm(total=total, unit="replication", disable=args.no_progress, file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        result = simulate(
            scenario,
            replications=args.replications,
            seed=args.seed,
            workers=args.workers,
            progress=progress,
        )
    files = result.write(out)
    plots = plot_all(result, out)
    report = markdown_report(
        result,
        plots={
            "Caseload over time": "caseload.png",
            "Time in each stage": "time_in_state.png",
            "Outcomes": "outcomes.png",
        },
    )
    if not parquet_available():
        report += "\nParquet was not written: install pyarrow (`casemgmt-core[parquet]`).\n"
        print("note: pyarrow is not installed, so no Parquet log was written", file=sys.stderr)
    (out / "report.md").write_text(report, encoding="utf-8")
    written = sorted([*files, *plots, "report.md"])
    print(f"wrote {len(written)} files to {out}: {', '.join(written)}")
    if not args.no_store:
        _store_first_replication(scenario, args.seed, args.store or f"sqlite:///{out / 'cases.db'}")
    return 0


def _store_first_replication(scenario: Scenario, seed: int | None, url: str) -> None:
    """Replay replication 1 (the same random stream as in the results) through a real store, so
    the simulated cases can be queried, replayed and audited like production ones."""
    import numpy as np

    from .adapters import open_store
    from .simulation import run_replication

    if url.startswith("sqlite:///") and "?" not in url:
        # A results database can be rebuilt from the seed: skip the fsync per commit.
        url += "?synchronous=NORMAL"
        Path(url.removeprefix("sqlite:///").partition("?")[0]).unlink(missing_ok=True)
    store = open_store(url)
    try:
        stream = np.random.SeedSequence(scenario.seed if seed is None else seed).spawn(1)[0]
        run_replication(scenario, stream, 0, store=store)
        report = store.verify()
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    chain = "hash chain verified" if report.ok else f"hash chain BROKEN: {report.first}"
    shown = url.partition("?")[0] if url.startswith("sqlite") else url.split("://", 1)[0] + "://…"
    counts = f"{report.cases_checked} cases, {report.events_checked} events"
    print(f"stored replication 1: {counts} in {shown}; {chain}")


#: Subcommand registrars, in the order ``--help`` lists them. A new subcommand adds one here.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [_add_simulate]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casemgmt", description="Crisis-household case management engine.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``casemgmt`` console script."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CaseManagementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
