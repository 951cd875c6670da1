"""How deep a JSON text nests, found by a linear scan before any parser sees it.

Python's JSON parser recurses once per level, bounded only by the recursion limit, and a
library the gateway imports (py_ecc, through eth-account) raises that limit to 100 000: deep
enough for a hostile ``[[[[…`` answer to overflow the C stack and kill the process instead of
raising. Every JSON body from outside that is not size-capped small (a node's JSON-RPC answer, a
rate provider's) is checked here first.
"""

from __future__ import annotations

import re

# A run of anything but strings and brackets, a whole string, or a run of openers or closers.
_TOKEN = re.compile(rb'[^"\[\]{}]+|"(?:[^"\\]|\\.)*"|[\[{]+|[\]}]+')
# A text with this few brackets cannot be dangerously deep: not scanned.
_UNSCANNED_BRACKETS = 1000


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """True when ``body`` opens more than ``limit`` arrays or objects at once (brackets inside
    strings do not count). An unterminated string stops the scan: the parser does not recurse
    into it either, and rejects the text there."""
    if body.count(b"[") + body.count(b"{") <= min(limit, _UNSCANNED_BRACKETS):
        return False
    depth = 0
    position = 0
    while position < len(body):
        token = _TOKEN.match(body, position)
        if token is None:
            return False
        first = body[position]
        if first in b"[{":
            depth += len(token.group())
            if depth > limit:
                return True
        elif first in b"]}":
            depth -= len(token.group())
        position = token.end()
    return False
