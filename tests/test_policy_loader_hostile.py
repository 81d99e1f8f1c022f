"""The policy loader against hostile and careless input: nothing is coerced, every value is
bounded, every refusal is a PolicyError that names its field, and no input makes it crash or
stall."""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import casemgmt_core as cm
from casemgmt_core import policy as policy_module
from casemgmt_core._checks import MAX_DAYS, MAX_DEPTH, MAX_SOURCE_BYTES
from casemgmt_core.commands import COMMAND_TYPES, InvokeStatutoryOverride
from casemgmt_core.policy import StatutorySubject
from casemgmt_core.schedule import next_deadline

from .support import reach

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = (ROOT / "examples" / "policy.toml").read_text(encoding="utf-8")


def refusal(source: Any) -> cm.PolicyError:
    with pytest.raises(cm.PolicyError) as info:
        cm.load_policy(source)
    error = info.value
    assert len(error.fields) == len(error.problems)
    return error


# -- no coercion -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[time_limits]\ncase_max_days = true", "policy.time_limits.case_max_days"),
        ("[time_limits]\ncase_max_days = 365.9", "policy.time_limits.case_max_days"),
        ("[time_limits]\ncase_max_days = 365.0", "policy.time_limits.case_max_days"),
        ("[time_limits]\ncase_max_days = '183'", "policy.time_limits.case_max_days"),
        ("[time_limits]\ncase_max_days = '6 months'", "policy.time_limits.case_max_days"),
        ("[time_limits]\ncase_max = true", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 365.0", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = ['6 months']", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = {months = 6}", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 2026-01-01", "policy.time_limits.case_max"),
        ("[time_limits]\nmax_case_extensions = '2'", "policy.time_limits.max_case_extensions"),
        ("[time_limits]\nmax_service_extensions = true", "policy.time_limits.max_service_extensions"),
        ("time_zone = 9", "policy.time_zone"),
        ("time_zone = ['Asia/Seoul']", "policy.time_zone"),
        ("[approvals.closure]\nby_conference = 'true'", "policy.approvals.closure.by_conference"),
        ("[approvals.closure]\napproved_by = 'supervisor'", "policy.approvals.closure.approved_by"),
        ("approvals = ['closure']", "policy.approvals"),
        ("[approvals]\nclosure = true", "policy.approvals.closure"),
        ("[episodes]\naftercare_after = 'goals_met'", "policy.episodes.aftercare_after"),
        ("[episodes]\nreconfirm_consents = [1]", "policy.episodes.reconfirm_consents[0]"),
        ("[statutory.child_abuse]\nenabled = 'false'", "policy.statutory.child_abuse.enabled"),
        ("[statutory.elder_abuse]\nenabled = 1", "policy.statutory.elder_abuse.enabled"),
        ("[statutory.elder_abuse]\nlegal_basis = 7", "policy.statutory.elder_abuse.legal_basis"),
        ("[statutory.elder_abuse]\napplies_to = 'ELDER'", "policy.statutory.elder_abuse.applies_to"),
        ("[statutory.elder_abuse]\napplies_to = ['elder']", "policy.statutory.elder_abuse.applies_to"),
        ("[statutory.elder_abuse]\ninvoked_by = 'caseworker'", "policy.statutory.elder_abuse.invoked_by"),
        ("[eligibility]\njurisdiction = 'R1'", "policy.eligibility.jurisdiction"),
        ("[eligibility]\njurisdiction = [1]", "policy.eligibility.jurisdiction[0]"),
        ("[eligibility]\ntarget_child_age = '6-13'", "policy.eligibility.target_child_age"),
        ("[eligibility]\ntarget_child_age = [6, 13.5]", "policy.eligibility.target_child_age[1]"),
        ("[access]\ncaseworker = 'open'", "policy.access.caseworker"),
        ("programme = 1", "policy.programme"),
        ("time_limits = 3", "policy.time_limits"),
    ],
)
def test_nothing_is_coerced(text: str, field: str) -> None:
    assert refusal(text).field == field


