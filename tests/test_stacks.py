"""``kill -USR1`` makes a running ``stablegate`` process write every thread's and every asyncio
task's stack to its log, and it keeps running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet


def _wait_for_text(path: Path, text: str, within: float = 60) -> str:
    deadline = time.monotonic() + within
    while True:
        content = path.read_text(errors="replace")
        if text in content:
            return content
        assert time.monotonic() < deadline, f"{text!r} not in the log:\n{content}"
        time.sleep(0.1)


def test_sigusr1_dumps_threads_and_tasks_and_the_process_goes_on(tmp_path: Path) -> None:
    chains = tmp_path / "chains.toml"
    # Nothing listens on port 9: the watcher keeps retrying its start-up check.
    chains.write_text(
        """[chains.31337]
name = "Local dev chain"
network = "devchain"
confirmations = 2
block_time = 1
testnet = true
rpc_urls = ["http://127.0.0.1:9"]
tokens = [{ symbol = "USDT", address = "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals = 6 }]
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEGATE_")}
    env |= {
        "STABLEGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        "STABLEGATE_CHAINS_FILE": str(chains),
        "STABLEGATE_DATA_DIR": str(tmp_path / "data"),
        "STABLEGATE_SECRET_KEY": Fernet.generate_key().decode(),
        "STABLEGATE_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "watch.log"
    command = [sys.executable, "-m", "stablegate.cli", "watch", "--chain", "31337"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for_text(log_path, "watcher_started")
        process.send_signal(signal.SIGUSR1)
        dump = _wait_for_text(log_path, "asyncio tasks of process")
        dump = _wait_for_text(log_path, "in run_forever")
        assert "Current thread" in dump and "in watch" in dump  # faulthandler: the threads
        assert f"asyncio tasks of process {process.pid}" in dump
        assert process.poll() is None  # still running
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
