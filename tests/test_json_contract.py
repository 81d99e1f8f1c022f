"""The public JSON contract (``casemgmt_core.json``): every command, case and event to JSON data
and back, their JSON Schemas, hostile payloads as ``InvalidData`` naming the place, and errors as
JSON bodies with a stable code, labels and no personal data."""

from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import pkgutil
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.encoders import jsonable_encoder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import casemgmt_core as cm
import casemgmt_core.json as cj
from casemgmt_core import commands as c
from casemgmt_core.i18n import LANGUAGES, labels
from casemgmt_core.notify.errors import DeliveryFailed

from .properties.test_serialization import full
from .support import T0, WORKER, Driver, consent, reach, to_service

NAME = "김민수"
BIRTH = dt.date(1987, 5, 14)
#: Values a payload may hold in a wrong place: each JSON type, and an empty string.
WRONG: tuple[Any, ...] = (1, 1.5, "", "x", True, None, [], {}, [1], {"a": 1})


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


COMMAND_CLASSES = sorted(
    (t for t in _subclasses(c.Command) if t.__module__ == c.__name__), key=lambda t: t.__name__
)


def validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = cj.json_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


VALIDATORS = {kind: validator(kind) for kind in cj.KINDS}
_DEFS = cj.schemas("#/$defs/")
#: A validator for each command class alone (faster than the union's ``oneOf``).
COMMAND_VALIDATORS = {
    name: jsonschema.Draft202012Validator({"$ref": f"#/$defs/{cls.__name__}", "$defs": _DEFS})
    for name, cls in c.COMMAND_TYPES.items()
}


def plain(data: Any) -> bool:
    """Whether ``data`` is made of JSON types only (no subclasses: a StrEnum is not a str)."""
    if type(data) is dict:
        return all(type(k) is str and plain(x) for k, x in data.items())
    if type(data) is list:
        return all(plain(x) for x in data)
    return data is None or type(data) in (str, int, float, bool)


def through_json(data: Any) -> Any:
    return json.loads(json.dumps(data, ensure_ascii=False))


def household() -> cm.Household:
    return cm.Household(
        "HH-1",
        [
            cm.Member("parent", BIRTH, name=NAME, relation="mother"),
            cm.Member("child", dt.date(2016, 2, 1), name="김준", guardian_id="parent"),
        ],
        region="11680",
    )


def lifecycle() -> Driver:
    """A case taken through most of its life: intake, screening, assessment, planning, service,
    an extension after reassessment, a crisis, closure and after-care."""
    d = Driver("C-json", hh=household())
    to_service(d)
    d.do(c.RecordStrength(cm.Strength("supportive grandmother", "parent")))
    d.do(c.RecordJournal(cm.JournalKind.CONTACT, "home visit", "parent"), days=3)
    d.do(c.StartReassessment("job found"), days=30)
    d.do(c.ResumeService())
    d.do(c.ExtendService("S1", "placement continues"))
    d.do(c.DeclareCrisis("eviction notice"), days=2)
    d.do(c.ResolveCrisis("landlord agreed"), days=1)
    d.do(c.Close(cm.ClosureReason.GOALS_MET), days=10)
    d.do(c.StartAftercare("check after a term"))
    return d


LIFE = lifecycle()


# -- the module -------------------------------------------------------------------------------


def test_the_module_is_public_and_leaves_the_standard_json_alone() -> None:
    assert cm.json is cj
    assert set(cj.__all__) >= {"to_dict", "command_from_dict", "case_from_dict", "event_from_dict"}
    assert {"json_schema", "schemas", "open_case_from_dict"} <= set(cj.__all__)
    from casemgmt_core import serialization

    assert serialization.json is json
    assert "json" not in cm.__all__


def test_every_command_class_is_known() -> None:
    assert set(COMMAND_CLASSES) == set(c.COMMAND_TYPES.values())
    assert set(cj.schemas()["Command"]["discriminator"]["mapping"]) == set(c.COMMAND_TYPES)


# -- round trips and schemas ------------------------------------------------------------------


