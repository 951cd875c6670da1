"""The MD5 signature EPay and Epusdt plugins speak, for requests and callbacks alike.

The signed text is every parameter but the signature's own (``sign`` and ``sign_type`` for
EPay, ``signature`` for Epusdt) whose value is not empty, sorted by name in byte order, written
``name=value`` and joined with ``&``; the merchant's key is appended to it directly (no
separator) and the lowercase hex MD5 of the UTF-8 bytes is the signature. Values are written as
they are: no URL encoding, numbers in their shortest decimal form (``10``, not ``10.00``, as a
PHP or Go client writes a float).

MD5 with a shared key is what those plugins verify; it is far weaker than the signed API (no
time, no replay protection, one key known to both sides, MD5 itself). docs/INTEGRATIONS.md says
so and these credentials are refused by the signed API (stablegate.merchants.credentials).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, Mapping
from decimal import Decimal

from stablegate.rates.pricing import decimal_text

# The names that carry the signature and are never signed themselves.
EPAY_UNSIGNED = frozenset({"sign", "sign_type"})
EPUSDT_UNSIGNED = frozenset({"signature"})

Value = str | int | Decimal | None


def value_text(value: Value) -> str:
    """How a parameter's value is written into the signed text."""
    if value is None:
        return ""
    if isinstance(value, bool):  # bool is an int: refuse rather than write "True"
        raise TypeError("a boolean has no signed form")
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def signed_text(params: Mapping[str, Value], key: str, unsigned: Collection[str]) -> str:
    """``a=1&b=2`` of the non-empty parameters, sorted by name in byte order, then the key."""
    pairs = [
        (name, text)
        for name, value in params.items()
        if name not in unsigned and (text := value_text(value)) != ""
    ]
    ordered = sorted(pairs, key=lambda pair: pair[0].encode("utf-8"))
    return "&".join(f"{name}={text}" for name, text in ordered) + key


def md5_sign(params: Mapping[str, Value], key: str, unsigned: Collection[str]) -> str:
    """The lowercase hex MD5 signature of ``params`` with ``key``."""
    # MD5 is what the plugins verify: the weakness is documented, not chosen.
    digest = hashlib.md5(signed_text(params, key, unsigned).encode("utf-8"))  # noqa: S324
    return digest.hexdigest()


def md5_verify(
    params: Mapping[str, Value], key: str, signature: str, unsigned: Collection[str]
) -> bool:
    """Whether ``signature`` (hex, any letter case) is ``params`` signed with ``key``, compared
    in constant time."""
    expected = md5_sign(params, key, unsigned)
    return hmac.compare_digest(expected.encode("ascii"), signature.lower().encode("utf-8"))
