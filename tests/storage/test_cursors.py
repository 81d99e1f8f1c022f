"""The page cursors and deadline checks shared by the bundled stores."""

from __future__ import annotations

import datetime as dt

import pytest

from casemgmt_core.adapters import (
    cursor_time,
    decode_cursor,
    encode_cursor,
    prepare_commit,
    prepare_deadlines,
)
from casemgmt_core.commands import StartIntake
from casemgmt_core.errors import InvalidData
from casemgmt_core.ports import MAX_CURSOR
from casemgmt_core.schedule import LISTED_ALWAYS, DueKind
from casemgmt_core.testing import T0, deadline, follow, open_commit
from casemgmt_core.testing.contract import HOSTILE_CURSORS

KST = dt.timezone(dt.timedelta(hours=9))


@pytest.mark.parametrize(
    "parts", [("C1",), (T0.isoformat(), "C1"), (T0.isoformat(), "Cé", "plan", ""), ("한",)]
)
def test_a_cursor_reads_back_as_its_parts(parts: tuple[str, ...]) -> None:
    token = encode_cursor(*parts)
    assert token.isascii()
    assert len(token) <= MAX_CURSOR
    assert decode_cursor(token, len(parts), "q.after") == parts


@pytest.mark.parametrize(("what", "token"), HOSTILE_CURSORS, ids=[h[0] for h in HOSTILE_CURSORS])
@pytest.mark.parametrize("parts", [1, 2, 4])
def test_what_is_not_a_cursor_is_invalid_data(what: str, token: str, parts: int) -> None:
    with pytest.raises(InvalidData) as caught:
        decode_cursor(token, parts, "q.after")
    assert (caught.value.field, caught.value.allowed) == ("q.after", "the next_after of the page before")


def test_a_cursor_with_another_number_of_parts_is_invalid_data() -> None:
    with pytest.raises(InvalidData, match="not a page cursor"):
        decode_cursor(encode_cursor("C1"), 2, "q.after")


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-01-05T09:00:00",
        "2026-01-05T18:00:00+09:00",
        "2026-01-05T09:00:00Z",
        "2026-01-05",
        "",
    ],
)
def test_a_cursor_time_is_the_isoformat_of_a_utc_time(text: str) -> None:
    assert cursor_time(T0.isoformat(), "f") == T0
    assert cursor_time("2026-01-05T09:00:00.000001+00:00", "f") == T0 + dt.timedelta(microseconds=1)
    with pytest.raises(InvalidData) as caught:
        cursor_time(text, "f")
    assert caught.value.field == "f"


def test_deadlines_are_kept_in_utc_in_due_order_once_per_kind_and_subject() -> None:
    kept = prepare_deadlines(
        [
            deadline("C1", (T0 + dt.timedelta(days=3)).astimezone(KST)),
            deadline("C1", T0, DueKind.MANDATORY_REPORT, "child_abuse", listed_from=LISTED_ALWAYS),
            deadline(
                "C1",
                T0 + dt.timedelta(hours=1),
                DueKind.MANDATORY_REPORT,
                "child_abuse",
                listed_from=LISTED_ALWAYS,
            ),
            deadline("C1", T0, DueKind.SERVICE_ITEM_LIMIT, "S1"),
        ],
        "C1",
        "deadlines",
    )
    assert [(d.kind, d.due_at) for d in kept] == [
        (DueKind.MANDATORY_REPORT, T0),
        (DueKind.SERVICE_ITEM_LIMIT, T0),
        (DueKind.PLAN, T0 + dt.timedelta(days=3)),
    ]
    assert all(d.due_at.tzinfo is dt.UTC and d.listed_from.tzinfo is dt.UTC for d in kept)
    assert prepare_deadlines((), "C1", "deadlines") == ()


def test_a_prepared_commit_carries_the_cases_deadlines() -> None:
    commit = follow(open_commit("C1").case, StartIntake())
    assert commit.deadlines
    assert commit.next_deadline == min(d.due_at for d in commit.deadlines)
    prepared = prepare_commit(commit)
    assert prepared.deadlines == prepare_deadlines(commit.deadlines, "C1", "d")
    assert prepare_commit(open_commit("C2", deadlines=())).deadlines == ()
