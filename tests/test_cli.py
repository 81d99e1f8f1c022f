"""The ``casemgmt`` command line, called as ``main([...])``: every subcommand, its exit status,
and hostile input (missing, binary, non-TOML files; URLs whose password must never be shown)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import attrs
import pytest

import casemgmt_core as cm
from casemgmt_core import cli
from casemgmt_core.cli import main
from casemgmt_core.lifecycle import DiagramUnavailable
from casemgmt_core.ports import BrokenLink, ChainProblem, ChainReport

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "examples" / "policy.toml"
SCENARIO = ROOT / "examples" / "scenarios" / "baseline.toml"
SECRET = "Pa55w0rd-s3cret"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- the parser -----------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == 0
    assert out.strip() == f"casemgmt {cm.__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("no-such-command",),
        ("validate",),
        ("validate", "x.toml", "--kind", "bogus"),
        ("diagram", "--format", "png"),
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert "usage: casemgmt" in err


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("simulate", "validate", "diagram", "verify"):
        assert command in out


# -- validate -------------------------------------------------------------------------------------


def test_validate_a_policy(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "validate", str(POLICY))
    assert (status, err) == (0, "")
    assert out.startswith(f"OK policy {POLICY}: programme '우리아이 희망 네트워크'")
    assert "approvals: plan, closure, case_extension" in out
    assert out.count("\n") == 1


def test_validate_a_scenario_recognised_by_its_keys(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "validate", str(SCENARIO))
    assert status == 0
    assert out.startswith(f"OK scenario {SCENARIO}: 'baseline', 10 replications")
    assert out.count("\n") == 1


def test_validate_with_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "validate", "--kind", "scenario", str(SCENARIO))[0] == 0
    # A scenario read as a policy: its keys are not a policy's.
    status, out, err = run(capsys, "validate", "--kind", "policy", str(SCENARIO))
    assert (status, out) == (1, "")
    assert "policy.name: unknown key" in err


def test_an_empty_file_is_the_default_policy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    status, out, _ = run(capsys, "validate", str(empty))
    assert status == 0
    assert out.startswith(f"OK policy {empty}: programme 'default'")


def test_an_invalid_policy_names_every_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('time_zone = "Mars/Olympus"\n[time_limits]\nplan = -3\nbogus = 1\n', encoding="utf-8")
    status, out, err = run(capsys, "validate", str(bad))
    assert (status, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == f"INVALID policy {bad}: 3 problems"
    assert any(line.startswith("  policy.time_limits.plan: ") for line in lines)
    assert any(line.startswith("  policy.time_limits.bogus: unknown key") for line in lines)
    assert any(line.startswith("  policy.time_zone: ") for line in lines)


def test_an_invalid_scenario_names_its_field(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nreplications = 0\n', encoding="utf-8")
    status, _, err = run(capsys, "validate", str(bad))
    assert status == 1
    assert err.startswith(f"INVALID scenario {bad}: 1 problem\n")
    assert "scenario.replications" in err


def test_scenario_keys_are_the_scenario_fields() -> None:
    from casemgmt_core.policy import Policy
    from casemgmt_core.simulation import Scenario

    assert {f.name for f in attrs.fields(Scenario)} | {"policy_file"} == cli.SCENARIO_KEYS
    assert not cli.SCENARIO_KEYS & {f.name for f in attrs.fields(Policy)}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00\xd0\xff\xfe", "is not UTF-8 text"),
        (b"\x00\x00\x00", "not valid TOML"),
        (b"this is = = not toml [", "not valid TOML"),
        (b"[a\n", "not valid TOML"),
        (b"\xef\xbb\xbf" + b"x" * (2 * 1024 * 1024), "bytes long"),
    ],
    ids=["binary", "nul-bytes", "not-toml", "unclosed-table", "too-large"],
)
def test_hostile_files_are_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes, problem: str
) -> None:
    hostile = tmp_path / "hostile.toml"
    hostile.write_bytes(content)
    status, out, err = run(capsys, "validate", str(hostile))
    assert (status, out) == (1, "")
    assert err.startswith(f"INVALID {hostile}: 1 problem\n")
    assert problem in err
    assert "Traceback" not in err


@pytest.mark.parametrize("kind", ["policy", "scenario"])
def test_hostile_files_with_a_kind(capsys: pytest.CaptureFixture[str], tmp_path: Path, kind: str) -> None:
    hostile = tmp_path / "hostile.toml"
    hostile.write_bytes(b"\xff\xfe\x00binary")
    status, _, err = run(capsys, "validate", "--kind", kind, str(hostile))
    assert status == 1
    assert err.startswith(f"INVALID {kind} {hostile}: 1 problem\n")


def test_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "validate", str(tmp_path / "nowhere.toml"))
    assert (status, out) == (2, "")
    assert err == f"error: cannot validate {tmp_path / 'nowhere.toml'}: no such file\n"


def test_a_directory_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "validate", str(tmp_path))
    assert status == 2
    assert "not a regular file" in err


# -- diagram --------------------------------------------------------------------------------------


def test_diagram_mermaid_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "diagram")
    assert status == 0
    assert out == cm.to_mermaid().rstrip("\n") + "\n"
    assert "stateDiagram-v2" in out


def test_diagram_with_records(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "diagram", "--include-records")
    assert status == 0
    assert out == cm.to_mermaid(include_records=True).rstrip("\n") + "\n"
    assert len(out) > len(cm.to_mermaid())


def test_diagram_dot_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "lifecycle.dot"
    status, out, _ = run(capsys, "diagram", "--format", "dot", "--out", str(target))
    assert status == 0
    assert out == f"wrote the dot diagram to {target}\n"
    text = target.read_text(encoding="utf-8")
    assert text.startswith('digraph "casemgmt_core case lifecycle"')
    assert text == (ROOT / "docs" / "lifecycle.dot").read_text(encoding="utf-8").rstrip("\n") + "\n"


def test_diagram_to_an_unwritable_place(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "diagram", "--out", str(tmp_path / "no" / "such" / "dir.mmd"))
    assert status == 2
    assert err.startswith("error: cannot write")


def test_to_dot_without_graphviz_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)  # as if the package were not installed
    with pytest.raises(DiagramUnavailable, match=r"pip install 'casemgmt-core\[diagrams\]'") as raised:
        cm.to_dot()
    assert isinstance(raised.value, cm.CaseManagementError)
    assert isinstance(raised.value, ImportError)
    assert raised.value.code == "diagram_unavailable"


def test_diagram_dot_without_graphviz(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "graphviz", None)
    status, out, err = run(capsys, "diagram", "--format", "dot")
    assert (status, out) == (2, "")
    assert "pip install 'casemgmt-core[diagrams]'" in err
    assert "stateDiagram" not in err
    # Mermaid needs nothing more.
    assert run(capsys, "diagram", "--format", "mermaid")[0] == 0


# -- verify ---------------------------------------------------------------------------------------


def test_verify_an_empty_memory_store(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "verify", "memory://")
    assert (status, err) == (0, "")
    assert out == "memory://: 0 cases, 0 events checked; every hash chain holds\n"


def test_verify_a_sqlite_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "cases.db"
    store = cm.open_store(f"sqlite:///{path}")
    now = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)
    manager = cm.CaseManager(store, clock=lambda: now)
    worker = cm.Actor("kim", "caseworker")
    household = cm.Household("HH-1", [cm.Member("mother", dt.date(1987, 5, 14))])
    case = manager.open_case(household, cm.Referral(cm.ReferralChannel.WALK_IN, now), actor=worker)
    manager.handle(case.case_id, cm.StartIntake(), actor=worker)
    close = getattr(store, "close", None)
    if close is not None:
        close()
    status, out, _ = run(capsys, "verify", f"sqlite:///{path}")
    assert status == 0
    assert out == f"sqlite:///{path}: 1 cases, 2 events checked; every hash chain holds\n"


class FakeStore:
    def __init__(self, report: ChainReport) -> None:
        self.report = report
        self.closed = False

    def verify(self) -> ChainReport:
        return self.report

    def close(self) -> None:
        self.closed = True


def test_verify_a_broken_chain_exits_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = (
        BrokenLink("C-1", 3, ChainProblem.ALTERED, "the content no longer hashes to its hash"),
        BrokenLink("C-7", 1, ChainProblem.MISSING, "version 1 is absent"),
    )
    store = FakeStore(ChainReport(cases_checked=9, events_checked=40, broken=broken))
    monkeypatch.setattr("casemgmt_core.adapters.open_store", lambda url: store)
    status, out, _ = run(capsys, "verify", f"postgresql://app:{SECRET}@db.example:5432/welfare")
    assert status == 1
    assert store.closed
    assert out.splitlines() == [
        "postgresql://app@db.example:5432/welfare: 9 cases, 40 events checked; 2 broken",
        "  BROKEN case C-1, version 3: altered: the content no longer hashes to its hash",
        "  BROKEN case C-7, version 1: missing: version 1 is absent",
    ]
    assert SECRET not in out


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://casemgmt:{SECRET}@127.0.0.1:1/casemgmt",
        f"postgres://casemgmt:{SECRET}@127.0.0.1:1/casemgmt?connect_timeout=2",
        f"postgresql://casemgmt@127.0.0.1:1/casemgmt?password={SECRET}",
        f"mysql+pymysql://casemgmt:{SECRET}@127.0.0.1:1/casemgmt_test",
        f"mariadb+pymysql://casemgmt:{SECRET}@127.0.0.1:1/casemgmt_test",
        f"nosuchdb://casemgmt:{SECRET}@127.0.0.1:1/x",
        f"postgresql://casemgmt:{SECRET}@[::1/x",
        f"postgresql://casemgmt:{SECRET}@127.0.0.1:99999999/x",
        f"host=127.0.0.1 port=1 password={SECRET}",
    ],
)
def test_verify_never_prints_the_password(capsys: pytest.CaptureFixture[str], url: str) -> None:
    status, out, err = run(capsys, "verify", url)
    assert status == 2
    assert out == ""
    assert err.startswith("error: cannot verify ")
    assert SECRET not in err
    assert "Traceback" not in err


def test_verify_scrubs_a_password_the_driver_repeats(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def leaky(url: str) -> object:
        raise cm.StorageError(f"could not connect with {url} (password {SECRET.replace('-', '%2D')})")

    monkeypatch.setattr("casemgmt_core.adapters.open_store", leaky)
    quoted = SECRET.replace("-", "%2D")
    status, out, err = run(capsys, "verify", f"postgresql://app:{quoted}@db:5432/x")
    assert status == 2
    assert SECRET not in out + err
    assert quoted not in out + err
    assert err.startswith("error: cannot verify postgresql://app@db:5432/x: StorageError: ")


def test_verify_an_unknown_error_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exploding(FakeStore):
        def verify(self) -> ChainReport:
            raise RuntimeError(f"driver fell over at {SECRET}")

    store = Exploding(ChainReport(0, 0))
    monkeypatch.setattr("casemgmt_core.adapters.open_store", lambda url: store)
    status, _, err = run(capsys, "verify", f"mysql+pymysql://u:{SECRET}@h/db")
    assert status == 2
    assert store.closed
    assert SECRET not in err
    assert "RuntimeError: driver fell over at ***" in err


def test_the_docs_generator_without_graphviz_writes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from casemgmt_core import diagram

    monkeypatch.setitem(sys.modules, "graphviz", None)
    assert diagram.main([str(tmp_path / "docs")]) == 2
    assert "pip install 'casemgmt-core[diagrams]'" in capsys.readouterr().err
    assert not (tmp_path / "docs").exists()


def test_the_docs_generator_writes_both_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from casemgmt_core import diagram

    assert diagram.main([str(tmp_path)]) == 0
    assert (tmp_path / "lifecycle.dot").read_text(encoding="utf-8") == cm.to_dot()
    assert (tmp_path / "lifecycle.md").read_text(encoding="utf-8") == diagram.lifecycle_page()
    assert capsys.readouterr().out.startswith("wrote ")
