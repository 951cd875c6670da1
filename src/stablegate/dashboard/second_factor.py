"""The second factor of a log-in: TOTP codes (RFC 6238) and single-use recovery codes.

Written over four columns, not over one table, so the operator console reuses it as is: any row
with ``id``, ``totp_secret_enc``, ``totp_enabled_at_ms``, ``totp_last_step`` and
``recovery_hashes`` (:class:`SecondFactorHolder`: ``DashboardUser``, ``OperatorAccount``) works.

- The secret is 160 random bits (RFC 4226's recommendation), base32, stored sealed with the
  gateway's :class:`~stablegate.secret_box.SecretBox`. Enrolment stores it with
  ``totp_enabled_at_ms`` unset; a first correct code enables it (:func:`enable`).
- Codes are 6 digits over 30-second steps, accepted one step early or late (clock drift). An
  accepted step is written to ``totp_last_step`` by a compare-and-set UPDATE that only moves it
  forward: a code, or an older one, logs in once, even when sent twice at the same moment.
- Recovery codes: 10 of 16 Crockford base32 characters (80 bits, ``xxxx-xxxx-xxxx-xxxx``),
  shown once; only their SHA-256 is kept, space-separated. Spending one is a compare-and-set
  UPDATE on the whole column, so two uses of one code cannot both succeed.

Services flush, never commit (the caller's transaction decides); checks say ``True``/``False``,
the caller counts the failures (:class:`stablegate.dashboard.throttle.FormThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum
from typing import Any, Protocol

import pyotp
import segno
from sqlalchemy import inspect, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from stablegate.secret_box import SecretBox

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of the current one
SECRET_BYTES = 20
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32: no i, l, o, u
RECOVERY_GROUPS = 4
RECOVERY_GROUP_SIZE = 4
# Read as the digit they look like (Crockford); hyphens and spaces are only for the eye.
_RECOVERY_READS = str.maketrans({"i": "1", "l": "1", "o": "0", "-": None, " ": None})
# How often a recovery code is tried again when another code was spent at the same moment.
_SPEND_TRIES = 3


class SecondFactorHolder(Protocol):
    """A mapped row with the second factor's columns."""

    id: str
    totp_secret_enc: str | None
    totp_enabled_at_ms: int | None
    totp_last_step: int | None
    recovery_hashes: str | None


class Accepted(StrEnum):
    TOTP = "totp"
    RECOVERY_CODE = "recovery_code"


# -- pure parts: secrets, codes, hashes ----------------------------------------------------------


