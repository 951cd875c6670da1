"""`make demo` end to end: a fresh dev chain, an order paid, completed and swept."""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from argon2 import PasswordHasher

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_demo_completes_and_sweeps_an_order(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "STABLEGATE_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    result = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_ARGS=--exit-when-done --port {port}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "order is completed (paid 25.5" in output
    assert "webhook order.completed (order completed), signature valid" in output
    rows = {
        m.group(1): (m.group(2), m.group(3))
        for m in re.finditer(r"│ (customer|deposit|payout)\s+│ ([\d.]+)\s+│ ([\d.]+)\s+│", output)
    }
    assert rows["payout"] == ("0", "25.5"), output  # swept to the merchant
    assert rows["deposit"] == ("0", "0"), output
    assert rows["customer"] == ("1000000", "999974.5"), output

    # The printed dashboard log-in is the demo merchant's verified owner, with that password.
    login = re.search(
        rf"dashboard: http://127\.0\.0\.1:{port}/dashboard/login \(email (\S+), password (\S+)\)",
        output,
    )
    assert login is not None, output
    with sqlite3.connect(tmp_path / "demo" / "demo.db") as db:
        found = db.execute(
            "SELECT u.password_hash, u.email_verified_at_ms, m.name, m.status "
            "FROM dashboard_users u JOIN merchants m ON m.id = u.merchant_id WHERE u.email = ?",
            (login.group(1),),
        ).fetchone()
    assert found is not None
    password_hash, verified_at, name, status = found
    assert PasswordHasher().verify(password_hash, login.group(2))
    assert verified_at is not None and (name, status) == ("Demo Shop", "active")
