"""The webhook retry schedule (docs/DESIGN.md §8), as pure functions of the attempt history.

Attempt 1 goes out as soon as the event is due. After a failed attempt the next one comes
10 s, 30 s, 1 min, 5 min, 15 min, 1 h later, then every 3 h, each delay stretched by up to 10 %
jitter (never shortened: a receiver is never retried sooner than documented). No attempt is
made later than 72 h after the first one; when the next attempt would fall after that, the
event is ``failed`` (kept, and can be resent).

Delays run from the end of the failed attempt, so a 10 s timeout does not eat the 10 s pause.
"""

from __future__ import annotations

import random

# Delay after failed attempt n (1-based) for n = 1..6; later failures wait LATER_DELAY_MS.
RETRY_DELAYS_MS: tuple[int, ...] = (10_000, 30_000, 60_000, 300_000, 900_000, 3_600_000)
LATER_DELAY_MS = 3 * 3_600_000
GIVE_UP_AFTER_MS = 72 * 3_600_000
JITTER = 0.10
# A 2xx response must arrive within this many seconds of the attempt starting.
ATTEMPT_TIMEOUT_S = 10.0
# Event n+1 of an order waits at most this long behind a retrying event n.
ORDER_HOLD_MS = 3_600_000


def base_delay_ms(failed_attempts: int) -> int:
    """The un-jittered pause after the ``failed_attempts``-th failed attempt (1-based)."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts starts at 1")
    if failed_attempts <= len(RETRY_DELAYS_MS):
        return RETRY_DELAYS_MS[failed_attempts - 1]
    return LATER_DELAY_MS


def jittered_ms(delay_ms: int, rng: random.Random) -> int:
    """``delay_ms`` stretched by a uniform 0..10 %."""
    return delay_ms + int(delay_ms * JITTER * rng.random())


def next_attempt_at_ms(
    *, failed_attempts: int, first_attempt_ms: int, last_attempt_end_ms: int, rng: random.Random
) -> int | None:
    """When to try again after ``failed_attempts`` failures, or None to give up (``failed``)."""
    at = last_attempt_end_ms + jittered_ms(base_delay_ms(failed_attempts), rng)
    if at > first_attempt_ms + GIVE_UP_AFTER_MS:
        return None
    return at


def attempts_spanning(span_ms: int) -> int:
    """The smallest attempt count whose last attempt is at least ``span_ms`` after the first.

    Jitter only lengthens delays, so this holds whatever the jitter was: once an event has
    made this many attempts it has been retrying for at least ``span_ms``.
    """
    attempts, elapsed = 1, 0
    while elapsed < span_ms:
        elapsed += base_delay_ms(attempts)
        attempts += 1
    return attempts


# Ordering rule: event n+1 of an order is held while event n is pending with fewer attempts
# than this (7: its attempt at 1 h 21 min, the first one made an hour or more after its first
# attempt). Releasing on an attempt's result rather than on a timer keeps the order when the
# receiver is back by then: event n goes first, and n+1 right after it.
ORDER_RELEASE_ATTEMPTS = attempts_spanning(ORDER_HOLD_MS)


def planned_offsets_ms(rng: random.Random | None = None) -> list[int]:
    """Offsets from the first attempt of every attempt an always-failing event gets."""
    offsets, at, failed = [0], 0, 1
    while True:
        delay = base_delay_ms(failed)
        at += jittered_ms(delay, rng) if rng is not None else delay
        if at > GIVE_UP_AFTER_MS:
            return offsets
        offsets.append(at)
        failed += 1


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300