@pytest.mark.parametrize("cls", COMMAND_CLASSES, ids=lambda t: t.event)
@settings(max_examples=10, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_every_command_round_trips_and_fits_its_schema(cls: type[c.Command], data: st.DataObject) -> None:
    command = data.draw(full(cls))
    body = cj.to_dict(command)
    assert plain(body)
    assert body["command"] == cls.event
    COMMAND_VALIDATORS[cls.event].validate(body)
    assert cj.command_from_dict(through_json(body)) == command


def test_the_commands_of_a_lifecycle_round_trip() -> None:
    for event in LIFE.events:
        body = through_json(cj.to_dict(event.payload))
        VALIDATORS["command"].validate(body)
        assert cj.command_from_dict(body) == event.payload


def test_a_case_from_a_full_lifecycle_fits_its_schema_and_passes_fastapi_unchanged() -> None:
    case = LIFE.case
    assert case.state is cm.CaseState.AFTERCARE
    body = cj.to_dict(case)
    assert plain(body)
    VALIDATORS["case"].validate(body)
    assert jsonable_encoder(body) == body
    assert through_json(body) == body
    assert cj.case_from_dict(through_json(body)) == case
    assert body["household"]["members"][0]["birth_date"] == "1987-05-14"
    assert body["opened_at"] == T0.isoformat()


def test_every_event_of_a_lifecycle_fits_its_schema_and_round_trips() -> None:
    for event in LIFE.events:
        body = cj.to_dict(event)
        assert plain(body)
        VALIDATORS["event"].validate(body)
        assert jsonable_encoder(body) == body
        assert cj.event_from_dict(through_json(body)) == event


def test_an_event_whose_payload_is_of_another_command_does_not_fit() -> None:
    body = cj.to_dict(LIFE.events[1])
    assert body["event"] == "start_intake"
    wrong = body | {"event": "assign"}
    assert not VALIDATORS["event"].is_valid(wrong)
    with pytest.raises(cm.InvalidData) as caught:
        cj.event_from_dict(wrong)
    assert caught.value.field == "event.payload.caseworker_id"


def test_notifications_refusals_and_due_items_are_json_data_that_fit() -> None:
    manager = cm.CaseManager(cm.InMemoryStore(), clock=lambda: T0)
    case = manager.open_case(household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=WORKER)
    with pytest.raises(cm.UnknownCommand):
        manager.handle(case.case_id, c.Close(cm.ClosureReason.GOALS_MET), actor=WORKER)
    (refusal,) = manager.refusals(case.case_id)
    notifications = [p.notification for p in manager.store.pending_notifications(limit=10)]
    invoked = reach(cm.CaseState.INTAKE)
    invoked.do(c.InvokeStatutoryOverride(cm.StatutoryGround.CHILD_ABUSE))
    items = cm.due(invoked.case, invoked.policy, invoked.now)
    assert items
    from casemgmt_core.notifications import notifications_for

    notifications += list(notifications_for(invoked.events))
    assert notifications
    for kind, values in (("refusal", [refusal]), ("notification", notifications), ("due_item", items)):
        for value in values:
            body = cj.to_dict(value)
            assert plain(body), body
            VALIDATORS[kind].validate(body)
            assert jsonable_encoder(body) == body


def test_a_model_is_written_by_the_same_converter_and_anything_else_is_refused() -> None:
    assert cj.to_dict(household())["members"][0]["birth_date"] == "1987-05-14"
    for thing in (object(), {"a": 1}, cm.Case, "text", None):
        with pytest.raises(cm.InvalidData):
            cj.to_dict(thing)


def test_opening_a_case_from_json() -> None:
    body = {
        "household": cj.to_dict(household()),
        "referral": cj.to_dict(cm.Referral(cm.ReferralChannel.WALK_IN, T0)),
    }
    VALIDATORS["open_case"].validate(body)
    request = cj.open_case_from_dict(through_json(body))
    assert request == cj.OpenCaseRequest(household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0))
    manager = cm.CaseManager(cm.InMemoryStore(), clock=lambda: T0)
    case = manager.open_case(request.household, request.referral, actor=WORKER, case_id=request.case_id)
    assert case.household == household()
    # The command itself is buildable too, with the case's id.
    opened = cj.command_from_dict({"command": "open", "case_id": "C9", **body})
    assert opened == c.OpenCase("C9", household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0))
    with pytest.raises(cm.InvalidData) as caught:
        cj.open_case_from_dict({**body, "case_id": " padded "})
    assert caught.value.field == "open_case.case_id"
    with pytest.raises(cm.InvalidData) as caught:
        cj.open_case_from_dict({"household": body["household"]})
    assert caught.value.field == "open_case.referral"


