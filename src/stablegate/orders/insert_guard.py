"""What a signed order written outside a session transaction must hold, and what its writer
answers (:mod:`stablegate.orders.signed_insert` on PostgreSQL,
:mod:`stablegate.orders.signed_insert_sqlite` on SQLite)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stablegate.auth.replay import ReplayClaim
from stablegate.errors import GatewayError


class StaleCredentials(Exception):
    """Nothing was written: the key's credentials changed since this process cached them (the
    caller checks the request again with credentials read from the database)."""


class ConfirmedRefusal(Exception):
    """A refusal decided with the credentials confirmed current (a replay, a repeated
    ``orderNo`` with other fields): ``error`` is the answer, no second check needed."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class InsertGuard:
    """What must hold for a signed order to be written: the credential epoch its key was cached
    under, and the request's replay claim when the database keeps them."""

    epoch: int
    claim: ReplayClaim | None


@dataclass(frozen=True)
class InsertOutcome:
    epoch: int | None  # the current credential epoch (None: no epoch row)
    claimed: bool  # the replay claim was taken (True when there was none to take)
    order_id: str | None  # None: nothing inserted (see the other two for why)

    def epoch_matches(self, guard: InsertGuard) -> bool:
        return self.epoch == guard.epoch


class SignedOrders(Protocol):
    """Writes a signed order and its first events atomically, and only if the guard holds: the
    epoch is current, then the claim is taken, then the order is new (a repeated ``orderNo``
    keeps the claim and writes nothing else)."""

    async def insert(
        self,
        guard: InsertGuard,
        order_values: Mapping[str, Any],
        event_rows: Sequence[Mapping[str, Any]],
    ) -> InsertOutcome: ...

    async def close(self) -> None: ...


def event_columns(event_rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The columns every first event sets (one statement inserts them all)."""
    names = tuple(event_rows[0]) if event_rows else ()
    if any(tuple(row) != names for row in event_rows):
        raise ValueError("every first event must set the same columns")
    return names