def test_child_abuse_cannot_be_switched_on_or_off_by_a_string() -> None:
    error = refusal("[statutory.child_abuse]\nenabled = 'false'")
    assert "must be true or false" in error.problems[0]


@pytest.mark.parametrize(
    "doc",
    [
        {"time_limits": {"case_max_days": True}},
        {"time_limits": {"case_max_days": 365.9}},
        {"time_limits": {"case_max_days": "183"}},
        {"time_limits": {"case_max_days": None}},
        {"time_limits": {"case_max_days": [365]}},
        {"statutory": {"child_abuse": {"enabled": "false"}}},
        {"statutory": {"child_abuse": {"enabled": 1}}},
        {"statutory": {"child_abuse": {"applies_to": StatutorySubject.MINOR}}},
        {"eligibility": {"jurisdiction": ("R1",)}},
        {"eligibility": {"jurisdiction": {"R1"}}},
    ],
)
def test_mappings_are_as_strict_as_toml(doc: dict[str, Any]) -> None:
    assert refusal(doc).field is not None


# -- bounds ------------------------------------------------------------------------------------

#: The time limits that are durations (the others are counts of days or of extensions).
LIMITS = [a for a in policy_module.TimeLimits.__attrs_attrs__ if a.type in ("Duration", cm.Duration)]
COUNTS = ["max_service_extensions", "max_case_extensions"]
#: The names of version 0.1, whole days.
LEGACY = sorted(policy_module.LEGACY_TIME_LIMITS)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        *((f"[time_limits]\n{a.name} = {MAX_DAYS + 1}", f"policy.time_limits.{a.name}") for a in LIMITS),
        *((f"[time_limits]\n{a.name} = 0", f"policy.time_limits.{a.name}") for a in LIMITS),
        *((f"[time_limits]\n{name} = 101", f"policy.time_limits.{name}") for name in COUNTS),
        *((f"[time_limits]\n{name} = -1", f"policy.time_limits.{name}") for name in COUNTS),
        ("[time_limits]\ncase_max = 99999999999", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = -99999999999999999999999", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '999999 years'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'P36501D'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '1201 months'", "policy.time_limits.case_max"),
        (f"[time_limits]\ncase_max = '{'9' * 5000} days'", "policy.time_limits.case_max"),
        (f"[time_limits]\ncase_max = 'P{'9' * 5000}D'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '-6 months'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '0 days'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'P0D'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'P'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = ''", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'PT1H'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'P1DT12H'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'P1.5M'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '6 moons'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '6 months and a day'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = 'half a year'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '1.5 months'", "policy.time_limits.case_max"),
        ("[time_limits]\ncase_max = '6 months; drop table'", "policy.time_limits.case_max"),
        (f"[time_limits]\ncase_max = '6 months{' ' * 100}'", "policy.time_limits.case_max"),
        ('[time_limits]\ncase_max = "6\u00a0months"', "policy.time_limits.case_max"),
        ('[time_limits]\ncase_max = "6 months\u202e"', "policy.time_limits.case_max"),
        ("time_zone = 'Mars/Olympus_Mons'", "policy.time_zone"),
        ("time_zone = ''", "policy.time_zone"),
        ("time_zone = '../../../etc/passwd'", "policy.time_zone"),
        ("time_zone = '/etc/localtime'", "policy.time_zone"),
        ("time_zone = 'Asia/../Asia/Seoul'", "policy.time_zone"),
        (f"time_zone = '{'A' * 65}'", "policy.time_zone"),
        ('time_zone = "Asia/Seoul\\u0000"', "policy.time_zone"),
        ('time_zone = "Asia/Seoul\\n"', "policy.time_zone"),
        ("[approvals.merge]\napproved_by = ['supervisor']", "policy.approvals.merge"),
        ("[approvals.PLAN]\napproved_by = ['supervisor']", "policy.approvals.PLAN"),
        ("[approvals.closure]\napproved_by = []", "policy.approvals.closure.approved_by"),
        ("[approvals.closure]\napproved_by = ['']", "policy.approvals.closure.approved_by"),
        ('[approvals.closure]\napproved_by = ["team\\nlead"]', "policy.approvals.closure.approved_by"),
        ("[approvals.closure]\napproved_by = [7]", "policy.approvals.closure.approved_by[0]"),
        ("[approvals.closure]\nvoted_by = ['board']", "policy.approvals.closure.voted_by"),
        ("[episodes]\naftercare_after = ['bored']", "policy.episodes.aftercare_after[0]"),
        ("[episodes]\naftercare_after = ['GOALS_MET']", "policy.episodes.aftercare_after[0]"),
        ("[episodes]\nreconfirm_consents = ['everything']", "policy.episodes.reconfirm_consents[0]"),
        ("[episodes]\nforget_after = 3", "policy.episodes.forget_after"),
        ("[time_limits]\nreminder_lead_days = 366", "policy.time_limits.reminder_lead_days"),
        ("[time_limits]\nreminder_lead_days = -1", "policy.time_limits.reminder_lead_days"),
        ("[eligibility]\nage_of_majority = 0", "policy.eligibility.age_of_majority"),
        ("[eligibility]\nage_of_majority = 31", "policy.eligibility.age_of_majority"),
        ("[eligibility]\nelder_age = 39", "policy.eligibility.elder_age"),
        ("[eligibility]\nelder_age = 121", "policy.eligibility.elder_age"),
        ("[eligibility]\nmin_crisis_factors = 0", "policy.eligibility.min_crisis_factors"),
        ("[eligibility]\nmin_crisis_factors = 13", "policy.eligibility.min_crisis_factors"),
        ("[eligibility]\ntarget_child_age = [-1, 5]", "policy.eligibility.target_child_age"),
        ("[eligibility]\ntarget_child_age = [5, 121]", "policy.eligibility.target_child_age"),
        ("[eligibility]\ntarget_child_age = [5]", "policy.eligibility.target_child_age"),
        ('[eligibility]\njurisdiction = ["R1\\n"]', "policy.eligibility.jurisdiction"),
        (
            "[statutory.elder_abuse]\nreport_within_hours = 8761",
            "policy.statutory.elder_abuse.report_within_hours",
        ),
        (
            "[statutory.elder_abuse]\nreport_within_hours = -1",
            "policy.statutory.elder_abuse.report_within_hours",
        ),
        (
            "[statutory.elder_abuse]\nconfirmation_within_hours = 0",
            "policy.statutory.elder_abuse.confirmation_within_hours",
        ),
        (
            "[statutory.elder_abuse]\nconfirmation_within_hours = 721",
            "policy.statutory.elder_abuse.confirmation_within_hours",
        ),
        ("[statutory.elder_abuse]\ninvoked_by = []", "policy.statutory.elder_abuse.invoked_by"),
        ("[statutory.elder_abuse]\nconfirmed_by = []", "policy.statutory.elder_abuse.confirmed_by"),
        ("[statutory.elder_abuse]\nconfirmed_by = ['']", "policy.statutory.elder_abuse.confirmed_by"),
        ('[statutory.elder_abuse]\nlegal_basis = "two\\nlines"', "policy.statutory.elder_abuse.legal_basis"),
        ('[statutory.elder_abuse]\nauthority = "bell\\u0007"', "policy.statutory.elder_abuse.authority"),
        (f"[statutory.elder_abuse]\nauthority = '{'x' * 2001}'", "policy.statutory.elder_abuse.authority"),
        (f"programme = '{'p' * 201}'", "policy.programme"),
        ("programme = ' padded '", "policy.programme"),
        ("[access]\n'' = ['open']", "policy.access."),
    ],
)
def test_every_value_is_bounded(text: str, field: str) -> None:
    assert refusal(text).field == field


