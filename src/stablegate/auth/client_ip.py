"""The client's IP address, and the subject a rate-limit ban applies to.

``X-Forwarded-For`` is believed only when the TCP peer is a trusted proxy
(``STABLEGATE_TRUSTED_PROXIES``); then the list is walked from the right, skipping hops that are
themselves trusted, and the first untrusted hop is the client. Every ``X-Forwarded-For`` header
line counts, joined in order (:func:`forwarded_for`): a proxy that appends its own line after the
client's must not let the client's line decide.

The peer must be the raw TCP peer. The servers run uvicorn with ``proxy_headers=False``; its
``ProxyHeadersMiddleware`` would otherwise rewrite the peer from the header before we see it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN_CLIENT = "unknown"
# IPv6 clients get a /64 each, so one ban or bucket covers the whole subnet.
IPV6_BAN_PREFIX = 64


def parse_trusted_proxies(values: Iterable[str]) -> list[IPNetwork]:
    """``["10.0.0.0/8", "127.0.0.1", "fd00::/8"]`` to networks; raises ValueError on bad input."""
    return [ipaddress.ip_network(value.strip(), strict=False) for value in values if value.strip()]


def forwarded_for(lines: Iterable[str]) -> str | None:
    """Every ``X-Forwarded-For`` header line of a request as one list, in order (None if none)."""
    present = list(lines)
    return ",".join(present) if present else None


# Remembered: every request asks for its peer's address two or three times, and a client's
# address repeats across its requests (bounded: hops a client makes up only churn the cache).
@lru_cache(maxsize=8192)
def _parse_ip(text: str) -> IPAddress | None:
    """An address from a peer or forwarded hop; tolerates ``[v6]:port``, ``v4:port``, zones."""
    value = text.strip().strip('"')
    if value.startswith("["):
        end = value.find("]")
        if end == -1:
            return None
        value = value[1:end]
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def _is_trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[IPNetwork]
) -> str:
    """The client address as a normalised string (``"unknown"`` without a usable peer)."""
    peer_address = _parse_ip(peer) if peer else None
    if peer_address is None:
        return peer.strip() if peer and peer.strip() else UNKNOWN_CLIENT
    if not forwarded_for or not _is_trusted(peer_address, trusted_proxies):
        return str(peer_address)
    closest = peer_address
    for hop in reversed(forwarded_for.split(",")):
        if not hop.strip():
            continue
        address = _parse_ip(hop)
        if address is None:
            # A trusted proxy wrote something unreadable: stop at the last hop we know.
            break
        if not _is_trusted(address, trusted_proxies):
            return str(address)
        closest = address
    return str(closest)


def ban_subject(ip: str) -> str:
    """What a ban or a per-IP bucket is keyed by: the IPv4 address (also for IPv4-mapped IPv6),
    or the IPv6 /64 network."""
    address = _parse_ip(ip)
    if address is None:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_BAN_PREFIX), strict=False))
    return str(address)
