"""The deposit addresses a chain's watcher looks for, refreshed incrementally from orders."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.models import Order
from stablegate.models.merchant import DepositStrategy

DAY_MS = 86_400_000
# Orders committed slightly out of create-time order (slow transactions, several API
# processes) are still picked up: each refresh re-reads this far behind its high-water mark.
REFRESH_OVERLAP_MS = 5 * 60_000


class WatchedAddresses:
    """address (lowercase) -> order id for orders created in the last ``watch_days``."""

    def __init__(self, chain_id: int, watch_days: int = 90) -> None:
        self.chain_id = chain_id
        self.window_ms = watch_days * DAY_MS
        self._by_address: dict[str, tuple[str, int]] = {}
        # Payout addresses of `unique_amount` merchants: many orders share one address and a
        # transfer is matched to its order by the exact amount.
        self._pooled: dict[str, int] = {}
        self._high_water_ms: int | None = None
        # The same for orders moved onto this chain after their creation (repoint_time_ms):
        # however old, they are looked for from their move on.
        self._moved_high_water_ms: int | None = None
        # Derived views, rebuilt only when the set changes (100k addresses: tens of ms each).
        self._sorted: list[str] | None = None
        self._lookup: frozenset[str] | None = None
        self._deposits: list[str] | None = None
        self._oldest_created: int | None = None

    def __len__(self) -> int:
        return len(self._by_address)

    def order_for(self, address: str) -> str | None:
        entry = self._by_address.get(address.lower())
        return entry[0] if entry else None

    def is_pooled(self, address: str) -> bool:
        return address.lower() in self._pooled

    def addresses(self) -> list[str]:
        """All watched addresses, lowercase and sorted (cached until the set changes)."""
        if self._sorted is None:
            self._sorted = sorted({*self._by_address, *self._pooled})
        return self._sorted

    def deposits(self) -> list[str]:
        """The deposit contracts alone (not pooled payout addresses), lowercase and sorted:
        transfers out of them are flushes."""
        if self._deposits is None:
            self._deposits = sorted(self._by_address)
        return self._deposits

    def lookup(self) -> frozenset[str]:
        """The same addresses as a set, for matching logs locally."""
        if self._lookup is None:
            self._lookup = frozenset(self.addresses())
        return self._lookup

    def _changed(self) -> None:
        self._sorted = None
        self._lookup = None
        self._deposits = None

    async def refresh(self, session: AsyncSession, now_ms: int) -> None:
        oldest = now_ms - self.window_ms
        since = (
            oldest
            if self._high_water_ms is None
            else max(oldest, self._high_water_ms - REFRESH_OVERLAP_MS)
        )
        rows = await session.execute(
            select(Order.id, Order.to_address, Order.create_time_ms, Order.deposit_strategy).where(
                Order.chain_id == self.chain_id, Order.create_time_ms >= since
            )
        )
        for order_id, address, created, strategy in rows.all():
            self._add(order_id, address, created, strategy)
            if self._high_water_ms is None or created > self._high_water_ms:
                self._high_water_ms = created
        if self._high_water_ms is None:
            self._high_water_ms = since
        # After the created ones: an order moved within this chain (another token) keeps the
        # address, watched from its move on.
        for order_id, address, moved_at, strategy in await self._moved_since(session, oldest):
            self._add(order_id, address, moved_at, strategy)
        # Expire old entries only when the oldest one has actually left the window.
        if self._oldest_created is not None and self._oldest_created < oldest:
            self._by_address = {
                a: entry for a, entry in self._by_address.items() if entry[1] >= oldest
            }
            self._pooled = {a: created for a, created in self._pooled.items() if created >= oldest}
            remaining = [entry[1] for entry in self._by_address.values()]
            remaining += list(self._pooled.values())
            self._oldest_created = min(remaining, default=None)
            self._changed()

    def _add(self, order_id: str, address: str, since_ms: int, strategy: DepositStrategy) -> None:
        key = address.lower()
        if strategy == DepositStrategy.UNIQUE_AMOUNT:
            if key not in self._pooled:
                self._changed()
            self._pooled[key] = max(since_ms, self._pooled.get(key, 0))
        else:
            if key not in self._by_address:
                self._changed()
            self._by_address[key] = (order_id, since_ms)
        if self._oldest_created is None or since_ms < self._oldest_created:
            self._oldest_created = since_ms

    async def _moved_since(
        self, session: AsyncSession, oldest: int
    ) -> list[tuple[str, str, int, DepositStrategy]]:
        """Orders moved onto this chain since the last refresh (with the same overlap), each
        with its move's time standing for its creation: it is watched from then on."""
        since = (
            oldest
            if self._moved_high_water_ms is None
            else max(oldest, self._moved_high_water_ms - REFRESH_OVERLAP_MS)
        )
        rows = (
            await session.execute(
                select(
                    Order.id, Order.to_address, Order.repoint_time_ms, Order.deposit_strategy
                ).where(
                    Order.chain_id == self.chain_id,
                    Order.repoint_time_ms.is_not(None),
                    Order.repoint_time_ms >= since,
                )
            )
        ).all()
        moved = [(o, a, at, k) for o, a, at, k in rows if at is not None]
        self._moved_high_water_ms = max(
            [self._moved_high_water_ms or since, *(row[2] for row in moved)]
        )
        return moved

    async def oldest_open_create_time(self, session: AsyncSession, now_ms: int) -> int | None:
        return await session.scalar(
            select(Order.create_time_ms)
            .where(
                Order.chain_id == self.chain_id,
                Order.create_time_ms >= now_ms - self.window_ms,
            )
            .order_by(Order.create_time_ms)
            .limit(1)
        )
