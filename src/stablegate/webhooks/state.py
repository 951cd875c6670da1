"""The webhook event's states as one table, in the style of orders/state.py.

The worker and the resend service ask :func:`transition` for an event's next status; tests
enumerate :data:`TRANSITIONS`. An attempt that fails while retries remain keeps the event
pending (its schedule lives in ``next_attempt_at_ms``, see webhooks/schedule.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from stablegate.models.webhook_event import EventStatus


class EventTrigger(StrEnum):
    NO_ENDPOINT = "no_endpoint"  # neither the order nor the merchant has a notifyUrl
    DELIVERED = "delivered"  # a 2xx came back
    ATTEMPT_FAILED = "attempt_failed"  # no 2xx, and the schedule has another attempt
    GAVE_UP = "gave_up"  # no 2xx, and the schedule has none left (72 h)
    RESEND = "resend"  # by the merchant (API) or the operator (CLI)


@dataclass(frozen=True)
class EventTransition:
    source: EventStatus
    trigger: EventTrigger
    target: EventStatus


TRANSITIONS: tuple[EventTransition, ...] = (
    EventTransition(EventStatus.PENDING, EventTrigger.NO_ENDPOINT, EventStatus.NO_ENDPOINT),
    EventTransition(EventStatus.PENDING, EventTrigger.DELIVERED, EventStatus.DELIVERED),
    EventTransition(EventStatus.PENDING, EventTrigger.ATTEMPT_FAILED, EventStatus.PENDING),
    EventTransition(EventStatus.PENDING, EventTrigger.GAVE_UP, EventStatus.FAILED),
    # A pending event is only made due now; any other starts a fresh round of attempts.
    *(EventTransition(status, EventTrigger.RESEND, EventStatus.PENDING) for status in EventStatus),
)

_INDEX: dict[tuple[EventStatus, EventTrigger], EventTransition] = {
    (t.source, t.trigger): t for t in TRANSITIONS
}

# Statuses a bulk resend ({"failed": true}) picks up: not delivered and no longer retrying.
RESENDABLE_IN_BULK: tuple[EventStatus, ...] = (EventStatus.FAILED, EventStatus.NO_ENDPOINT)


class EventTransitionNotAllowed(Exception):
    def __init__(self, source: EventStatus, trigger: EventTrigger) -> None:
        super().__init__(f"no webhook event transition from {source} on {trigger}")
        self.source = source
        self.trigger = trigger


def transition(source: EventStatus, trigger: EventTrigger) -> EventStatus:
    """The status an event in ``source`` moves to on ``trigger``."""
    try:
        return _INDEX[(source, trigger)].target
    except KeyError:
        raise EventTransitionNotAllowed(source, trigger) from None


def common_target(sources: Iterable[EventStatus], trigger: EventTrigger) -> EventStatus:
    """The one status every one of ``sources`` moves to on ``trigger`` (for a bulk UPDATE)."""
    targets = {transition(source, trigger) for source in sources}
    if len(targets) != 1:
        raise ValueError(f"{trigger} leads {sorted(targets)} from {sorted(sources)}")
    return targets.pop()
