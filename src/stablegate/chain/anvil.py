"""Launch and stop a local anvil node (the dev chain and the chain tests).

Each node runs with its own temporary HOME (anvil writes caches under ``~/.foundry``), on a port
the OS picks unless one is given, and is stopped by pid; the temporary HOME goes with it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ANVIL_CHAIN_ID = 31337

# The accounts anvil funds by default (mnemonic "test test test test test test test test test test
# test junk"); public knowledge, for the dev chain only.
ANVIL_DEFAULT_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)

_LISTENING = re.compile(r"Listening on ([\w.\-]+):(\d+)")


class AnvilError(RuntimeError):
    """anvil is missing, exited, or did not answer in time."""


def find_anvil() -> str:
    """``node_modules/.bin/anvil`` above the working directory or this file, else PATH."""
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for directory in (start, *start.parents):
            candidate = directory / "node_modules" / ".bin" / "anvil"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which("anvil")
    if found is None:
        raise AnvilError("anvil not found: run `npm ci` in the repository or put anvil on PATH")
    return found


class AnvilNode:
    """One anvil process. ``with AnvilNode() as node:`` or ``async with``, or start()/stop()."""

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        chain_id: int = ANVIL_CHAIN_ID,
        block_time: float | None = None,
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        start_timeout: float = 20.0,
    ) -> None:
        self.requested_port = port  # None or 0: the OS picks one
        self.port: int | None = None
        self.host = host
        self.chain_id = chain_id
        self.block_time = block_time
        self.binary = binary
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._home: str | None = None

    @property
    def url(self) -> str:
        if self.port is None or self._process is None:
            raise AnvilError("anvil is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return None if self._home is None else Path(self._home) / "anvil.log"

    def start(self) -> None:
        """Starts anvil and blocks until it answers ``eth_chainId``."""
        if self._process is not None:
            raise AnvilError("anvil is already running")
        binary = self.binary or find_anvil()
        self._home = tempfile.mkdtemp(prefix="stablegate-anvil-")
        self.port = self.requested_port or None
        args = [binary, "--host", self.host, "--port", str(self.requested_port or 0)]
        args += ["--chain-id", str(self.chain_id)]
        if self.block_time is not None:
            args += ["--block-time", f"{self.block_time:g}"]
        args += self.extra_args
        env = {**os.environ, "HOME": self._home}
        log_path = Path(self._home) / "anvil.log"
        with log_path.open("wb") as log:
            # A file, not a pipe: anvil logs every request and nobody drains a pipe.
            self._process = subprocess.Popen(  # noqa: S603 (args built above, no shell)
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        try:
            self._wait_ready(log_path)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, log_path: Path) -> None:
        deadline = time.monotonic() + self.start_timeout
        assert self._process is not None
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise AnvilError(f"anvil exited with {self._process.returncode}: {tail}")
                if self.port is None:
                    match = _LISTENING.search(log_path.read_text(errors="replace"))
                    if match is None:
                        time.sleep(0.02)
                        continue
                    self.port = int(match.group(2))
                if self._answers(http):
                    return
                time.sleep(0.02)
        raise AnvilError(f"anvil did not answer within {self.start_timeout}s")

    def _answers(self, http: httpx.Client) -> bool:
        request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        try:
            result = http.post(self.url, json=request).json().get("result")
        except (httpx.HTTPError, ValueError):
            return False
        return result is not None and int(result, 16) == self.chain_id

    def stop(self) -> None:
        """Stops anvil (SIGTERM, then SIGKILL) and removes its temporary HOME."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def __enter__(self) -> AnvilNode:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> AnvilNode:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)
