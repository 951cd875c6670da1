"""Decrypted webhook secrets, kept briefly in the worker's memory.

Opening a stored secret is a Fernet decrypt (an HMAC check and AES), about as much CPU as the
rest of a delivery's signing; the worker used to do one per merchant per claim. The cache is
keyed by the **ciphertext** as it is read in the claim, not by merchant: a rotation (``stablegate
merchant rotate-webhook-secret``) stores a new ciphertext, so the very next claim misses and
signs with the new secret, in every worker process, with no message between them. The previous
secret's ciphertext is the same one as before the rotation and is served from the cache during
its 24 h of grace. Entries are dropped ``ttl_s`` after they were opened (a removed or rotated
secret does not linger in memory) and the oldest go first past ``max_entries``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from stablegate.secret_box import SecretBox

DEFAULT_TTL_S = 60.0


class WebhookSecretCache:
    def __init__(
        self,
        box: SecretBox,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_entries: int = 1024,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._box = box
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._timer = timer
        self._opened: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def open(self, token: str) -> str:
        """The plaintext of a stored secret; raises ``SecretKeyMissing`` as the box does (a
        failure is not cached: the key may be fixed while the worker runs)."""
        now = self._timer()
        # Entries are in the order they were opened, so the expired ones are at the front.
        while self._opened and next(iter(self._opened.values()))[0] <= now:
            self._opened.popitem(last=False)
        cached = self._opened.get(token)
        if cached is not None:
            return cached[1]
        plaintext = self._box.open(token)
        self._opened[token] = (now + self._ttl_s, plaintext)
        while len(self._opened) > self._max_entries:
            self._opened.popitem(last=False)
        return plaintext

    def __len__(self) -> int:
        return len(self._opened)
