"""The webhook event's state table (webhooks/state.py), row by row."""

from __future__ import annotations

import pytest

from stablegate.models.webhook_event import EventStatus
from stablegate.webhooks.state import (
    RESENDABLE_IN_BULK,
    TRANSITIONS,
    EventTransitionNotAllowed,
    EventTrigger,
    common_target,
    transition,
)

S, T = EventStatus, EventTrigger

TABLE = [
    (S.PENDING, T.NO_ENDPOINT, S.NO_ENDPOINT),
    (S.PENDING, T.DELIVERED, S.DELIVERED),
    (S.PENDING, T.ATTEMPT_FAILED, S.PENDING),
    (S.PENDING, T.GAVE_UP, S.FAILED),
] + [(status, T.RESEND, S.PENDING) for status in S]


@pytest.mark.parametrize(("source", "trigger", "target"), TABLE)
def test_every_row(source: EventStatus, trigger: EventTrigger, target: EventStatus) -> None:
    assert transition(source, trigger) == target


def test_the_table_has_nothing_else() -> None:
    assert sorted((t.source, t.trigger, t.target) for t in TRANSITIONS) == sorted(TABLE)


@pytest.mark.parametrize("status", [S.DELIVERED, S.FAILED, S.NO_ENDPOINT])
def test_only_a_resend_moves_a_settled_event(status: EventStatus) -> None:
    for trigger in T:
        if trigger != T.RESEND:
            with pytest.raises(EventTransitionNotAllowed):
                transition(status, trigger)


def test_a_bulk_resend_sets_one_status() -> None:
    assert common_target(RESENDABLE_IN_BULK, T.RESEND) == S.PENDING
    with pytest.raises(EventTransitionNotAllowed):
        common_target([S.PENDING, S.DELIVERED], T.DELIVERED)
