"""The ``casemgmt`` command line. Each subcommand is one function, registered in :func:`build_parser`.

``casemgmt simulate`` runs a scenario; ``casemgmt validate`` checks a policy or scenario file
without running it; ``casemgmt diagram`` writes the lifecycle diagram; ``casemgmt verify`` checks
a store's hash chains. Exit status: 0 success, 1 the input is invalid or the chain is broken,
2 a usage error or something that could not be checked (a missing file, an unreachable store).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ._db_cli import add_db_parser
from .errors import CaseManagementError, PolicyError

if TYPE_CHECKING:
    from .policy import Policy
    from .simulation import Scenario

__all__ = [
    "SUBCOMMANDS",
    "build_parser",
    "diagram_command",
    "main",
    "simulate_command",
    "validate_command",
    "verify_command",
]

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


# -- validate ------------------------------------------------------------------------------------

#: Top-level keys only a scenario has (a policy's keys are its own; see ``Policy``).
SCENARIO_KEYS = frozenset(
    {
        "name",
        "description",
        "start",
        "horizon_days",
        "warmup_days",
        "replications",
        "seed",
        "sample_every_days",
        "policy",
        "policy_file",
        "arrivals",
        "households",
        "staff",
        "durations",
        "rates",
        "outcomes",
    }
)


def _add_validate(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "validate",
        help="check a policy or scenario file without running it",
        description="Load a policy or scenario TOML file with the library's strict loaders and report "
        "either OK with a summary, or every problem with where it is (exit status 1). Without --kind, "
        "a file with any scenario key (name, staff, arrivals, policy, policy_file...) is a scenario, "
        "any other a policy.",
    )
    p.add_argument("file", type=Path, help="the policy or scenario TOML file")
    p.add_argument("--kind", choices=["policy", "scenario"], default=None, help="what the file holds")
    p.set_defaults(handler=validate_command)


def _guess_kind(path: Path) -> str | None:
    """``scenario`` or ``policy`` by the file's top-level keys; ``None`` if it cannot be read as
    TOML (the loader then reports why)."""
    from ._checks import Invalid, read_source

    try:
        data = read_source(path)
    except Invalid:
        return None
    return "scenario" if SCENARIO_KEYS.intersection(data) else "policy"


def validate_command(args: argparse.Namespace) -> int:
    """``casemgmt validate``: returns the exit status."""
    path: Path = args.file
    if not path.is_file():
        what = "no such file" if not path.exists() else "not a regular file"
        print(f"error: cannot validate {path}: {what}", file=sys.stderr)
        return 2
    guessed = args.kind or _guess_kind(path)
    kind = guessed or "policy"
    try:
        if kind == "scenario":
            try:
                from .simulation import load_scenario
            except ImportError as exc:
                print(
                    "casemgmt validate needs the simulation extra for a scenario: "
                    f"pip install 'casemgmt-core[simulation]' ({exc})",
                    file=sys.stderr,
                )
                return 2
            summary = _scenario_summary(load_scenario(path))
        else:
            from .policy import load_policy

            summary = _policy_summary(load_policy(path))
    except PolicyError as exc:
        problems = exc.problems or (str(exc),)
        noun = "problem" if len(problems) == 1 else "problems"
        print(f"INVALID {guessed + ' ' if guessed else ''}{path}: {len(problems)} {noun}", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"OK {kind} {path}: {summary}")
    return 0


def _policy_summary(policy: Policy) -> str:
    grounds = [g.value for g, rule in policy.statutory.items() if rule.enabled]
    steps = [s.value for s in policy.approvals]
    return (
        f"programme {policy.programme!r}, time zone {policy.time_zone}; "
        f"statutory grounds: {', '.join(grounds) or 'none'}; "
        f"approvals: {', '.join(steps) or 'none'}"
    )


def _scenario_summary(scenario: Scenario) -> str:
    return (
        f"{scenario.name!r}, {scenario.replications} replications of {scenario.horizon_days:g} days "
        f"({scenario.warmup_days:g} warm-up), seed {scenario.seed}; "
        f"policy {scenario.policy.programme!r}"
    )


# -- diagram -------------------------------------------------------------------------------------


def _add_diagram(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "diagram",
        help="write the case lifecycle as a Mermaid or Graphviz diagram",
        description="Write the lifecycle (every state and transition with its guards) as Mermaid "
        "(stateDiagram-v2) or Graphviz DOT source. DOT needs the graphviz Python package "
        "(casemgmt-core[diagrams]); rendering it is left to Graphviz's own programs.",
    )
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid", help="default: mermaid")
    p.add_argument("--out", type=Path, default=None, metavar="FILE", help="write here (default: stdout)")
    p.add_argument(
        "--include-records",
        action="store_true",
        help="also draw the events that record data without changing the stage",
    )
    p.set_defaults(handler=diagram_command)


def diagram_command(args: argparse.Namespace) -> int:
    """``casemgmt diagram``: returns the exit status."""
    from .lifecycle import DiagramUnavailable, to_dot, to_mermaid

    try:
        if args.format == "dot":
            text = to_dot(include_records=args.include_records)
        else:
            text = to_mermaid(include_records=args.include_records)
    except DiagramUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = text.rstrip("\n") + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote the {args.format} diagram to {args.out}")
    return 0


# -- verify --------------------------------------------------------------------------------------


def _add_verify(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check the hash chains of a store's event log",
        description="Open the store at URL (as open_store does: sqlite:///cases.db, postgresql://..., "
        "mysql+pymysql://...) and check every case's hash chain. Exit status 0 when every chain holds, "
        "1 when one is broken, 2 when the store cannot be opened or read. The URL's password is never "
        "printed.",
    )
    p.add_argument("url", help="the store's URL")
    p.set_defaults(handler=verify_command)


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` that must not be shown: its password and any password parameter."""
    found: list[str] = []
    try:
        parts = urlsplit(url)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() in {"password", "passwd", "pwd"}]
    except ValueError:  # a malformed URL (a bad port, brackets): hide the whole of it
        found.append(url)
    # key=value connection strings (``password=secret host=db``)
    found += re.findall(r"(?i)\bpass(?:word|wd)?\s*=\s*'?([^\s']+)", url)
    return sorted({s for s in found if s}, key=len, reverse=True)