# -- the schemas as OpenAPI components ----------------------------------------------------------


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_schemas_are_openapi_components_whose_references_resolve() -> None:
    components = cj.schemas()
    assert {"Command", "Case", "Event", "CaseManagementError", "OpenCaseRequest"} <= set(components)
    found = list(refs(components))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in components
    for target in components["Command"]["discriminator"]["mapping"].values():
        assert target.removeprefix("#/components/schemas/") in components
    # A fresh copy each time: a caller may change what it gets.
    components["Case"]["title"] = "changed"
    assert cj.schemas()["Case"]["title"] == "Case"
    own = cj.schemas("#/$defs/")
    assert all(r.startswith("#/$defs/") for r in refs(own))


def test_schemas_are_generated_with_the_validators_bounds() -> None:
    defs = cj.schemas("#/$defs/")
    member = defs["Member"]["properties"]
    assert member["member_id"] == {"type": "string", "minLength": 1, "maxLength": 128}
    assert member["name"] == {"type": "string", "maxLength": 200, "default": ""}
    assert member["birth_date"]["format"] == "date"
    assert defs["Member"]["required"] == ["member_id", "birth_date"]
    assert defs["Member"]["additionalProperties"] is False
    assert defs["Goal"]["properties"]["revision"]["minimum"] == 0
    assert defs["Goal"]["properties"]["need_ids"]["maxItems"] == 100
    assert defs["Goal"]["properties"]["need_ids"]["items"]["maxLength"] == 128
    assert defs["Consent"]["properties"]["given_at"] == {"type": "string", "format": "date-time"}
    assert defs["CrisisFactor"]["enum"] == [f.value for f in cm.CrisisFactor]
    assert defs["Case"]["properties"]["crisis_factors"]["uniqueItems"] is True
    assert defs["Case"]["properties"]["caseworker_id"]["anyOf"][1] == {"type": "null"}
    link = defs["LinkService"]
    assert link["properties"]["command"] == {"const": "link_service"}
    assert link["required"] == ["command", "item"]
    assert link["properties"]["item"] == {"$ref": "#/$defs/ServiceItem"}


@pytest.mark.parametrize("kind", ["nope", 3, None, "Case"])
def test_an_unknown_kind_of_schema_is_refused(kind: Any) -> None:
    with pytest.raises(cm.InvalidData) as caught:
        cj.json_schema(kind)
    assert caught.value.field == "kind"


# -- hostile payloads -------------------------------------------------------------------------


def places(data: Any, path: str) -> Iterator[tuple[str, list[str | int]]]:
    """Every place in ``data``: its path as the errors name it, and its keys."""

    def walk(node: Any, where: str, keys: list[str | int]) -> Iterator[tuple[str, list[str | int]]]:
        yield where, keys
        if type(node) is dict:
            for k, x in node.items():
                yield from walk(x, f"{where}.{k}", [*keys, k])
        elif type(node) is list:
            for i, x in enumerate(node):
                yield from walk(x, f"{where}[{i}]", [*keys, i])

    yield from walk(data, path, [])


