"""Encryption of stored secrets (API and webhook secrets) with STABLEGATE_SECRET_KEY.

The key is a Fernet key. The embedded default generates one in the data dir; with any other
database it must come from the environment, since a key next to the data protects nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from stablegate.config import Settings


class SecretKeyMissing(RuntimeError):
    pass


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (signing dashboard links, CSRF tokens), derived from
        the secret key so there is no second secret to keep; purposes never share a key."""
        return hmac.new(self._key, b"stablegate:" + purpose.encode(), hashlib.sha256).digest()

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretKeyMissing(
                "a stored secret cannot be decrypted: STABLEGATE_SECRET_KEY changed?"
            ) from exc


def load_secret_box(settings: Settings) -> SecretBox:
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value().encode())
    if not settings.is_embedded:
        raise SecretKeyMissing(
            "STABLEGATE_SECRET_KEY must be set when the database is not the embedded SQLite file "
            "(generate one with: stablegate secret-key)"
        )
    return SecretBox(_data_dir_key(settings.data_dir / "secret.key"))


def _data_dir_key(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def new_token(prefix: str, nbytes: int = 24) -> str:
    return prefix + secrets.token_urlsafe(nbytes)