def _shown(url: str) -> str:
    """``url`` as it may be printed: scheme, user, host, port and path, never a password or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "the store"
    if not parts.scheme:
        return "the store"
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def verify_command(args: argparse.Namespace) -> int:
    """``casemgmt verify``: returns the exit status."""
    from .adapters import open_store

    url: str = args.url
    secrets = _secrets(url)
    shown = _shown(url)
    store: Any = None
    try:
        store = open_store(url)
        report = store.verify()
    except Exception as exc:  # a driver's own error included: report it, scrubbed, never the URL
        kind = type(exc).__name__
        print(_scrub(f"error: cannot verify {shown}: {kind}: {exc}", secrets), file=sys.stderr)
        return 2
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # closing after a failure must not hide it
                close()
    print(
        _scrub(
            f"{shown}: {report.cases_checked} cases, {report.events_checked} events checked; "
            + ("every hash chain holds" if report.ok else f"{len(report.broken)} broken"),
            secrets,
        )
    )
    for link in report.broken:
        print(_scrub(f"  BROKEN {link}", secrets))
    return 0 if report.ok else 1


# -- the parser ----------------------------------------------------------------------------------


def _add_db(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add_db_parser(subparsers)


#: Subcommand registrars, in the order ``--help`` lists them. A new subcommand adds one here.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = [
    _add_simulate,
    _add_validate,
    _add_diagram,
    _add_verify,
    _add_db,
]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="casemgmt", description="Crisis-household case management engine.")
    parser.add_argument("--version", action="version", version=f"casemgmt {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``casemgmt`` console script; returns the exit status (argparse's own
    exits, for ``--help``, ``--version`` and usage errors, are returned too)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CaseManagementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