@pytest.mark.parametrize("legacy", LEGACY)
def test_an_old_name_takes_whole_days_within_the_same_bounds(legacy: str) -> None:
    new = policy_module.LEGACY_TIME_LIMITS[legacy]
    loaded = cm.load_policy(f"[time_limits]\n{legacy} = {MAX_DAYS}")
    assert getattr(loaded.time_limits, new) == cm.Duration(days=MAX_DAYS)
    for bad in (0, MAX_DAYS + 1, -1, "'P6M'", "true", "1.5"):
        assert refusal(f"[time_limits]\n{legacy} = {bad}").field == f"policy.time_limits.{legacy}"


@pytest.mark.parametrize("legacy", LEGACY)
def test_a_limit_given_under_both_names_is_refused(legacy: str) -> None:
    new = policy_module.LEGACY_TIME_LIMITS[legacy]
    for text in (f"{legacy} = 30\n{new} = 30", f"{new} = '1 month'\n{legacy} = 31"):
        error = refusal(f"[time_limits]\n{text}")
        assert error.field == f"policy.time_limits.{legacy}"
        assert new in error.problems[0]


@pytest.mark.parametrize("text", ["100 years", "P100Y", "36500 days", "P36500D"])
def test_the_longest_stated_duration_loads(text: str) -> None:
    """Every limit may be from 1 day to 100 years, as the loader's own message says."""
    policy = cm.load_policy(f"[time_limits]\ncase_max = '{text}'")
    assert policy.time_limits.case_max.longest_days >= MAX_DAYS


