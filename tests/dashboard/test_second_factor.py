"""The second factor's rules (stablegate.dashboard.second_factor) on the fake clock and real
databases: TOTP steps and their window, a step accepted once, recovery codes spent once even when
two requests race, and the same functions over the operator console's accounts."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from stablegate.api.context import GatewayContext
from stablegate.clock import FakeClock
from stablegate.config import SignupPolicy
from stablegate.dashboard import second_factor
from stablegate.dashboard.accounts import sign_up
from stablegate.dashboard.second_factor import (
    RECOVERY_CODE_COUNT,
    STEP_SECONDS,
    Accepted,
    code_at,
    matching_step,
    time_step,
)
from stablegate.db.engine import session_scope
from stablegate.models import DashboardUser
from stablegate.models.operator_account import OperatorAccount
from stablegate.secret_box import SecretBox

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def test_a_code_matches_its_step_and_the_ones_either_side_only(clock: FakeClock) -> None:
    now = clock.now_ms()
    step = time_step(now)
    for offset in (-1, 0, 1):
        code = code_at(SECRET, step + offset)
        assert matching_step(SECRET, code, now_ms=now, last_step=None) == step + offset
    for offset in (-3, -2, 2, 3):
        code = code_at(SECRET, step + offset)
        if code not in {code_at(SECRET, step + o) for o in (-1, 0, 1)}:
            assert matching_step(SECRET, code, now_ms=now, last_step=None) is None
    # The RFC 6238 reference secret ("12345678901234567890") at 59 s: 287082 (6 digits).
    rfc = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert matching_step(rfc, "287082", now_ms=59_000, last_step=None) == 1
    assert matching_step(rfc, "287 082", now_ms=59_000, last_step=None) == 1


def test_a_wrong_or_malformed_code_or_an_old_step_matches_nothing(clock: FakeClock) -> None:
    now = clock.now_ms()
    step = time_step(now)
    right = code_at(SECRET, step)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for code in (wrong, "", "12345", "1234567", "abcdef", "１２３４５６", right + "0"):
        assert matching_step(SECRET, code, now_ms=now, last_step=None) is None, code
    # The step accepted last, and any before it, never match again.
    assert matching_step(SECRET, right, now_ms=now, last_step=step) is None
    assert matching_step(SECRET, right, now_ms=now, last_step=step + 1) is None
    assert matching_step(SECRET, right, now_ms=now, last_step=step - 1) == step


def test_recovery_codes_are_random_typable_and_stored_as_hashes() -> None:
    codes = second_factor.new_recovery_codes()
    assert len(codes) == RECOVERY_CODE_COUNT == len(set(codes))
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
        assert set(code.replace("-", "")) <= set(second_factor.RECOVERY_ALPHABET)
    stored = second_factor.stored_recovery_hashes(codes)
    assert all(code not in stored for code in codes)
    raw = codes[0].replace("-", "")
    assert stored.split()[0] == hashlib.sha256(raw.encode()).hexdigest()
    # Typed in capitals, without hyphens, with Crockford's look-alikes: the same code.
    assert second_factor.recovery_hash(codes[0].upper().replace("-", " ")) == stored.split()[0]
    assert second_factor.normalized_recovery_code("1lI0-oO00-0000-0000") == "1110000000000000"
    assert second_factor.normalized_recovery_code("uuuu-0000-0000-0000") is None


async def _user(gateway: GatewayContext, clock: FakeClock, email: str = "a@shop.example") -> str:
    async with session_scope(gateway.sessions) as session:
        account = await sign_up(
            session,
            gateway.secret_box,
            clock,
            policy=SignupPolicy.OPEN,
            name="Shop",
            email=email,
            password_hash="not-used-here",
        )
    return account.user.id


async def _enrolled(gateway: GatewayContext, clock: FakeClock) -> tuple[str, str, list[str]]:
    """A user with two-factor on: its id, secret and recovery codes."""
    user_id = await _user(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        secret = second_factor.start_enrolment(gateway.secret_box, user)
    clock.advance(STEP_SECONDS)
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        code = code_at(secret, time_step(clock.now_ms()))
        codes = await second_factor.enable(
            session, gateway.secret_box, user, code, now_ms=clock.now_ms()
        )
    assert codes is not None
    # Two steps on: the step before the current one is unused (the enrolment used an older).
    clock.advance(2 * STEP_SECONDS)
    return user_id, secret, codes


async def _check(gateway: GatewayContext, clock: FakeClock, user_id: str, code: str) -> object:
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        return await second_factor.check_second_factor(
            session, gateway.secret_box, user, code, now_ms=clock.now_ms()
        )


async def test_enrolment_stores_the_secret_sealed_and_needs_a_code(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    user_id = await _user(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        secret = second_factor.start_enrolment(gateway.secret_box, user)
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None and user.totp_secret_enc and secret not in user.totp_secret_enc
        assert gateway.secret_box.open(user.totp_secret_enc) == secret
        assert second_factor.is_enrolling(user) and not second_factor.is_enabled(user)
        # Not in force yet: a code does not pass as a second factor.
        now = clock.now_ms()
        code = code_at(secret, time_step(now))
        assert (
            await second_factor.check_second_factor(
                session, gateway.secret_box, user, code, now_ms=now
            )
            is None
        )
        wrong = await second_factor.enable(
            session, gateway.secret_box, user, f"{(int(code) + 1) % 10**6:06d}", now_ms=now
        )
        assert wrong is None and user.totp_enabled_at_ms is None
        codes = await second_factor.enable(session, gateway.secret_box, user, code, now_ms=now)
        assert codes is not None and len(codes) == RECOVERY_CODE_COUNT
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None and second_factor.is_enabled(user)
        assert user.totp_last_step == time_step(now)
        assert second_factor.recovery_codes_left(user) == RECOVERY_CODE_COUNT
        with pytest.raises(ValueError):
            second_factor.start_enrolment(gateway.secret_box, user)


async def test_each_step_logs_in_once_and_adjacent_steps_pass(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    user_id, secret, _codes = await _enrolled(gateway, clock)
    step = time_step(clock.now_ms())
    assert await _check(gateway, clock, user_id, code_at(secret, step - 1)) == Accepted.TOTP
    assert await _check(gateway, clock, user_id, code_at(secret, step - 1)) is None  # replayed
    assert await _check(gateway, clock, user_id, code_at(secret, step)) == Accepted.TOTP
    assert await _check(gateway, clock, user_id, code_at(secret, step)) is None  # replayed
    # A phone a step ahead: accepted, and then the current step (older) is not.
    clock.advance(STEP_SECONDS)
    step += 1
    assert await _check(gateway, clock, user_id, code_at(secret, step + 1)) == Accepted.TOTP
    assert await _check(gateway, clock, user_id, code_at(secret, step)) is None
    clock.advance(2 * STEP_SECONDS)
    step += 2
    assert await _check(gateway, clock, user_id, code_at(secret, step + 2)) is None  # too far
    assert await _check(gateway, clock, user_id, code_at(secret, step)) == Accepted.TOTP
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None and user.totp_last_step == step


async def test_the_same_code_sent_twice_at_once_passes_once(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    user_id, secret, _codes = await _enrolled(gateway, clock)
    code = code_at(secret, time_step(clock.now_ms()))
    results = await asyncio.gather(*(_check(gateway, clock, user_id, code) for _ in range(2)))
    assert sorted(map(str, results)) == ["None", "totp"]


async def test_a_stale_read_of_the_last_step_cannot_accept_it_again(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    """The compare-and-set, not the read, decides: an instance read before another request
    accepted the step still cannot accept it."""
    user_id, secret, _codes = await _enrolled(gateway, clock)
    code = code_at(secret, time_step(clock.now_ms()))
    async with session_scope(gateway.sessions) as session:
        stale = await session.get(DashboardUser, user_id)
        assert stale is not None
    assert await _check(gateway, clock, user_id, code) == Accepted.TOTP
    async with session_scope(gateway.sessions) as session:
        held = await session.get(DashboardUser, user_id)
        assert held is not None
        # Make this session's copy look as if read before the other request committed.
        set_committed_value(held, "totp_last_step", stale.totp_last_step)
        assert not await second_factor.accept_totp(
            session, gateway.secret_box, held, code, now_ms=clock.now_ms()
        )


async def test_a_recovery_code_works_once(gateway: GatewayContext, clock: FakeClock) -> None:
    user_id, _secret, codes = await _enrolled(gateway, clock)
    assert await _check(gateway, clock, user_id, codes[3]) == Accepted.RECOVERY_CODE
    assert await _check(gateway, clock, user_id, codes[3]) is None
    assert await _check(gateway, clock, user_id, codes[3].upper()) is None
    assert await _check(gateway, clock, user_id, "0000-0000-0000-0000") is None
    assert await _check(gateway, clock, user_id, codes[4].upper()) == Accepted.RECOVERY_CODE
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        assert second_factor.recovery_codes_left(user) == RECOVERY_CODE_COUNT - 2
        # Not accepted where only a TOTP code will do.
        assert (
            await second_factor.check_second_factor(
                session,
                gateway.secret_box,
                user,
                codes[5],
                now_ms=clock.now_ms(),
                recovery=False,
            )
            is None
        )


async def test_one_recovery_code_used_twice_at_once_passes_once(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    user_id, _secret, codes = await _enrolled(gateway, clock)
    results = await asyncio.gather(*(_check(gateway, clock, user_id, codes[0]) for _ in range(3)))
    assert sorted(map(str, results)) == ["None", "None", "recovery_code"]
    # Two different codes at once both pass: the loser of the race reads the column again.
    results = await asyncio.gather(*(_check(gateway, clock, user_id, c) for c in codes[1:3]))
    assert results == [Accepted.RECOVERY_CODE, Accepted.RECOVERY_CODE]
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        assert second_factor.recovery_codes_left(user) == RECOVERY_CODE_COUNT - 3


async def test_a_stale_read_of_the_recovery_codes_cannot_spend_one_again(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    user_id, _secret, codes = await _enrolled(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        stale = await session.get(DashboardUser, user_id)
        assert stale is not None
    assert await _check(gateway, clock, user_id, codes[0]) == Accepted.RECOVERY_CODE
    async with session_scope(gateway.sessions) as session:
        held = await session.get(DashboardUser, user_id)
        assert held is not None
        set_committed_value(held, "recovery_hashes", stale.recovery_hashes)
        assert not await second_factor.spend_recovery_code(session, held, codes[0])
        assert held.recovery_hashes is not None and len(held.recovery_hashes.split()) == 10


async def test_new_recovery_codes_need_a_current_code_and_void_the_old(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    user_id, secret, codes = await _enrolled(gateway, clock)
    async with session_scope(gateway.sessions) as session:
        user = await session.get(DashboardUser, user_id)
        assert user is not None
        refused = await second_factor.replace_recovery_codes(
            session, gateway.secret_box, user, codes[0], now_ms=clock.now_ms()
        )
        assert refused is None
        fresh = await second_factor.replace_recovery_codes(
            session,
            gateway.secret_box,
            user,
            code_at(secret, time_step(clock.now_ms())),
            now_ms=clock.now_ms(),
        )
    assert fresh is not None and not set(fresh) & set(codes)
    assert await _check(gateway, clock, user_id, codes[0]) is None
    assert await _check(gateway, clock, user_id, fresh[0]) == Accepted.RECOVERY_CODE


async def test_the_operator_console_reuses_it_over_its_own_accounts(
    gateway: GatewayContext, clock: FakeClock
) -> None:
    box: SecretBox = gateway.secret_box
    async with session_scope(gateway.sessions) as session:
        operator = OperatorAccount(
            id="op_test", email="ops@gateway.example", password_hash="x", created_at_ms=1
        )
        session.add(operator)
        await session.flush()
        secret = second_factor.start_enrolment(box, operator)
        now = clock.now_ms()
        codes = await second_factor.enable(
            session, box, operator, code_at(secret, time_step(now)), now_ms=now
        )
        assert codes is not None
    clock.advance(STEP_SECONDS)
    async with session_scope(gateway.sessions) as session:
        held = await session.scalar(select(OperatorAccount).where(OperatorAccount.id == "op_test"))
        assert held is not None
        now = clock.now_ms()
        code = code_at(secret, time_step(now))
        check = second_factor.check_second_factor
        assert await check(session, box, held, code, now_ms=now) == Accepted.TOTP
        assert await check(session, box, held, code, now_ms=now) is None
        assert await check(session, box, held, codes[0], now_ms=now) == Accepted.RECOVERY_CODE
        assert await check(session, box, held, codes[0], now_ms=now) is None
        await second_factor.disable(session, held)
        assert not second_factor.is_enabled(held) and held.totp_secret_enc is None


def test_the_qr_code_is_an_svg_data_uri_of_the_otpauth_uri() -> None:
    uri = second_factor.provisioning_uri(
        SECRET, account="o'neil&x@shop.example", issuer="stablegate (pay.example.com)"
    )
    assert uri.startswith("otpauth://totp/stablegate%20%28pay.example.com%29:")
    assert f"secret={SECRET}" in uri and "o%27neil%26x%40shop.example" in uri
    data = second_factor.qr_data_uri(uri)
    assert data.startswith("data:image/svg+xml") and "<script" not in data
    assert second_factor.grouped_secret("ABCDEFGHIJ") == "ABCD EFGH IJ"
