"""SSRF guard for merchant-supplied webhook URLs (docs/DESIGN.md §8).

A notifyUrl is the one place where someone outside the operator picks where the gateway
connects, so every attempt goes through :func:`resolve_target`:

1. The URL must pass :func:`parse_webhook_url`: absolute ``http`` or ``https``, a host that is
   an IP literal or a valid DNS name (labels of 1-63 characters, valid IDNA), no user name or
   password. The same check refuses a URL when it is set (400 ``invalid_notify_url``), so a
   stored URL fails it only if an older version stored it; then the attempt is a logged error.
2. The host is resolved ONCE per attempt (``getaddrinfo`` in the default executor); an IP
   literal is not resolved.
3. Every resolved address must be public (:func:`is_public_address`): IPv4-mapped IPv6, NAT64
   (64:ff9b::/96) and 6to4 addresses are judged by the IPv4 address inside them; Teredo is
   refused. A name with any non-public address is refused, since mixing public and private
   records is how DNS-rebinding attacks start.
4. The caller connects to the pinned address (:attr:`PinnedTarget.request_url`) and sends the
   original name as ``Host`` and as TLS SNI, so certificates are still checked against the
   name while the name is never resolved again.

Redirects are never followed (the worker treats a 3xx as a failed attempt).
``STABLEGATE_ALLOW_PRIVATE_WEBHOOKS=true`` lifts step 3 only (dev chain, tests).
"""

from __future__ import annotations

import asyncio
import codecs
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Resolves (host, port) to addresses, as strings, in preference order.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_BLOCKED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/96",  # unspecified, loopback, deprecated IPv4-compatible
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo
        "2001:db8::/32",
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationError(Exception):
    """The URL cannot be called; ``str(exc)`` says why (safe for the delivery log)."""


class BlockedDestination(DestinationError):
    """The URL points at an address the guard refuses."""


@dataclass(frozen=True)
class PinnedTarget:
    url: httpx.URL  # as the merchant gave it
    host: str  # ASCII (IDNA) host name or IP literal, lower case
    address: str  # the resolved address the connection goes to

    @property
    def request_url(self) -> httpx.URL:
        """The URL with the host replaced by the pinned address (no fragment)."""
        return _pinned_url(self.url, self.address)

    @property
    def host_header(self) -> str:
        default_port = 443 if self.url.scheme == "https" else 80
        port = self.url.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if port in (None, default_port) else f"{host}:{port}"

    @property
    def extensions(self) -> dict[str, str]:
        """Request extensions that make TLS use the original name for SNI and verification."""
        return {"sni_hostname": self.host} if self.url.scheme == "https" else {}


@functools.lru_cache(maxsize=4096)
def _pinned_url(url: httpx.URL, address: str) -> httpx.URL:
    # Kept: parsed URLs come from parse_webhook_url's cache, the same objects every attempt.
    return url.copy_with(host=address, fragment=None)


MAX_URL_LENGTH = 2048
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")


def parse_webhook_url(url: str) -> tuple[httpx.URL, str]:
    """(parsed URL, ASCII host) of a URL the gateway may call, or :class:`DestinationError`.

    The one check for notify URLs, when they are set and before every attempt. It raises
    nothing else: a stored URL that fails it must become a failed attempt, not a crash.
    A pure function of the string, so the last few thousand answers are kept (the worker
    calls it for every attempt; a refusal is not kept and is worked out again).
    """
    if not isinstance(url, str) or not url:
        raise DestinationError("the URL is empty")
    return _parse_webhook_url(url)


