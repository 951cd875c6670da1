"""The environment a test runs the ``stablegate`` command in: the test's own settings (database,
chains file, secret key) as STABLEGATE_* variables, with the database migrated by the command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stablegate.cli import app
from stablegate.config import Settings

runner = CliRunner()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    assert settings.secret_key is not None and settings.chains_file is not None
    env = {
        "STABLEGATE_DATA_DIR": str(settings.data_dir),
        "STABLEGATE_DATABASE_URL": settings.effective_database_url,
        "STABLEGATE_CHAINS_FILE": str(settings.chains_file),
        "STABLEGATE_SECRET_KEY": settings.secret_key.get_secret_value(),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    return settings
