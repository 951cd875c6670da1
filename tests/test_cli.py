"""The stablegate command as a whole: every group and command is mounted under its name, and
the commands that are the gateway's own (each group's tests sit next to its package)."""

from __future__ import annotations

import typer.main
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from stablegate.cli import app

runner = CliRunner()


def command_names(command: object, prefix: str = "") -> list[str]:
    names = []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        names.append(f"{prefix}{name}")
        names += command_names(sub, f"{prefix}{name} ")
    return names


def test_every_command_keeps_its_name() -> None:
    assert command_names(typer.main.get_command(app)) == [
        "admin",
        "admin create",
        "admin disable",
        "admin enable",
        "admin list",
        "admin reset-second-factor",
        "admin set-password",
        "chain",
        "chain deploy",
        "chain status",
        "dashboard",
        "dashboard invite",
        "dashboard links",
        "deliver",
        "demo",
        "devchain",
        "merchant",
        "merchant add-public-key",
        "merchant approve",
        "merchant create",
        "merchant create-key",
        "merchant disable",
        "merchant enable",
        "merchant list",
        "merchant rotate-webhook-secret",
        "merchant set-key-policy",
        "merchant set-payout",
        "merchant set-policy",
        "migrate",
        "orders",
        "orders list",
        "orders mark-completed",
        "orders show",
        "rates",
        "rates fetch",
        "rates set-fixed",
        "rates set-rule",
        "rates show",
        "rates unset-fixed",
        "rates unset-rule",
        "run",
        "secret-key",
        "serve",
        "sweep",
        "watch",
        "webhooks",
        "webhooks deliveries",
        "webhooks list",
        "webhooks resend",
    ]


def test_secret_key_prints_a_fernet_key() -> None:
    result = runner.invoke(app, ["secret-key"])
    assert result.exit_code == 0
    Fernet(result.stdout.strip().encode())
