"""A live gateway for the compatibility pages' browser tests: SQLite, the dev chain's USDT, and
a merchant whose owner can log in and which has a payout address on chain 31337."""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet
from tests.chain_files import write_chains_file
from tests.dashboard.dashboard_support import PASSWORD
from tests.support import PAYOUT, TEST_USDT

from stablegate.clock import SystemClock
from stablegate.config import Settings
from stablegate.dashboard.accounts import add_owner
from stablegate.dashboard.passwords import hash_password
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.merchants.service import add_merchant
from stablegate.migrations import upgrade
from stablegate.models import PayoutAddress
from stablegate.secret_box import load_secret_box

OWNER = "owner@cards.example"


async def seeded_settings(folder: Path) -> Settings:
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite+aiosqlite:///{folder / 'gateway.db'}",
        chains_file=write_chains_file(
            folder / "chains.toml", name="Dev chain", tokens=[("USDT", TEST_USDT, 6)]
        ),
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        signup_policy="approval",
        _env_file=None,  # type: ignore[call-arg]
    )
    engine = make_engine(settings.effective_database_url)
    await upgrade(engine)
    clock = SystemClock()
    async with session_scope(make_sessionmaker(engine)) as session:
        merchant_id, _ = await add_merchant(
            session, load_secret_box(settings), clock, name="Card Shop"
        )
        password_hash = await hash_password(PASSWORD)
        await add_owner(session, clock, merchant_id, OWNER, password_hash, verified=True)
        session.add(
            PayoutAddress(
                merchant_id=merchant_id,
                chain_id=31337,
                address=PAYOUT,
                updated_at_ms=clock.now_ms(),
            )
        )
    await engine.dispose()
    return settings
