"""The Redis database of an xdist worker is chosen once per process, however often the root
conftest is executed."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pytest
from tests.service_urls import REDIS_URL, worker_redis_url


def test_each_worker_has_a_database_of_its_own() -> None:
    url = "redis://127.0.0.1:6379/0"
    assert worker_redis_url(url, None) == url
    assert worker_redis_url(url, "gw0") == "redis://127.0.0.1:6379/1"
    assert worker_redis_url(url, "gw1") == "redis://127.0.0.1:6379/2"
    assert worker_redis_url("redis://h:1/14", "gw3") == "redis://h:1/2"


def test_executing_the_root_conftest_again_keeps_the_redis_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pytest loads tests/conftest.py as ``conftest``; a test that imports a helper from
    # ``tests.conftest`` executes it again. That must not move the tests that read the variable
    # later to another database (under xdist: another worker's), as it once did.
    assert os.environ["STABLEGATE_TEST_REDIS_URL"] == REDIS_URL
    monkeypatch.setenv("STABLEGATE_TEST_REDIS_URL", REDIS_URL)  # restored whatever happens
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")  # as in a worker, even when run alone
    runpy.run_path(str(Path(__file__).with_name("conftest.py")), run_name="conftest_again")
    assert os.environ["STABLEGATE_TEST_REDIS_URL"] == REDIS_URL
