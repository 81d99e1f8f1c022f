"""Throughput of ``decide`` against a hand-written dict-table FSM, measured in the same run, and
the same measurements against an earlier revision of the library.

    python benchmarks/engine.py [--seconds 1.0] [--before REF | --no-before]

Both sides run the same loop of a case in service: reassess, resume (guarded by the service
consent), record a contact in the journal, and append the event. The baseline is what one would
write by hand for the same work: a dict keyed by (state, event), plain guard functions, the same
input check, a mutable case dict, and an event dict with the same twelve fields (who, role, when,
why, legal basis, correlation id, payload). The engine builds immutable cases and events.
It also reports the cost of opening one case. Targets: engine within 2x of the baseline, opening
a case under 20 microseconds.

Before and after: ``--before REF`` (default ``50f84c4``, the last commit before input validation
was added to the models, commands and ``decide``) exports that revision's ``src/`` with
``git archive REF src`` into a temporary directory. Two worker processes then run the same loop
and the same case opening (this file with ``--measure-only``), one with ``PYTHONPATH`` set to that
``src/`` and one to this checkout's; their rounds are interleaved, so that both see the same
machine load, and the best of the rounds of each is kept. The script prints the after/before
ratio of the time ``decide`` takes per event and of the time to open a case; validation must not
make ``decide`` more than 15% slower (ratio 1.15). Outside a git checkout, or with
``--no-before``, the comparison is skipped with a message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import casemgmt_core as cm
from casemgmt_core import commands as c

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 5, tzinfo=UTC)
ACTOR = cm.Actor("w1", "caseworker")
POLICY = cm.DEFAULT_POLICY
LOOP = [
    c.StartReassessment("review"),
    c.ResumeService(),
    c.RecordJournal(cm.JournalKind.CONTACT, "home visit"),
]


def case_in_service() -> cm.Case:
    hh = cm.Household("H1", [cm.Member("p", dt.date(1980, 1, 1))])
    case = cm.decide(
        None, c.OpenCase("C1", hh, cm.Referral(cm.ReferralChannel.WALK_IN, NOW)), POLICY, NOW, actor=ACTOR
    ).case
    consent = cm.Consent("k", cm.ConsentScope.SERVICE_PROVISION, "p", cm.ConsentGiver.PERSON, "p", NOW)
    data = cm.Consent("d", cm.ConsentScope.PERSONAL_DATA, "p", cm.ConsentGiver.PERSON, "p", NOW)
    for command in (
        c.StartIntake(),
        c.RecordCrisisFactor(cm.CrisisFactor.DEBT),
        c.RecordCrisisFactor(cm.CrisisFactor.ILLNESS),
        c.RecordConsent(consent),
        c.RecordConsent(data),
        c.CompleteIntake(),
        c.Select(),
        c.RecordNeed(cm.Need("N1", cm.NeedDomain.HEALTH)),
        c.CompleteAssessment(),
        c.SetGoal(cm.Goal("G1", "x")),
        c.ApprovePlan(),
    ):
        case = cm.decide(case, command, POLICY, NOW, actor=ACTOR).case
    return case


def run_engine(n: int) -> int:
    """``n`` decisions of the loop; the number of events they gave."""
    case = case_in_service()
    events: list[cm.Event] = []
    for i in range(n):
        decision = cm.decide(case, LOOP[i % 3], POLICY, NOW, actor=ACTOR)
        case = decision.case
        events.extend(decision.events)
    return len(events)


# -- the hand-written baseline ---------------------------------------------------------------


def _has_service_consent(case: dict[str, Any]) -> bool:
    return any(k["scope"] == "service_provision" and k["withdrawn_at"] is None for k in case["consents"]) or (
        case["override"] is not None
    )


def _always(case: dict[str, Any]) -> bool:
    return True


BASELINE: dict[tuple[str, str], tuple[str | None, tuple[Callable[[dict[str, Any]], bool], ...]]] = {
    ("service", "start_reassessment"): ("reassessment", (_always,)),
    ("reassessment", "resume_service"): ("service", (_has_service_consent,)),
    ("service", "record_journal"): (None, ()),
}
BASELINE_LOOP = ["start_reassessment", "resume_service", "record_journal"]


def run_baseline(n: int) -> None:
    case: dict[str, Any] = {
        "state": "service",
        "version": 14,
        "override": None,
        "journal_size": 0,
        "last_contact_at": None,
        "consents": [{"scope": "service_provision", "withdrawn_at": None}],
    }
    commands = [
        ("start_reassessment", {"grounds": "review"}),
        ("resume_service", {}),
        ("record_journal", {"kind": "contact", "text": "home visit"}),
    ]
    events: list[dict[str, Any]] = []
    for i in range(n):
        name, payload = commands[i % 3]
        dest, guards = BASELINE[(case["state"], name)]
        if name == "record_journal" and not payload["text"].strip():
            raise ValueError("text")
        for guard in guards:
            if not guard(case):
                raise RuntimeError(name)
        case["version"] += 1
        if name == "record_journal":
            case["journal_size"] += 1
            case["last_contact_at"] = NOW
        event = {
            "case_id": "C1",
            "version": case["version"],
            "event": name,
            "source": case["state"],
            "target": dest or case["state"],
            "payload": payload,
            "actor_id": "w1",
            "role": "caseworker",
            "occurred_at": NOW,
            "note": "",
            "legal_basis": case["override"]["legal_basis"] if case["override"] else None,
            "correlation_id": None,
        }
        if dest is not None:
            case["state"] = dest
            case["state_entered_at"] = NOW
        events.append(event)


def best_rates(runs: dict[str, Callable[[int], object]], n: int, rounds: int) -> dict[str, float]:
    """Best rate of each run over ``rounds`` interleaved rounds, so that both sides see the same
    machine load (the best is the least disturbed)."""
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, fn in runs.items():
            seconds = timeit.timeit(lambda fn=fn: fn(n), number=1)  # type: ignore[misc]
            best[name] = max(best[name], n / seconds)
    return best


def open_timer() -> timeit.Timer:
    hh = cm.Household("H1", [cm.Member("p", dt.date(1980, 1, 1))])
    command = c.OpenCase("C1", hh, cm.Referral(cm.ReferralChannel.WALK_IN, NOW))
    return timeit.Timer(lambda: cm.decide(None, command, POLICY, NOW, actor=ACTOR))


def open_number(timer: timeit.Timer, seconds: float) -> int:
    """How many openings take about a fifth of ``seconds``."""
    return max(1000, int(seconds / max(timer.timeit(100) / 100, 1e-7) / 5))


def open_cost(seconds: float) -> float:
    timer = open_timer()
    number = open_number(timer, seconds)
    return min(timer.repeat(repeat=5, number=number)) / number


# -- before and after: the same measurements of two revisions, in two worker processes ------------

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BEFORE = "50f84c4"
#: How much slower ``decide`` may become per event (after/before).
DECIDE_LIMIT = 1.15


def measure_only(transitions: int, seconds: float) -> None:
    """Worker: for each line read from stdin, one round of the loop and of case openings, as a line
    of JSON (seconds per event, seconds per opening) on stdout."""
    timer = open_timer()
    number = open_number(timer, seconds)
    print(json.dumps({"library": str(Path(cm.__file__).parent)}), flush=True)
    for _ in sys.stdin:
        start = timeit.default_timer()
        events = run_engine(transitions)
        elapsed = timeit.default_timer() - start
        opening = timer.timeit(number) / number
        print(json.dumps({"event": elapsed / events, "open": opening}), flush=True)


class Worker:
    """A ``--measure-only`` process of this file importing the library from ``src``."""

    def __init__(self, name: str, src: Path, args: argparse.Namespace) -> None:
        self.name = name
        command = [sys.executable, str(Path(__file__).resolve()), "--measure-only"]
        command += ["--transitions", str(args.transitions), "--seconds", str(args.seconds)]
        # PYTHONPATH replaced, not extended: nothing else may supply the library.
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True, cwd=src.parent
        )
        library = Path(self._read()["library"])
        if library.resolve() != (src / "casemgmt_core").resolve():
            raise SystemExit(f"{name}: imported the library from {library}, not from {src}")
        self.best = {"event": float("inf"), "open": float("inf")}

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the worker stopped (exit status {self.process.wait()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def round(self) -> None:
        stdin: IO[str] | None = self.process.stdin
        assert stdin is not None
        stdin.write("measure\n")
        stdin.flush()
        for key, value in self._read().items():
            self.best[key] = min(self.best[key], value)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def git(*args: str) -> str | None:
    """The output of ``git -C ROOT args``, or ``None`` if git fails (no git, not a checkout)."""
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)
    except OSError:
        return None
    return done.stdout.decode() if done.returncode == 0 else None


@contextmanager
def exported_src(ref: str) -> Iterator[tuple[str, Path] | str]:
    """``(commit, its src/ in a temporary directory)``, or why it could not be exported."""
    if git("rev-parse", "--is-inside-work-tree") is None:
        yield f"{ROOT} is not a git checkout"
        return
    commit = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit is None:
        yield f"no commit {ref!r} in this checkout"
        return
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit.strip(), "src"],
        capture_output=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="casemgmt-before-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield commit.strip(), Path(tmp) / "src"


def before_and_after(args: argparse.Namespace) -> None:
    print()
    with exported_src(args.before) as exported:
        if isinstance(exported, str):
            print(f"before/after: skipped ({exported})")
            return
        commit, src = exported
        print(f"before/after: {args.before} ({commit[:12]}) against this checkout, {args.rounds} rounds")
        before = Worker("before", src, args)
        after = Worker("after", ROOT / "src", args)
        try:
            for _ in range(args.rounds):
                before.round()
                after.round()
        finally:
            before.close()
            after.close()
    decide = after.best["event"] / before.best["event"]
    opening = after.best["open"] / before.best["open"]
    verdict = "within" if decide <= DECIDE_LIMIT else "OVER"
    print(
        f"decide per event       : before {before.best['event'] * 1e6:6.2f} us, "
        f"after {after.best['event'] * 1e6:6.2f} us, after/before {decide:.3f}  "
        f"({verdict} the limit of {DECIDE_LIMIT})"
    )
    print(
        f"open one case          : before {before.best['open'] * 1e6:6.2f} us, "
        f"after {after.best['open'] * 1e6:6.2f} us, after/before {opening:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="rough time per measurement")
    parser.add_argument("--transitions", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--before", default=DEFAULT_BEFORE, metavar="REF", help="the revision to compare with (git)"
    )
    parser.add_argument("--no-before", action="store_true", help="skip the before/after comparison")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_only:
        measure_only(args.transitions, args.seconds)
        return
    rates = best_rates({"baseline": run_baseline, "engine": run_engine}, args.transitions, args.rounds)
    baseline, engine = rates["baseline"], rates["engine"]
    opening = open_cost(args.seconds)
    print(f"hand-written dict FSM : {baseline:12,.0f} transitions/s")
    print(f"casemgmt_core.decide  : {engine:12,.0f} transitions/s")
    print(f"ratio (baseline/engine): {baseline / engine:.2f}x   (target <= 2x)")
    print(f"open one case          : {opening * 1e6:.1f} us      (target < 20 us)")
    if not args.no_before:
        before_and_after(args)


if __name__ == "__main__":
    main()
