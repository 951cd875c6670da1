"""The retry schedule of docs/DESIGN.md §8, as pure functions."""

from __future__ import annotations

import itertools
import random

import pytest

from stablegate.webhooks.schedule import (
    GIVE_UP_AFTER_MS,
    ORDER_HOLD_MS,
    ORDER_RELEASE_ATTEMPTS,
    attempts_spanning,
    base_delay_ms,
    is_success,
    jittered_ms,
    next_attempt_at_ms,
    planned_offsets_ms,
)

S, M, H = 1000, 60_000, 3_600_000


def test_base_delays_follow_the_design() -> None:
    assert [base_delay_ms(n) for n in range(1, 10)] == [
        10 * S,
        30 * S,
        1 * M,
        5 * M,
        15 * M,
        1 * H,
        3 * H,
        3 * H,
        3 * H,
    ]
    with pytest.raises(ValueError, match="starts at 1"):
        base_delay_ms(0)


def test_jitter_only_stretches_by_at_most_ten_percent() -> None:
    rng = random.Random(7)
    samples = [jittered_ms(10 * S, rng) for _ in range(2000)]
    assert min(samples) >= 10 * S
    assert max(samples) <= 11 * S
    assert max(samples) - min(samples) > 900  # it really spreads
    assert jittered_ms(3 * H, random.Random(1)) <= 3 * H * 1.1


def test_next_attempt_counts_from_the_end_of_the_failed_attempt() -> None:
    rng = random.Random(3)
    at = next_attempt_at_ms(
        failed_attempts=1, first_attempt_ms=0, last_attempt_end_ms=5 * S, rng=rng
    )
    assert at is not None and 15 * S <= at <= 16 * S


def test_no_attempt_after_72_hours_from_the_first() -> None:
    rng = random.Random(5)
    first = 1_000_000
    # A failure 70 h in: the next try (3 h on) would land after 72 h, so the event fails.
    assert (
        next_attempt_at_ms(
            failed_attempts=25, first_attempt_ms=first, last_attempt_end_ms=first + 70 * H, rng=rng
        )
        is None
    )
    at = next_attempt_at_ms(
        failed_attempts=25, first_attempt_ms=first, last_attempt_end_ms=first + 68 * H, rng=rng
    )
    assert at is not None and first + 71 * H <= at <= first + GIVE_UP_AFTER_MS


@pytest.mark.parametrize("seed", [None, 1, 2, 3])
def test_planned_offsets_of_an_always_failing_event(seed: int | None) -> None:
    offsets = planned_offsets_ms(None if seed is None else random.Random(seed))
    if seed is None:
        assert offsets[:8] == [
            0,
            10 * S,
            40 * S,
            100 * S,
            400 * S,
            1300 * S,
            4900 * S,
            4900 * S + 3 * H,
        ]
    assert offsets[-1] <= GIVE_UP_AFTER_MS
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    for n, gap in enumerate(gaps, start=1):
        assert base_delay_ms(n) <= gap <= base_delay_ms(n) * 1.1
    # About two dozen 3-hourly tries fit after the first hour and a half.
    assert 24 <= len(offsets) <= 30


def test_the_ordering_hold_is_released_by_the_first_attempt_an_hour_in() -> None:
    assert ORDER_RELEASE_ATTEMPTS == 7 == attempts_spanning(ORDER_HOLD_MS)
    # Even with the longest jitter the 6th attempt is inside the hour, and the 7th never is.
    longest_six = sum(base_delay_ms(n) for n in range(1, 6)) * 1.1
    shortest_seven = sum(base_delay_ms(n) for n in range(1, 7))
    assert longest_six < ORDER_HOLD_MS <= shortest_seven
    assert attempts_spanning(0) == 1
    assert attempts_spanning(10 * S) == 2


def test_success_is_2xx_only() -> None:
    assert all(is_success(code) for code in (200, 201, 202, 204, 299))
    assert not any(is_success(code) for code in (100, 199, 301, 302, 304, 400, 410, 500, 503))