def replaced(data: Any, keys: list[str | int], value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for k in keys[:-1]:
        node = node[k]
    node[keys[-1]] = value
    return out


def removed(data: Any, keys: list[str | int]) -> Any:
    out = copy.deepcopy(data)
    node = out
    for k in keys[:-1]:
        node = node[k]
    del node[keys[-1]]
    return out


def refused(load: Any, data: Any) -> cm.InvalidData:
    with pytest.raises(cm.InvalidData) as caught:
        load(data)
    error = caught.value
    assert error.allowed, error
    assert type(error.field) is str
    return error


def hostile(body: dict[str, Any], check: jsonschema.Draft202012Validator, load: Any, root: str) -> int:
    """Each place of ``body`` given each wrong value the schema refuses, removed where required,
    and an unknown key added to each object: refused as ``InvalidData`` naming the place."""
    assert check.is_valid(body)
    tried = 0
    for where, keys in places(body, root):
        if not keys or keys == ["schema"]:
            continue  # an event's older schema versions load (upcast); the schema has the current one
        for value in WRONG:
            bad = replaced(body, keys, value)
            if check.is_valid(bad):
                continue  # allowed there by the schema (a null where a value is optional...)
            error = refused(load, bad)
            assert error.field is not None
            # The place itself, or one inside the wrong value given there ("goals": [1]).
            assert error.field == where or error.field[len(where) :][:1] in ".[", (where, value, error)
            tried += 1
        if type(keys[-1]) is str:
            bad = removed(body, keys)
            if not check.is_valid(bad):
                assert refused(load, bad).field == where
                tried += 1
    for where, keys in places(body, root):
        node = body
        for k in keys:
            node = node[k]
        if type(node) is dict:
            bad = replaced(body, keys, {**node, "zz_unknown": 1}) if keys else {**body, "zz_unknown": 1}
            assert not check.is_valid(bad)
            assert refused(load, bad).field == where
            tried += 1
    return tried


@pytest.mark.parametrize("cls", COMMAND_CLASSES, ids=lambda t: t.event)
@settings(max_examples=2, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_a_wrong_value_anywhere_in_a_command_is_refused_at_its_place(
    cls: type[c.Command], data: st.DataObject
) -> None:
    body = cj.to_dict(data.draw(full(cls)))
    check = COMMAND_VALIDATORS[cls.event]
    hostile(body, check, cj.command_from_dict, "command")
    # The union schema refuses what the class's own refuses.
    assert not VALIDATORS["command"].is_valid(body | {"zz_unknown": 1})


def test_a_wrong_value_anywhere_in_a_case_or_an_event_is_refused_at_its_place() -> None:
    case = cj.to_dict(reach(cm.CaseState.PLANNING).case)
    assert hostile(case, VALIDATORS["case"], cj.case_from_dict, "case") > 100
    link = next(e for e in LIFE.events if e.event == "link_service")
    assert hostile(cj.to_dict(link), VALIDATORS["event"], cj.event_from_dict, "event") > 50


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "command"),
        ("record_need", "command"),
        (None, "command"),
        ({}, "command.command"),
        ({"command": "assign_caseworker", "caseworker_id": "w"}, "command.command"),
        ({"command": "Assign", "caseworker_id": "w"}, "command.command"),
        ({"command": ["assign"], "caseworker_id": "w"}, "command.command"),
        ({"command": "assign"}, "command.caseworker_id"),
        ({"command": "assign", "caseworker_id": "w", "caseworker": "w"}, "command"),
        ({"command": "record_need", "need": []}, "command.need"),
        ({"command": "record_need", "need": "N1"}, "command.need"),
        ({"command": "record_need", "need": {"need_id": "N1", "domain": "HOUSING"}}, "command.need.domain"),
        ({"command": "record_crisis_factor", "factor": 1}, "command.factor"),
        ({"command": "record_intake_findings", "information_only": 1}, "command.information_only"),
        ({"command": "record_intake_findings", "information_only": "true"}, "command.information_only"),
        ({"command": "extend_case", "reason": "r", "until": "2026-01-05"}, "command.until"),
        ({"command": "extend_case", "reason": "r", "until": "2026-01-05T09:00:00"}, "command.until"),
        ({"command": "approve_plan", "version": "1"}, "command.version"),
        ({"command": "approve_plan", "version": 1.0}, "command.version"),
        ({"command": "approve_plan", "version": 0}, "command.version"),
        ({"command": "approve_plan", "version": 10**30}, "command.version"),
        ({"command": "reopen", "grounds": "g", "lapsed_consents": "k1"}, "command.lapsed_consents"),
        ({"command": "reopen", "grounds": "g", "lapsed_consents": [1]}, "command.lapsed_consents[0]"),
    ],
)
def test_bad_commands_are_refused_at_their_place(data: Any, field: str) -> None:
    error = refused(cj.command_from_dict, data)
    assert error.field == field
    assert "(allowed: " in str(error)