def new_secret() -> str:
    """A new TOTP secret, base32 without padding (what authenticator apps read)."""
    return pyotp.random_base32(length=SECRET_BYTES * 8 // 5)


def grouped_secret(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    return totp.provisioning_uri(name=account, issuer_name=issuer)


def qr_data_uri(uri: str) -> str:
    """The URI as a QR code in an SVG ``data:`` URI: the pages' CSP allows ``img-src data:``,
    and an image runs nothing."""
    qr = segno.make(uri, error="m", micro=False)
    data: str = qr.svg_data_uri(scale=5, border=4, dark="#000", light="#fff")
    return data


def time_step(now_ms: int) -> int:
    return now_ms // 1000 // STEP_SECONDS


def code_at(secret: str, step: int) -> str:
    """The code of one time step (tests and the enrolment check use it)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).generate_otp(step)


def normalized_totp(code: str) -> str | None:
    """Six digits (spaces ignored: apps show ``123 456``), else None."""
    digits = "".join(code.split())
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def matching_step(secret: str, code: str, *, now_ms: int, last_step: int | None) -> int | None:
    """The time step whose code this is, within the window and after ``last_step`` (a step
    once accepted is never accepted again); None if none matches."""
    offered = normalized_totp(code)
    if offered is None:
        return None
    now = time_step(now_ms)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        # Every step is compared (no early exit), in constant time.
        if hmac.compare_digest(code_at(secret, step), offered) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def new_recovery_codes() -> list[str]:
    """Ten new recovery codes, shown to the person once."""
    size = RECOVERY_GROUPS * RECOVERY_GROUP_SIZE
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(size))
        groups = (raw[i : i + RECOVERY_GROUP_SIZE] for i in range(0, size, RECOVERY_GROUP_SIZE))
        codes.append("-".join(groups))
    return codes


def normalized_recovery_code(code: str) -> str | None:
    """A recovery code as stored (lower case, no separators), else None."""
    raw = code.strip().lower().translate(_RECOVERY_READS)
    size = RECOVERY_GROUPS * RECOVERY_GROUP_SIZE
    if len(raw) != size or any(c not in RECOVERY_ALPHABET for c in raw):
        return None
    return raw


def recovery_hash(code: str) -> str:
    """SHA-256 of the normalised code (80 random bits: no salt or slow hash needed)."""
    raw = normalized_recovery_code(code)
    if raw is None:
        raise ValueError("not a recovery code")
    return hashlib.sha256(raw.encode()).hexdigest()


def stored_recovery_hashes(codes: list[str]) -> str:
    return " ".join(recovery_hash(code) for code in codes)


def recovery_codes_left(holder: SecondFactorHolder) -> int:
    return len((holder.recovery_hashes or "").split())


def is_enabled(holder: SecondFactorHolder) -> bool:
    return holder.totp_enabled_at_ms is not None and holder.totp_secret_enc is not None


def is_enrolling(holder: SecondFactorHolder) -> bool:
    """A secret was made and not yet confirmed with a code."""
    return holder.totp_enabled_at_ms is None and holder.totp_secret_enc is not None


def secret_of(box: SecretBox, holder: SecondFactorHolder) -> str | None:
    return box.open(holder.totp_secret_enc) if holder.totp_secret_enc else None


# -- the row: enrolment, checks, spending ------------------------------------------------------


def _columns(holder: SecondFactorHolder) -> tuple[Any, Any]:
    """The holder's mapper (for UPDATE) and its columns."""
    mapper = inspect(holder).mapper
    return mapper, mapper.columns


def start_enrolment(box: SecretBox, holder: SecondFactorHolder) -> str:
    """A new secret, stored sealed and not yet in force (replacing any unconfirmed one); it is
    returned to be shown. Refuses to replace the secret of an enabled second factor."""
    if is_enabled(holder):
        raise ValueError("the second factor is enabled already")
    secret = new_secret()
    holder.totp_secret_enc = box.seal(secret)
    holder.totp_last_step = None
    holder.recovery_hashes = None
    return secret


def cancel_enrolment(holder: SecondFactorHolder) -> None:
    if is_enrolling(holder):
        holder.totp_secret_enc = None


async def accept_totp(
    session: AsyncSession, box: SecretBox, holder: SecondFactorHolder, code: str, *, now_ms: int
) -> bool:
    """Whether ``code`` is the holder's current code (enabled or being enrolled), never used
    before; its step is recorded by a compare-and-set, so of two requests carrying the same
    code only one gets ``True``."""
    secret = secret_of(box, holder)
    if secret is None:
        return False
    step = matching_step(secret, code, now_ms=now_ms, last_step=holder.totp_last_step)
    if step is None:
        return False
    mapper, c = _columns(holder)
    moved = await session.execute(
        update(mapper)
        .where(
            c["id"] == holder.id,
            c["totp_secret_enc"] == holder.totp_secret_enc,
            or_(c["totp_last_step"].is_(None), c["totp_last_step"] < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if getattr(moved, "rowcount", 0) != 1:
        return False
    # The row holds the step already: the instance learns it without a second write.
    set_committed_value(holder, "totp_last_step", step)
    return True


async def spend_recovery_code(session: AsyncSession, holder: SecondFactorHolder, code: str) -> bool:
    """Whether ``code`` is one of the holder's unused recovery codes; it is spent at once by a
    compare-and-set of the whole column, so two uses of one code cannot both succeed (a code
    spent by someone else at the same moment makes the loser read the column again)."""
    if normalized_recovery_code(code) is None:
        return False
    wanted = recovery_hash(code)
    mapper, c = _columns(holder)
    stored = holder.recovery_hashes
    for _ in range(_SPEND_TRIES):
        hashes = (stored or "").split()
        found = [h for h in hashes if hmac.compare_digest(h, wanted)]
        if not found:
            return False
        left = " ".join(h for h in hashes if h != wanted) or None
        spent = await session.execute(
            update(mapper)
            .where(c["id"] == holder.id, c["recovery_hashes"] == stored)
            .values(recovery_hashes=left)
            .execution_options(synchronize_session=False)
        )
        if getattr(spent, "rowcount", 0) == 1:
            set_committed_value(holder, "recovery_hashes", left)
            return True
        stored = await session.scalar(select(c["recovery_hashes"]).where(c["id"] == holder.id))
    return False


async def check_second_factor(
    session: AsyncSession,
    box: SecretBox,
    holder: SecondFactorHolder,
    code: str,
    *,
    now_ms: int,
    recovery: bool = True,
) -> Accepted | None:
    """The log-in's second step (and the checks that guard disabling it): a current TOTP code,
    or (``recovery``) an unused recovery code, which is spent. None when neither."""
    if not is_enabled(holder):
        return None
    if normalized_totp(code) is not None:
        return (
            Accepted.TOTP if await accept_totp(session, box, holder, code, now_ms=now_ms) else None
        )
    if recovery and await spend_recovery_code(session, holder, code):
        return Accepted.RECOVERY_CODE
    return None


async def enable(
    session: AsyncSession, box: SecretBox, holder: SecondFactorHolder, code: str, *, now_ms: int
) -> list[str] | None:
    """Confirm an enrolment with a code from the app: the second factor is in force and the
    first recovery codes are returned (to be shown once). None if the code is wrong or there is
    no enrolment."""
    if not is_enrolling(holder):
        return None
    if not await accept_totp(session, box, holder, code, now_ms=now_ms):
        return None
    codes = new_recovery_codes()
    holder.totp_enabled_at_ms = now_ms
    holder.recovery_hashes = stored_recovery_hashes(codes)
    await session.flush()
    return codes


async def replace_recovery_codes(
    session: AsyncSession, box: SecretBox, holder: SecondFactorHolder, code: str, *, now_ms: int
) -> list[str] | None:
    """New recovery codes (the old ones stop working) for a current TOTP code; None if wrong."""
    if not is_enabled(holder) or not await accept_totp(session, box, holder, code, now_ms=now_ms):
        return None
    codes = new_recovery_codes()
    holder.recovery_hashes = stored_recovery_hashes(codes)
    await session.flush()
    return codes


async def disable(session: AsyncSession, holder: SecondFactorHolder) -> None:
    """Turn the second factor off (the caller has checked the password and a code)."""
    holder.totp_secret_enc = None
    holder.totp_enabled_at_ms = None
    holder.totp_last_step = None
    holder.recovery_hashes = None
    await session.flush()
