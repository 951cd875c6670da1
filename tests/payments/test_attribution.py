"""Which order a transfer belongs to. The pooled (``unique_amount``) matches against reserved
amounts and the sweep exclusion are exercised on chain in tests/watcher/test_watcher_unique_amount.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession
from tests.conftest import copy_migrated_sqlite, empty_tables

from stablegate.chain.evm.transfers import TransferLog
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.migrations import upgrade
from stablegate.payments.attribution import attribute

DEPOSIT = "0x" + "d1" * 20
POOLED = "0x" + "90" * 20
STRANGER = "0x" + "5e" * 20
TOKEN = "0x" + "70" * 20


class Watched:
    def order_for(self, address: str) -> str | None:
        return "ord_deposit" if address.lower() == DEPOSIT else None

    def is_pooled(self, address: str) -> bool:
        return address.lower() == POOLED


def transfer(sender: str, recipient: str, log_index: int) -> TransferLog:
    return TransferLog(
        token=TOKEN,
        sender=sender,
        recipient=recipient,
        amount=1_000_000,
        tx_hash="0x" + "ab" * 32,
        log_index=log_index,
        block_number=10,
        block_hash="0x" + "cd" * 32,
    )


@pytest_asyncio.fixture
async def session(database_url: str, migrated_sqlite: Path) -> AsyncIterator[AsyncSession]:
    engine = make_engine(database_url)
    if not copy_migrated_sqlite(migrated_sqlite, database_url):
        await upgrade(engine)
    if not database_url.startswith("sqlite"):
        await empty_tables(engine)
    async with session_scope(make_sessionmaker(engine)) as session:
        yield session
    await engine.dispose()


async def test_deposit_transfers_belong_to_the_deposits_order_and_others_to_none(
    session: AsyncSession,
) -> None:
    transfers = [
        transfer(STRANGER, DEPOSIT, 0),  # a payment
        transfer(DEPOSIT, STRANGER, 1),  # out of the deposit (a flush, or worse)
        transfer(STRANGER, POOLED, 2),  # to a pooled address, matching no reserved amount
        transfer(STRANGER, STRANGER, 3),  # not ours at all
    ]
    attributed = await attribute(session, chain_id=1, watched=Watched(), transfers=transfers)
    assert [a.transfer for a in attributed] == transfers  # in order, none left out
    assert [a.order_id for a in attributed] == ["ord_deposit", "ord_deposit", None, None]