def test_a_bad_command_name_lists_the_names() -> None:
    error = refused(cj.command_from_dict, {"command": "assign_caseworker", "caseworker_id": "w"})
    assert error.allowed is not None
    assert "assign" in error.allowed.split(", ")
    assert "record_need" in error.allowed


def test_a_nested_place_is_named_with_its_path() -> None:
    item = cj.to_dict(
        c.LinkService(cm.ServiceItem("S1", "N1", "job", cm.Agency("p"), cm.ResourceKind.FORMAL, T0))
    )
    item["item"]["need_id"] = 7
    error = refused(cj.command_from_dict, item)
    assert error.field == "command.item.need_id"
    assert error.allowed == "a string of 1 to 128 characters"
    del item["item"]["provider"]["id"]
    item["item"]["need_id"] = "N1"
    assert refused(cj.command_from_dict, item).field == "command.item.provider.id"


def deep(depth: int, kind: type = list) -> Any:
    node: Any = [] if kind is list else {}
    for _ in range(depth):
        node = [node] if kind is list else {"a": node}
    return node


@pytest.mark.parametrize("kind", [list, dict])
def test_deep_nesting_is_refused_without_descending(kind: type) -> None:
    nested = deep(10**6, kind)
    cases = [
        ({"command": "assign", "caseworker_id": nested}, "command.caseworker_id"),
        ({"command": "assign", "caseworker_id": "w", "extra": nested}, "command"),
        ({"command": nested}, "command.command"),
        ({"command": "set_goal", "goal": {"goal_id": "G", "description": "d", "need_ids": [nested]}}, None),
        ({"command": "record_need", "need": nested}, "command.need"),
    ]
    for data, field in cases:
        error = refused(cj.command_from_dict, data)
        assert error.field is not None
        if field is not None:
            # {"a": {...}} in place of a need misses the need's keys: the first is named.
            assert error.field == field or error.field.startswith(field + "."), (field, error)
    for load, root in ((cj.case_from_dict, "case"), (cj.event_from_dict, "event")):
        field = refused(load, nested).field
        assert field is not None
        assert field == root or field.startswith(root + ".")


def test_huge_input_is_refused_at_its_place() -> None:
    huge = "x" * 5_000_000
    assert refused(cj.command_from_dict, {"command": "assign", "caseworker_id": huge}).field == (
        "command.caseworker_id"
    )
    assert refused(
        cj.command_from_dict, {"command": "record_journal", "kind": "contact", "text": huge}
    ).field == ("command.text")
    many = {f"k{i}": i for i in range(200_000)}
    error = refused(cj.command_from_dict, {"command": "start_intake", **many})
    assert error.field == "command"
    assert len(str(error)) < 2_000
    long_list = ["n"] * 200_000
    error = refused(cj.command_from_dict, {"command": "reopen", "grounds": "g", "lapsed_consents": long_list})
    assert error.field == "command.lapsed_consents"


def test_only_invalid_data_leaves_for_any_json_value() -> None:
    values: list[Any] = [*WRONG, 2**70, float("nan"), "\ud800", {"command": "\x00"}]
    for value in values:
        for load in (cj.command_from_dict, cj.case_from_dict, cj.event_from_dict, cj.open_case_from_dict):
            with pytest.raises(cm.InvalidData):
                load(value)
        if value != "x":
            with pytest.raises(cm.InvalidData):
                cj.command_from_dict({"command": "assign", "caseworker_id": value})


