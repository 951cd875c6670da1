"""Strict parsing of a merchant's JSON request body (docs/DESIGN.md §2, body rules).

A JSON object, UTF-8, at most 64 KB (413 ``body_too_large``), no duplicate keys at any depth, no
lone surrogates, no NaN/Infinity, bounded nesting; every violation is 400 ``invalid_body`` and
nothing but a :class:`~stablegate.errors.GatewayError` ever escapes.
"""

from __future__ import annotations

import json
import math
from typing import Any

from stablegate.errors import GatewayError, InvalidRequest

MAX_BODY_BYTES = 65_536
MAX_DEPTH = 32


class _Reject(ValueError):
    """Raised from the decoder hooks; turned into ``invalid_body`` with its message."""


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Reject(f"duplicate key {key[:64]!r}")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise _Reject(f"{name} is not allowed")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Reject("number out of range")
    return value


def _check_tree(root: Any) -> None:
    """Depth limit, NUL and lone surrogates (in keys and string values), without recursion."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise _Reject(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                _check_text(key)
                stack.append((value, depth + 1))
        else:
            stack.extend((item, depth + 1) for item in node)


def _check_text(text: str) -> None:
    # NUL cannot be stored in PostgreSQL text and has no business in an order.
    if "\x00" in text:
        raise _Reject("string contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Reject("string contains a lone surrogate") from None


def parse_json_object(body: bytes, max_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """Decode ``body`` as a strict JSON object; see the module docstring for the rules."""
    if len(body) > max_bytes:
        raise GatewayError(
            f"the body is larger than {max_bytes} bytes", code="body_too_large", status=413
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not valid UTF-8", code="invalid_body") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_pairs,
            parse_constant=_constant,
            parse_float=_float,
        )
        if not isinstance(value, dict):
            raise _Reject("the body must be a JSON object")
        _check_tree(value)
    except _Reject as exc:
        raise InvalidRequest(f"invalid JSON body: {exc}", code="invalid_body") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg} at position {exc.pos}", code="invalid_body"
        ) from None
    except RecursionError:
        raise InvalidRequest(
            f"invalid JSON body: nested deeper than {MAX_DEPTH} levels", code="invalid_body"
        ) from None
    except (ValueError, TypeError, OverflowError, MemoryError):
        # e.g. an integer literal longer than Python's int/str conversion limit.
        raise InvalidRequest("the body is not valid JSON", code="invalid_body") from None
    return value