def test_a_policy_at_every_upper_bound_loads_and_its_deadlines_stay_computable() -> None:
    limits = "\n".join(f"{a.name} = {MAX_DAYS}" for a in LIMITS)
    counts = "\n".join(f"{name} = 100" for name in COUNTS)
    policy = cm.load_policy(
        f"[time_limits]\n{limits}\n{counts}\nreminder_lead_days = 365\n"
        "[statutory.child_abuse]\nreport_within_hours = 8760\nconfirmation_within_hours = 720\n"
    )
    assert policy.time_limits.case_max == cm.Duration(days=MAX_DAYS)
    d = reach(cm.CaseState.SERVICE)
    d.do(InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE))
    d.do(cm.RequestApproval("A1", cm.ApprovalStep.CLOSURE))
    latest = dt.datetime(2200, 12, 31, 23, 59, tzinfo=dt.UTC)  # the model's last instant
    assert next_deadline(d.case, policy) is not None
    assert cm.due(d.case, policy, latest)  # every deadline computed, none overflowed
    assert latest + dt.timedelta(days=3 * MAX_DAYS) < dt.datetime.max.replace(tzinfo=dt.UTC)
    # the longest months the loader takes, from the last instant, on the calendar
    months = cm.Duration(months=MAX_DAYS // 31)
    assert policy.deadline(latest, months) < dt.datetime.max.replace(tzinfo=dt.UTC)


# -- sources -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [{1: 2}, {"time_limits": {3: 4}}, {"statutory": {"child_abuse": {None: 1}}}, {"access": {("a",): []}}],
)
def test_keys_that_are_not_strings_are_refused_at_any_level(source: Any) -> None:
    assert "keys must be strings" in refusal(source).problems[0]


@pytest.mark.parametrize("source", [42, None, b"programme = 'x'", ["programme"], 1.5, str])
def test_only_text_paths_and_mappings_are_sources(source: Any) -> None:
    assert refusal(source).field == "policy"