# -- personal data ----------------------------------------------------------------------------


def hides_personal_data(text: str) -> bool:
    return NAME not in text and BIRTH.isoformat() not in text and "1987" not in text


def test_personal_data_is_not_in_the_errors_of_bad_payloads() -> None:
    body = {"command": "open", "case_id": "C1", "household": cj.to_dict(household()), "referral": 1}
    member = body["household"]["members"][0]
    attempts = [
        body,
        replaced(body, ["household", "members", 0, "name"], NAME * 100),
        replaced(body, ["household", "members", 0, "name"], NAME + "\x00"),
        replaced(body, ["household", "members", 0, "birth_date"], BIRTH.isoformat() + "T00:00:00"),
        replaced(body, ["household", "members", 0, "birth_date"], "1987-02-30"),
        replaced(body, ["household", "members", 0, "birth_date"], 1987),
        replaced(body, ["household", "members", 0], member | {"x": 1}),
    ]
    for data in attempts:
        error = refused(cj.command_from_dict, data)
        assert error.field is not None
        assert error.field.startswith("command.")
        shown = json.dumps(error.to_dict(), ensure_ascii=False) + str(error) + repr(error.value)
        assert hides_personal_data(shown), shown


def every_error() -> list[cm.CaseManagementError]:
    """One of each error, most of them raised by the library for a household with a name and a
    birth date."""
    errors: list[cm.CaseManagementError] = []
    now = T0
    manager = cm.CaseManager(cm.InMemoryStore(), clock=lambda: now)
    case = manager.open_case(household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=WORKER)
    manager.handle(case.case_id, c.StartIntake(), actor=WORKER)
    attempts: list[Any] = [
        lambda: manager.handle(case.case_id, c.CompleteIntake(), actor=WORKER),
        lambda: manager.handle(case.case_id, c.Close(cm.ClosureReason.GOALS_MET), actor=WORKER),
        lambda: manager.handle(case.case_id, c.StartIntake(), actor=cm.Actor("v", "volunteer")),
        lambda: manager.handle("nope", c.StartIntake(), actor=WORKER),
        lambda: manager.open_case(household(), cm.Referral(cm.ReferralChannel.WALK_IN, T0), actor=WORKER),
        lambda: manager.open_case(
            cm.Household("HH-2", [cm.Member("m", dt.date(2030, 1, 1), name=NAME)]),
            cm.Referral(cm.ReferralChannel.WALK_IN, T0),
            actor=WORKER,
        ),
        lambda: cm.Member("m", dt.datetime(1987, 5, 14, tzinfo=dt.UTC), name=NAME),
        lambda: cm.Member("m", BIRTH, name=NAME * 100),
        lambda: cm.load_policy('[time_limits]\ncase_max_days = "365"\n'),
        lambda: cj.command_from_dict(
            {"command": "record_consent", "consent": consent(cm.ConsentScope.SHARING)}
        ),
    ]
    for attempt in attempts:
        try:
            attempt()
        except cm.CaseManagementError as error:
            errors.append(error)
        else:
            raise AssertionError("expected an error")
    errors += [
        cm.CaseManagementError("something"),
        cm.StorageError("the backend failed"),
        cm.ConcurrencyConflict(case_id="C1", expected_version=3, actual_version=4),
        cm.ConcurrencyConflict(case_id="C1", expected_version=3, actual_version=None),
        DeliveryFailed(notification_id="n1", channel="webhook", reason="HTTP 503", status=503),
    ]
    scenario = importlib.import_module("casemgmt_core.simulation.scenario")
    errors.append(scenario.ScenarioError(["years must be positive"], source="scenario", fields=["years"]))
    return errors


ERRORS = every_error()


