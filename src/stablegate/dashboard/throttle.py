"""Limits on the dashboard's public forms, on the API's rate-limit counters (in the process, or
in Redis shared by every API process):

- failed log-ins per account: 5 at once, then one more every 3 minutes;
- failed log-ins per client IP (IPv6 per /64): 20 at once, then one more every 45 seconds;
- sign-ups per client IP: 5 at once, then one more every 12 minutes.

A log-in is refused (429, with Retry-After) once either failure budget is empty, before the
password is even checked, so guessing goes no faster with a correct password in the list.
Successful log-ins spend nothing.
"""

from __future__ import annotations

import hashlib

from stablegate.auth.client_ip import ban_subject
from stablegate.auth.ratelimit import Decision, RateLimitBackend
from stablegate.errors import RateLimited

PERIOD_MS = 15 * 60_000
ACCOUNT_FAILURES = 5
IP_FAILURES = 20
SIGNUPS = 5
SIGNUP_PERIOD_MS = 60 * 60_000


def _refuse(decision: Decision, what: str) -> None:
    seconds = max(1, -(-decision.retry_after_ms // 1000))
    raise RateLimited(f"too many {what}; try again later", retry_after=seconds)


class FormThrottle:
    def __init__(self, backend: RateLimitBackend) -> None:
        self._backend = backend

    def _buckets(self, email: str, ip: str) -> tuple[str, str]:
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return f"dashlogin:acct:{account}", f"dashlogin:ip:{ban_subject(ip)}"

    async def check_login(self, email: str, ip: str) -> None:
        """429 ``rate_limited`` when this account or this address has no failures left."""
        account, address = self._buckets(email, ip)
        for bucket, limit in ((account, ACCOUNT_FAILURES), (address, IP_FAILURES)):
            decision = await self._backend.take(bucket, limit, PERIOD_MS, consume=False)
            if not decision.allowed:
                _refuse(decision, "failed log-ins")

    async def note_failed_login(self, email: str, ip: str) -> None:
        account, address = self._buckets(email, ip)
        await self._backend.take(account, ACCOUNT_FAILURES, PERIOD_MS)
        await self._backend.take(address, IP_FAILURES, PERIOD_MS)

    async def check_signup(self, ip: str) -> None:
        decision = await self._backend.take(
            f"dashsignup:ip:{ban_subject(ip)}", SIGNUPS, SIGNUP_PERIOD_MS
        )
        if not decision.allowed:
            _refuse(decision, "sign-ups from this address")
