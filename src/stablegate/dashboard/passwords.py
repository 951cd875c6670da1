"""Dashboard passwords: Argon2id hashes (argon2-cffi's RFC 9106 low-memory profile), a length
rule, and verification that takes as long for an unknown account as for a wrong password."""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from stablegate.dashboard.errors import AccountError

MIN_LENGTH = 12
# Bounds the work one log-in attempt can ask of the server.
MAX_LENGTH = 256

_hasher = PasswordHasher()  # Argon2id; the parameters are stored in each hash


def checked_password(value: str) -> str:
    if len(value) < MIN_LENGTH:
        raise AccountError(
            f"the password must be at least {MIN_LENGTH} characters", code="password_too_short"
        )
    if len(value) > MAX_LENGTH:
        raise AccountError(
            f"the password must be at most {MAX_LENGTH} characters", code="password_too_long"
        )
    return value


async def hash_password(password: str) -> str:
    # Tens of milliseconds of CPU and 64 MiB: off the event loop.
    return await asyncio.to_thread(_hasher.hash, password)


@functools.cache
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, password: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _decoy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the stored hash; with no stored hash (unknown account) a
    decoy hash is checked, so both answers cost the same."""
    return await asyncio.to_thread(_verify, stored, password)