def test_a_large_text_is_refused_before_parsing() -> None:
    text = "a = 1\n" * (10 * MAX_SOURCE_BYTES // 6)
    started = time.perf_counter()
    error = refusal(text)
    assert time.perf_counter() - started < 0.5
    assert "bytes allowed" in error.problems[0]


def test_a_ten_megabyte_file_is_refused_in_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    path.write_bytes(b'programme = "x"\n' + b"# padding\n" * (10 * MAX_SOURCE_BYTES // 10))
    started = time.perf_counter()
    error = refusal(path)
    assert time.perf_counter() - started < 0.5
    assert error.source == str(path)
    assert "bytes allowed" in error.problems[0]


def test_a_source_just_under_the_limit_is_still_quick() -> None:
    text = 'programme = "' + "x" * (MAX_SOURCE_BYTES - 100) + '"'
    started = time.perf_counter()
    refusal(text)  # too long a programme name, but parsed and checked
    assert time.perf_counter() - started < 5  # about 0.2 s; the bound only catches a regression


def test_non_utf8_bytes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('programme = "café"\n'.encode("latin-1"))
    error = refusal(path)
    assert "not UTF-8" in error.problems[0]
    assert "0xe9" in error.problems[0]


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbfprogramme = 'bom'\n")
    assert cm.load_policy(path).programme == "bom"


def test_a_lone_surrogate_in_text_is_refused() -> None:
    assert "lone surrogate" in refusal("programme = '\ud800'").problems[0]


@pytest.mark.parametrize("name", ["", "."])
def test_a_folder_is_not_a_policy_file(tmp_path: Path, name: str) -> None:
    assert "not a regular file" in refusal(tmp_path / name).problems[0]


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 5000 + "]" * 5000,
        "a = " + "{b = " * 5000 + "1" + "}" * 5000,
        "a = " + "[" * 100_000,
        "a = " + "[" * (MAX_DEPTH + 2) + "]" * (MAX_DEPTH + 2),
        "a" + ".a" * 20_000 + " = 1",
        "[" + "a." * 20_000 + "a]",
        '"a"' + ' . "a"' * 20_000 + " = 1",
    ],
)
def test_deep_toml_is_refused_quickly(text: str) -> None:
    started = time.perf_counter()
    error = refusal(text)
    assert time.perf_counter() - started < 1
    assert "deep" in error.problems[0]


def test_a_deeply_nested_mapping_is_refused_without_recursion() -> None:
    doc: dict[str, Any] = {}
    inner = doc
    for _ in range(100_000):
        inner["eligibility"] = {}
        inner = inner["eligibility"]
    error = refusal(doc)
    assert "deep" in error.problems[0]
    assert str(error.field).startswith("policy.eligibility.eligibility")


def test_a_mapping_that_contains_itself_is_refused() -> None:
    doc: dict[str, Any] = {}
    doc["eligibility"] = doc
    assert "deep" in refusal(doc).problems[0]


def test_a_deeply_nested_list_is_refused() -> None:
    items: list[Any] = []
    for _ in range(100_000):
        items = [items]
    assert "deep" in refusal({"eligibility": {"jurisdiction": items}}).problems[0]


def test_too_many_values_are_refused() -> None:
    assert "more than" in refusal({"eligibility": {"jurisdiction": ["R"] * 1_000_000}}).problems[0]


def test_unknown_keys_list_the_allowed_ones() -> None:
    error = refusal("[time_limits]\ncase_max_dayz = 3")
    assert error.field == "policy.time_limits.case_max_dayz"
    assert "allowed: assessment, plan, service_item_max, case_max" in error.problems[0]
    unknown_step = refusal("[approvals.merge]\napproved_by = ['supervisor']")
    assert "plan, closure, case_extension, service_extension, aftercare" in unknown_step.problems[0]
    unknown_reason = refusal("[episodes]\naftercare_after = ['bored']")
    assert "goals_met" in unknown_reason.problems[0]
    assert "maximum_duration" in unknown_reason.problems[0]


def test_many_problems_are_capped_with_a_count() -> None:
    error = refusal({f"k{i}": 1 for i in range(500)})
    assert error.problems[-1] == "... and 450 more problems"
    assert error.fields[-1] is None


# -- the new statutory keys ---------------------------------------------------------------------


def test_new_access_events_follow_the_command_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        COMMAND_TYPES, "confirm_override", COMMAND_TYPES.get("confirm_override", InvokeStatutoryOverride)
    )
    monkeypatch.setitem(COMMAND_TYPES, "audit_case", InvokeStatutoryOverride)
    roles = policy_module._default_access()
    assert {"confirm_override", "audit_case"} <= roles["supervisor"]
    assert "audit_case" in roles["caseworker"]
    assert "confirm_override" not in roles["caseworker"]
    assert "confirm_override" not in roles["intake_officer"]


# -- properties: a Policy or a PolicyError, nothing else -------------------------------------------