def test_the_library_raised_each_kind_of_error() -> None:
    kinds = {type(e) for e in ERRORS}
    assert kinds >= {
        cm.TransitionRefused,
        cm.UnknownCommand,
        cm.AuthorizationDenied,
        cm.CaseNotFound,
        cm.DuplicateCase,
        cm.InvalidData,
        cm.PolicyError,
        cm.StorageError,
        cm.ConcurrencyConflict,
        DeliveryFailed,
    }


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e.code)
def test_an_error_is_a_json_body_with_code_message_labels_and_no_personal_data(
    error: cm.CaseManagementError,
) -> None:
    body = error.to_dict()
    assert body["code"] == error.code
    assert body["message"] == str(error)
    assert set(body["labels"]) == set(LANGUAGES)
    assert body["labels"] == {lang: labels()["error"][error.code][lang] for lang in LANGUAGES}
    assert plain(body)
    assert jsonable_encoder(body) == body
    VALIDATORS["error"].validate(body)
    assert "value" not in body
    text = json.dumps(body, ensure_ascii=False)
    assert hides_personal_data(text), text
    assert hides_personal_data(str(error)), str(error)
    assert cj.to_dict(error) == body


def test_an_error_body_has_the_structured_attributes() -> None:
    refused_ = next(e for e in ERRORS if isinstance(e, cm.TransitionRefused))
    body = refused_.to_dict()
    for name in ("case_id", "state", "event", "guard", "reason"):
        assert body[name] == getattr(refused_, name)
    assert body["reason_labels"]["en"] == cm.label("reason", refused_.reason, "en")
    unknown = next(e for e in ERRORS if isinstance(e, cm.UnknownCommand)).to_dict()
    assert unknown["allowed"] == sorted(unknown["allowed"])
    assert unknown["event"] == "close"
    denied = next(e for e in ERRORS if isinstance(e, cm.AuthorizationDenied)).to_dict()
    assert (denied["actor_id"], denied["role"]) == ("v", "volunteer")
    assert isinstance(denied["allowed_roles"], list)
    duplicate = next(e for e in ERRORS if isinstance(e, cm.DuplicateCase)).to_dict()
    assert duplicate["household_id"] == "HH-1"
    policy = next(e for e in ERRORS if type(e) is cm.PolicyError).to_dict()
    assert policy["field"] == "policy.time_limits.case_max_days"
    assert policy["fields"] == [policy["field"]]
    invalid = next(e for e in ERRORS if type(e) is cm.InvalidData).to_dict()
    assert set(invalid) == {"code", "message", "field", "allowed", "labels"}
    conflict = cm.ConcurrencyConflict(case_id="C1", expected_version=3, actual_version=None).to_dict()
    assert (conflict["expected_version"], conflict["actual_version"]) == (3, None)


def test_an_error_of_a_subclass_without_labels_has_its_base_class_labels() -> None:
    class Custom(cm.InvalidData):
        code = "custom_invalid"

    body = Custom("bad", field="x").to_dict()
    assert body["code"] == "custom_invalid"
    assert body["labels"] == cm.InvalidData("x").to_dict()["labels"]


def test_every_error_code_of_the_library_has_both_labels_and_nothing_else() -> None:
    import casemgmt_core

    for module in pkgutil.walk_packages(casemgmt_core.__path__, "casemgmt_core."):
        if any(part in module.name for part in (".testing", ".migrations", ".plots")):
            continue  # test helpers, scripts run by a tool, plotting: no errors of their own
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional dependency not installed: its errors are not checked
            continue
    codes = {
        k.code
        for k in (cm.CaseManagementError, *_subclasses(cm.CaseManagementError))
        if k.__module__.startswith("casemgmt_core.")
    }
    assert set(labels()["error"]) == codes
    for code in codes:
        for language in LANGUAGES:
            assert cm.label("error", code, language).strip()
    assert set(cj.schemas()["CaseManagementError"]["properties"]["code"]["enum"]) == codes


def test_the_error_schema_refuses_what_a_body_never_holds() -> None:
    body = ERRORS[0].to_dict()
    check = VALIDATORS["error"]
    assert check.is_valid(body)
    assert not check.is_valid(body | {"value": "x"})
    assert not check.is_valid({k: x for k, x in body.items() if k != "case_id"})
    assert not check.is_valid(body | {"code": "nope"})
