"""Who failed, by the JSON-RPC error: the call, its block range, or the provider."""

from __future__ import annotations

import pytest

from stablegate.chain.evm.rpc_errors import EndpointFailure, RpcError, RpcRangeTooLarge, classify


@pytest.mark.parametrize(
    ("method", "code", "message", "kind"),
    [
        ("eth_call", 3, "execution reverted", RpcError),
        ("eth_call", -32000, "execution reverted: paused", RpcError),
        ("eth_getBalance", -32602, "invalid params", RpcError),
        ("eth_sendRawTransaction", -32000, "nonce too low", RpcError),
        ("eth_sendRawTransaction", -32000, "already known", RpcError),
        ("eth_blockNumber", -32603, "internal error", EndpointFailure),
        ("eth_getBlockByNumber", -32000, "header not found", EndpointFailure),
        ("eth_call", -32000, "missing trie node abc", EndpointFailure),
        ("eth_chainId", -32005, "project ID request rate exceeded", EndpointFailure),
        (
            "eth_getLogs",
            -32005,
            "daily request count exceeded, request rate limited",
            EndpointFailure,
        ),
        ("eth_getLogs", 429, "Too Many Requests", EndpointFailure),
        ("eth_getLogs", -32005, "query returned more than 10000 results", RpcRangeTooLarge),
        ("eth_getLogs", -32005, "limit exceeded", RpcRangeTooLarge),
        ("eth_getLogs", -32602, "Log response size exceeded.", RpcRangeTooLarge),
        ("eth_getLogs", -32614, "eth_getLogs is limited to a 10,000 range", RpcRangeTooLarge),
        ("eth_getLogs", -32000, "exceed maximum block range: 5000", RpcRangeTooLarge),
        ("eth_getLogs", -32602, "invalid address", RpcError),
    ],
)
def test_error_classes(method: str, code: int, message: str, kind: type[Exception]) -> None:
    assert classify(method, code, message) is kind