@functools.lru_cache(maxsize=4096)
def _parse_webhook_url(url: str) -> tuple[httpx.URL, str]:
    if len(url) > MAX_URL_LENGTH:
        raise DestinationError(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise DestinationError("the URL contains whitespace or control characters")
    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii").lower()
        port = parsed.port
    except Exception as exc:  # httpx raises InvalidURL, but its IDNA step may raise others
        raise DestinationError(f"not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise BlockedDestination("only http and https URLs are called")
    if not host:
        raise DestinationError("the URL has no host")
    if parsed.userinfo:
        # It would be stored and logged in clear, and sent as Basic credentials.
        raise DestinationError("the URL must not contain a user name or password")
    if port is not None and not 1 <= port <= 65535:
        raise DestinationError(f"port {port} is not between 1 and 65535")
    if _ip_literal(host) is None:
        _check_host_name(host)
    return parsed, host


def _check_host_name(host: str) -> None:
    """A DNS name the resolver accepts: what ``getaddrinfo`` would otherwise refuse with a
    ``UnicodeError`` (empty or over-long labels) is refused here with a reason."""
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253:
        raise DestinationError("the host name is longer than 253 characters")
    for label in name.split("."):
        if not label or len(label) > 63:
            raise DestinationError(f"the host name {host!r} has an empty or over-long label")
        if not _LABEL.fullmatch(label):
            raise DestinationError(f"the host name {host!r} is not a valid DNS name")
        if label.startswith("xn--") and not _is_a_label(label):
            raise DestinationError(f"the host name {host!r} is not valid IDNA")
    try:
        name.encode("idna")  # the codec getaddrinfo uses
    except UnicodeError:
        raise DestinationError(f"the host name {host!r} is not valid IDNA") from None


def _is_a_label(label: str) -> bool:
    """True for an IDNA A-label: Punycode of a non-ASCII name that encodes back to itself."""
    try:
        decoded = codecs.decode(label[4:].encode("ascii"), "punycode")
        return not decoded.isascii() and codecs.encode(decoded, "punycode") == label[4:].encode()
    except UnicodeError:
        return False


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def is_public_address(ip: IPAddress) -> bool:
    """True only for a globally routable unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return is_public_address(inner)
    if any(ip.version == net.version and ip in net for net in _BLOCKED):
        return False
    return ip.is_global and not (
        ip.is_multicast
        or ip.is_private
        or ip.is_reserved
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_unspecified
    )


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def resolve_target(
    url: str, *, allow_private: bool, resolver: Resolver | None = None
) -> PinnedTarget:
    """Check ``url`` and pin the address to connect to, or raise :class:`DestinationError`."""
    parsed, host = parse_webhook_url(url)
    literal = _ip_literal(host)
    if literal is not None:
        candidates: list[IPAddress] = [literal]
    else:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            resolved = await (resolver or system_resolver)(host, port)
        except (OSError, UnicodeError, ValueError) as exc:  # getaddrinfo raises all three
            raise DestinationError(f"{host} does not resolve: {exc}") from None
        candidates = []
        for value in resolved:
            address = _ip_literal(value.split("%", 1)[0])  # drop an IPv6 zone id
            if address is not None:
                candidates.append(address)
        if not candidates:
            raise DestinationError(f"{host} does not resolve")
    if not allow_private:
        for address in candidates:
            if not is_public_address(address):
                raise BlockedDestination(
                    f"{host} resolves to {address}, which is not a public address"
                    if literal is None
                    else f"{address} is not a public address"
                )
    pinned = candidates[0]
    if isinstance(pinned, ipaddress.IPv6Address) and pinned.ipv4_mapped is not None:
        pinned = pinned.ipv4_mapped
    return PinnedTarget(url=parsed, host=host.strip("[]"), address=str(pinned))


@dataclass(frozen=True)
class PinnedResponse:
    status_code: int
    body_prefix: bytes  # at most ``body_limit`` bytes, as sent (no content decoding)


ClientFor = Callable[[str], Awaitable[httpx.AsyncClient]]


async def post_pinned(
    client_for: ClientFor,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    allow_private: bool,
    resolver: Resolver | None = None,
    timeout_s: float,
    body_limit: int = 256,
    method: str = "POST",
) -> PinnedResponse:
    """POST to ``url`` through the guard: resolve once, connect to the pinned address with the
    name as Host and SNI, follow no redirect. (``method`` "GET" for callbacks that are GETs,
    EPay's: ``content`` is then empty.)

    ``client_for(host)`` gives the client to use for that host name. The status must arrive
    within ``timeout_s`` (else :class:`TimeoutError`); the body prefix is read in what is left
    of it, best effort. Raises :class:`DestinationError` or :class:`httpx.HTTPError` otherwise.
    """
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with asyncio.timeout_at(deadline):
        target = await resolve_target(url, allow_private=allow_private, resolver=resolver)
        client = await client_for(target.host)
        request = client.build_request(
            method,
            target.request_url,
            content=content,
            # identity: only a prefix is kept, and nothing is decompressed to get it
            headers={**headers, "Host": target.host_header, "Accept-Encoding": "identity"},
            extensions=target.extensions,
        )
        response = await client.send(request, stream=True, follow_redirects=False)
    chunks: list[bytes] = []
    size = 0
    try:
        if response.is_stream_consumed:  # an in-memory response (a mock transport)
            chunks.append(response.content)
        else:
            async with asyncio.timeout_at(deadline):
                async for chunk in response.aiter_raw():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= body_limit:
                        break
    except (TimeoutError, httpx.HTTPError, httpx.StreamError):
        pass  # the status decided the outcome; the body is only for the log
    finally:
        await response.aclose()
    return PinnedResponse(response.status_code, b"".join(chunks)[:body_limit])
