"""Limits on the dashboard's public forms, on the API's rate-limit counters (in the process, or
in Redis shared by every API process):

- failed log-ins per account: 5 at once, then one more every 3 minutes;
- failed log-ins per client IP (IPv6 per /64): 20 at once, then one more every 45 seconds;
- sign-ups per client IP: 5 at once, then one more every 12 minutes;
- wrong second-factor codes (and wrong passwords on the Security page) per account: 5 at once,
  then one more every 3 minutes; per client IP: 20, then one every 45 seconds;
- password reset mails per client IP: 5 at once, then one more every 12 minutes; per address
  (whether or not it has an account): 3, then one more every 20 minutes.

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
CODE_ACCOUNT_FAILURES = 5
CODE_IP_FAILURES = 20
RESETS_PER_IP = 5
RESETS_PER_ADDRESS = 3
RESET_PERIOD_MS = 60 * 60_000


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

    def _code_buckets(self, account: str, ip: str) -> tuple[str, str]:
        return f"dash2fa:acct:{account}", f"dash2fa:ip:{ban_subject(ip)}"

    async def check_code(self, account: str, ip: str) -> None:
        """429 when this account (its id) or this address has no wrong codes left; checked
        before the code is, like a log-in."""
        for bucket, limit in zip(
            self._code_buckets(account, ip), (CODE_ACCOUNT_FAILURES, CODE_IP_FAILURES), strict=True
        ):
            decision = await self._backend.take(bucket, limit, PERIOD_MS, consume=False)
            if not decision.allowed:
                _refuse(decision, "wrong codes")

    async def note_failed_code(self, account: str, ip: str) -> None:
        account_bucket, address = self._code_buckets(account, ip)
        await self._backend.take(account_bucket, CODE_ACCOUNT_FAILURES, PERIOD_MS)
        await self._backend.take(address, CODE_IP_FAILURES, PERIOD_MS)

    async def check_reset_request(self, email: str, ip: str) -> None:
        """Spends one reset mail of this address and of this client IP (429 when either is
        out), the same for an address without an account."""
        address = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        for bucket, limit in (
            (f"dashreset:ip:{ban_subject(ip)}", RESETS_PER_IP),
            (f"dashreset:addr:{address}", RESETS_PER_ADDRESS),
        ):
            decision = await self._backend.take(bucket, limit, RESET_PERIOD_MS)
            if not decision.allowed:
                _refuse(decision, "password reset requests")
