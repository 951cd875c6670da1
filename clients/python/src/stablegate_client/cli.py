"""``stablegate-client``: collect deposits without the gateway, and make the merchant key pair.

::

    stablegate-client flush --rpc URL --factory F --payout P --salt S --token T
                            [--private-key-env VAR] [--json]
    stablegate-client keygen --private-key-out merchant-key.pem --public-key-out merchant-pub.pem

The flush key is read from an environment variable (default ``STABLEGATE_CLIENT_PRIVATE_KEY``),
never from the command line, where other users could read it in the process list.
Exit status: 0 done, 1 the flush failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

from stablegate_client._errors import FlushError
from stablegate_client._flush import deposit_salt, flush, token_decimals
from stablegate_client._signing import generate_key_pair

DEFAULT_KEY_ENV = "STABLEGATE_CLIENT_PRIVATE_KEY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stablegate-client")
    commands = parser.add_subparsers(dest="command", required=True)

    f = commands.add_parser(
        "flush",
        help="deploy an order's deposit forwarder if needed and move its balance to the payout",
        description="One ForwarderFactory.deployAndFlushOne(payout, salt, token) transaction, "
        "paid for by any funded key. Funds can only go to the payout address.",
    )
    f.add_argument("--rpc", required=True, help="JSON-RPC URL of the chain")
    f.add_argument("--factory", required=True, help="the order's factory address")
    f.add_argument("--payout", required=True, help="the order's payoutAddress")
    salt = f.add_mutually_exclusive_group(required=True)
    salt.add_argument("--salt", help="the order's depositSalt (0x + 64 hex digits)")
    salt.add_argument("--order-id", help="the orderId (the salt is keccak256 of it)")
    f.add_argument("--token", required=True, help="the token contract (tokenAddress)")
    f.add_argument(
        "--private-key-env",
        default=DEFAULT_KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding the gas-paying key (default {DEFAULT_KEY_ENV})",
    )
    f.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the receipt")
    f.add_argument("--json", action="store_true", help="print one JSON object")

    k = commands.add_parser(
        "keygen", help="make the merchant's P-256 key pair (once); register the public key"
    )
    k.add_argument("--private-key-out", type=Path, default=Path("merchant-key.pem"))
    k.add_argument("--public-key-out", type=Path, default=Path("merchant-pub.pem"))
    return parser


def _flush_command(args: argparse.Namespace) -> int:
    private_key = os.environ.get(args.private_key_env, "").strip()
    if not private_key:
        print(f"error: set {args.private_key_env} to the gas-paying private key", file=sys.stderr)
        return 2
    salt = args.salt if args.salt is not None else deposit_salt(args.order_id)
    try:
        result = flush(
            args.rpc, args.factory, args.payout, salt, args.token, private_key, timeout=args.timeout
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FlushError as exc:
        print(f"flush failed: {exc}", file=sys.stderr)
        return 1
    try:
        decimals: int | None = token_decimals(args.rpc, result.token)
    except FlushError:
        decimals = None
    amount = None if decimals is None else Decimal(result.amount).scaleb(-decimals)
    if args.json:
        print(
            json.dumps(
                {
                    "txHash": result.tx_hash,
                    "depositAddress": result.deposit_address,
                    "payout": result.payout,
                    "token": result.token,
                    "amountBaseUnits": str(result.amount),
                    "amount": None if amount is None else format(amount, "f"),
                    "deployed": result.deployed,
                    "blockNumber": result.block_number,
                    "gasUsed": result.gas_used,
                }
            )
        )
    else:
        shown = f"{result.amount} base units" + ("" if amount is None else f" ({amount:f})")
        print(f"tx {result.tx_hash}")
        print(
            f"moved {shown} of {result.token} from {result.deposit_address} to {result.payout}"
            + (" (forwarder deployed)" if result.deployed else "")
        )
    return 0


def _keygen_command(args: argparse.Namespace) -> int:
    private_pem, public_pem = generate_key_pair()
    try:
        fd = os.open(args.private_key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"error: {args.private_key_out} exists; keep using that key", file=sys.stderr)
        return 2
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    args.public_key_out.write_bytes(public_pem)
    print(f"private key: {args.private_key_out} (keep it secret)")
    print(f"public key:  {args.public_key_out} (give it to the operator to register)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "flush":
        return _flush_command(args)
    return _keygen_command(args)


if __name__ == "__main__":
    sys.exit(main())
