"""API-key credentials kept in memory, checked against the credential epoch on every request.

Loading a key costs three queries (the key with its merchant, its public keys, the merchant's
terms), a Fernet decrypt of the HMAC secret and parsing PEMs: most of a signed order's
authentication when it was done on every request. Each API process now keeps what it loaded,
tagged with the :class:`~stablegate.models.CredentialEpoch` read in the same transaction. Every
request reads the epoch again in its own transaction, and triggers bump it together with any
change to a key, its public keys, its merchant's status or terms (migration 0014): a key revoked
or a merchant disabled is refused by the next request in every process, as when nothing was
cached. An entry also lives at most :data:`ENTRY_TTL_S`. Unknown keys are never cached, so junk
keys cannot fill the memory; at :data:`MAX_ENTRIES` the cache starts over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.merchants.credentials import KnownKey, load_known_key
from stablegate.merchants.service import hash_api_key
from stablegate.models import CredentialEpoch
from stablegate.models.credential_epoch import EPOCH_ROW_ID
from stablegate.secret_box import SecretBox

ENTRY_TTL_S = 300.0
MAX_ENTRIES = 10_000

_EPOCH = select(CredentialEpoch.epoch).where(CredentialEpoch.id == EPOCH_ROW_ID)


@dataclass(frozen=True)
class _Entry:
    key: KnownKey
    epoch: int
    expires: float  # time.monotonic()


class CredentialCache:
    """One per API process (:class:`~stablegate.web.context.WebContext`)."""

    def __init__(self, box: SecretBox, *, ttl_s: float = ENTRY_TTL_S) -> None:
        self._box = box
        self._ttl_s = ttl_s
        self._entries: dict[str, _Entry] = {}
        self.loads = 0  # keys read from the database, for the tests and the benchmark

    def peek(self, api_key: str) -> tuple[KnownKey, int] | None:
        """The key's cached credentials with the epoch they were loaded under, unchecked: the
        caller must confirm that epoch in the transaction that relies on them (the signed
        order's one statement, :mod:`stablegate.orders.signed_insert`)."""
        entry = self._entries.get(hash_api_key(api_key))
        if entry is None or time.monotonic() >= entry.expires:
            return None
        return entry.key, entry.epoch

    async def lookup(self, session: AsyncSession, api_key: str) -> KnownKey | None:
        """The key's credentials as of ``session``'s transaction, or None for a key that is
        unknown, revoked, of another kind, or whose merchant is not active."""
        epoch = await (await session.connection()).scalar(_EPOCH)
        key_hash = hash_api_key(api_key)
        entry = self._entries.get(key_hash)
        now = time.monotonic()
        if entry is not None and epoch is not None and entry.epoch == epoch and now < entry.expires:
            return entry.key
        self.loads += 1
        known = await load_known_key(session, self._box, key_hash)
        if known is None:
            self._entries.pop(key_hash, None)
            return None
        if epoch is not None:  # no epoch row (never after migration 0014): nothing is kept
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key_hash] = _Entry(known, epoch, now + self._ttl_s)
        return known
