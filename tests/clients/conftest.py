"""Fixtures of the SDK tests (tests/clients/live_gateway.py has the parts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.clients.live_gateway import Gateways, StartGateway


@pytest.fixture
def start_gateway(tmp_path: Path, chains_file: Path) -> Iterator[StartGateway]:
    """``start_gateway(rate_limit_per_minute=…, chains=…, payout=…)`` -> a running Gateway."""
    gateways = Gateways(tmp_path, chains_file)
    try:
        yield gateways.start
    finally:
        gateways.close()
