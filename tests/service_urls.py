"""Where the tests find PostgreSQL and Redis, and what to do when they are not there.

Kept out of ``tests/conftest.py`` on purpose: pytest loads that file as the module ``conftest``,
and a test that imports a helper from it (``from tests.conftest import ...``) executes it a second
time as ``tests.conftest``. Code with a side effect, such as moving ``STABLEGATE_TEST_REDIS_URL``
to the worker's database, must run once per process, so it lives in this ordinary module that
every importer shares.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "STABLEGATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def worker_redis_url(url: str, worker: str | None) -> str:
    """Under pytest-xdist each worker (gw0, gw1, …) uses its own Redis database, the one after
    the configured one plus its number, so workers never count each other's requests."""
    if worker is None:
        return url
    parts = urlsplit(url)
    database = int(parts.path.strip("/") or 0) + 1 + int(worker.removeprefix("gw"))
    return parts._replace(path=f"/{database % 16}").geturl()


# Set in the environment, so conftests and tests that read the variable get the worker's database.
REDIS_URL = os.environ["STABLEGATE_TEST_REDIS_URL"] = worker_redis_url(
    os.environ.get("STABLEGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    os.environ.get("PYTEST_XDIST_WORKER"),
)
SERVICES_REQUIRED = (
    os.environ.get("CI") == "true" or os.environ.get("STABLEGATE_REQUIRE_SERVICES") == "1"
)


def unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why})"
    if SERVICES_REQUIRED:
        pytest.fail(message + "; CI requires it")
    pytest.skip(message + "; set STABLEGATE_REQUIRE_SERVICES=1 to make this a failure")
