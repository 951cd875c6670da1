"""The dashboard tests run the app (SQLite and PostgreSQL) under the ``open`` sign-up policy with
a real SMTP sink, unless a module overrides ``signup_policy``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tests.dashboard.dashboard_support import MailSink

from stablegate.config import Settings


@pytest.fixture
def mail() -> Iterator[MailSink]:
    sink = MailSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def signup_policy() -> str:
    return "open"


@pytest.fixture
def settings(
    tmp_path: Path, database_url: str, chains_file: Path, mail: MailSink, signup_policy: str
) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        chains_file=chains_file,
        secret_key=Fernet.generate_key().decode(),
        public_url="https://pay.example.com",
        signup_policy=signup_policy,
        smtp_url=mail.url,
        _env_file=None,  # type: ignore[call-arg]
    )
