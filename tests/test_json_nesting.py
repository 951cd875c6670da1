"""The depth pre-scan: deep outside JSON is refused before the parser can overflow the C stack
(py_ecc raises the recursion limit to 100 000 when the gateway starts)."""

from __future__ import annotations

import httpx
import pytest

from stablegate.chain.evm.rpc import RpcClient
from stablegate.chain.evm.rpc_errors import RpcUnavailable
from stablegate.json_nesting import nested_deeper_than


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert not nested_deeper_than(b'{"a": [1, {"b": [2]}]}', 4)
    assert nested_deeper_than(b'{"a": [1, {"b": [2]}]}', 3)
    assert not nested_deeper_than(b'["[[[[[[[[[[[[["]', 1)  # brackets inside a string
    assert not nested_deeper_than(b'["\\"[[[[[["]', 1)  # an escaped quote stays in the string
    deep = b"[" * 200_000
    assert nested_deeper_than(deep, 64)
    assert not nested_deeper_than(b"[" * 5 + b'"' + b"[" * 5000, 64)  # unterminated: not parsed
    wide = b"[" + b"[1]," * 5000 + b"[1]]"  # many brackets, only two deep
    assert not nested_deeper_than(wide, 2)


async def test_a_node_answering_deep_json_is_a_failed_endpoint_not_a_crash() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" * 300_000 + b"]" * 300_000)

    async def no_wait(_seconds: float) -> None:
        return None

    rpc = RpcClient(["http://node.invalid"], max_attempts=1, sleep=no_wait)
    await rpc.aclose()
    rpc._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # the hostile node
    with pytest.raises(RpcUnavailable, match="nests too deep"):
        await rpc.call("eth_blockNumber", [])
    await rpc.aclose()
