"""`stablegate run` (run_embedded) runs the rate fetcher beside the API and the workers."""

from __future__ import annotations

import asyncio
import socket
from decimal import Decimal
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import select

from stablegate.config import Settings
from stablegate.db.engine import make_engine, make_sessionmaker, session_scope
from stablegate.embedded import run_embedded
from stablegate.models import RateQuote
from stablegate.rates.quote import Quote

BOUND = 60  # seconds: only a gateway that never fetches would take this long


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StopsAfterOneAnswer:
    """A rate source that answers once and then stops the process."""

    name = "kraken"

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    async def fetch(self, client: httpx.AsyncClient) -> list[Quote]:
        self.stop.set()
        return [Quote("kraken", "USDT", "USD", Decimal("1.0001"), None, None, 1_767_225_600_000)]


async def test_run_embedded_fetches_rates_with_the_sources_it_is_given(
    tmp_path: Path, chains_file: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        _env_file=None,  # type: ignore[call-arg]
    )
    stop = asyncio.Event()
    run = run_embedded(
        settings, "127.0.0.1", free_port(), stop, rate_sources=[StopsAfterOneAnswer(stop)]
    )
    await asyncio.wait_for(run, BOUND)
    engine = make_engine(settings.effective_database_url)
    try:
        async with session_scope(make_sessionmaker(engine)) as session:
            rows = (await session.scalars(select(RateQuote))).all()
            assert [(row.source, row.base, row.quote, row.mid) for row in rows] == [
                ("kraken", "USDT", "USD", "1.0001")
            ]
    finally:
        await engine.dispose()
