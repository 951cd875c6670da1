"""``stablegate-client keygen`` and the flush command's argument handling (flush itself runs on
anvil in test_client_flush.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from stablegate_client._signing import load_p256_private_key, load_p256_public_key
from stablegate_client.cli import main


def test_keygen_writes_a_private_key_only_the_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    argv = ["keygen", "--private-key-out", str(private), "--public-key-out", str(public)]
    assert main(argv) == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_p256_private_key(private.read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert load_p256_public_key(public.read_bytes()).public_numbers() == (
        key.public_key().public_numbers()
    )
    assert "register" in capsys.readouterr().out
    # Made once: an existing key is never overwritten.
    before = private.read_bytes()
    assert main(argv) == 2
    assert private.read_bytes() == before


def test_flush_has_no_private_key_argument(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["flush", "--help"])
    assert raised.value.code == 0
    help_text = capsys.readouterr().out
    assert "--private-key-env" in help_text and "--private-key " not in help_text


def test_flush_refuses_a_malformed_address_before_touching_the_chain(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STABLEGATE_CLIENT_PRIVATE_KEY", "0x" + "11" * 32)
    argv = ["flush", "--rpc", "http://127.0.0.1:1", "--factory", "0x1234"]
    argv += ["--payout", "0x" + "22" * 20, "--salt", "0x" + "33" * 32, "--token", "0x" + "44" * 20]
    assert main(argv) == 2
    assert "not an address" in capsys.readouterr().err