KNOWN_KEYS = sorted(
    {
        *(
            a.name
            for cls in (
                cm.Policy,
                cm.Eligibility,
                cm.TimeLimits,
                cm.StatutoryRule,
                cm.ApprovalRule,
                cm.Episodes,
            )
            for a in cls.__attrs_attrs__
        ),
        *policy_module.LEGACY_TIME_LIMITS,
        *(g.value for g in cm.StatutoryGround),
        *(s.value for s in StatutorySubject),
        *(s.value for s in cm.ApprovalStep),
        *(r.value for r in cm.ClosureReason),
        *(s.value for s in cm.ConsentScope),
        "supervisor",
        "caseworker",
        "*",
    }
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-2, 40_000)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(KNOWN_KEYS)
    | st.sampled_from(["6 months", "P6M", "P0D", "PT1H", "100 years", "P99999Y", "Asia/Seoul", "UTC", "../x"])
)
KEYS = (
    st.sampled_from(KNOWN_KEYS)
    | st.text(max_size=8)
    | st.integers()
    | st.none()
    | st.booleans()
    | st.floats()
)
JSON_LIKE = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=24,
)

PROPERTY = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _outcome(source: Any) -> cm.Policy | cm.PolicyError:
    try:
        return cm.load_policy(source)
    except cm.PolicyError as error:
        return error


def _loads_or_refuses(source: Any) -> None:
    result = _outcome(source)  # any other exception fails the test
    if isinstance(result, cm.PolicyError):
        assert result.problems
        assert len(result.fields) == len(result.problems)
        assert all(f is None or f.startswith("policy") for f in result.fields)
    else:
        assert isinstance(result, cm.Policy)


@PROPERTY
@given(doc=JSON_LIKE)
def test_any_json_like_value_gives_a_policy_or_a_policy_error(doc: Any) -> None:
    _loads_or_refuses(doc)


@PROPERTY
@given(
    doc=st.dictionaries(
        st.sampled_from(
            ["eligibility", "time_limits", "statutory", "access", "approvals", "episodes", "time_zone"]
        ),
        JSON_LIKE,
    )
)
def test_any_value_under_the_known_sections_gives_a_policy_or_a_policy_error(doc: Any) -> None:
    _loads_or_refuses(doc)


@st.composite
def _files(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["bytes", "text", "line"]))
    if how == "bytes":
        return draw(st.binary(max_size=400))
    if how == "text":
        return draw(st.text(max_size=300)).encode("utf-8")
    lines = EXAMPLE.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    lines[i] = draw(st.text(max_size=40) | st.sampled_from([f"{lines[i].split('=')[0]}= {v}" for v in _JUNK]))
    return "\n".join(lines).encode(draw(st.sampled_from(["utf-8", "utf-16", "latin-1"])), "replace")


_JUNK = [
    "true",
    "'1'",
    "1.5",
    "-1",
    "99999999999",
    "nan",
    "inf",
    "[]",
    "['x', 1]",
    "{}",
    "'false'",
    "[[[[1]]]]",
]


@PROPERTY
@given(content=_files())
def test_any_file_gives_a_policy_or_a_policy_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.toml"
        path.write_bytes(content)
        _loads_or_refuses(path)


@PROPERTY
@given(text=st.text(max_size=300))
def test_any_text_gives_a_policy_or_a_policy_error(text: str) -> None:
    _loads_or_refuses(text)


def test_the_bounds_leave_no_float_loophole() -> None:
    for value in (math.nan, math.inf, -math.inf, 1e308):
        assert refusal({"time_limits": {"case_max_days": value}}).field == "policy.time_limits.case_max_days"
        assert refusal({"time_limits": {"case_max": value}}).field == "policy.time_limits.case_max"
        assert (
            refusal({"time_limits": {"max_case_extensions": value}}).field
            == "policy.time_limits.max_case_extensions"
        )


@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(days=183),
        dt.date(2026, 7, 1),
        b"P6M",
        ("6", "months"),
        {"months": 6},
        {183},
    ],
    ids=repr,
)
def test_a_mapping_takes_durations_only_as_toml_would_write_them(value: Any) -> None:
    """A mapping's duration is a whole number of days or a string, as in TOML; no other object."""
    assert refusal({"time_limits": {"case_max": value}}).field == "policy.time_limits.case_max"
