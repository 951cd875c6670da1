"""An API key's IP allowlist: how the dashboard's text becomes networks, how the stored column
is read back, and where authenticate() refuses an address outside it (after the key lookup,
before any signature is checked or the replay cache is touched)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest
from tests.auth.test_auth_verify import (
    API_KEY,
    NOW,
    V2_POST,
    Lookup,
    creds,
    fails,
    post,
    post_headers,
)

from stablegate.auth.ip_allowlist import (
    MAX_ENTRIES,
    InvalidIpAllowlist,
    checked_ip_allowlist,
    ip_allowed,
    load_ip_allowlist,
    stored_ip_allowlist,
)
from stablegate.auth.replay import MemoryReplayStore
from stablegate.auth.verify import KeyCredentials, authenticate
from stablegate.clock import FakeClock


def test_entries_are_normalised_in_order_without_duplicates() -> None:
    typed = (
        " 203.0.113.7\r\n10.1.2.3/8,2001:DB8:0:0::1/48  ::ffff:192.0.2.1\n"
        "::ffff:198.51.100.0/120, 203.0.113.7/32, ::1, 0.0.0.0/0\n"
    )
    assert checked_ip_allowlist(typed) == [
        "203.0.113.7/32",
        "10.0.0.0/8",
        "2001:db8::/48",
        "192.0.2.1/32",  # IPv4-mapped IPv6 is the IPv4 address, as client_ip computes it
        "198.51.100.0/24",
        "::1/128",
        "0.0.0.0/0",
    ]
    assert checked_ip_allowlist("") == checked_ip_allowlist(" \n, ") == []
    assert stored_ip_allowlist([]) is None
    assert stored_ip_allowlist(["10.0.0.0/8", "::1/128"]) == "10.0.0.0/8,::1/128"


@pytest.mark.parametrize(
    "entry",
    ["example.com", "10.0.0.0/33", "1.2.3", "01.2.3.4", "fe80::1%eth0", "fe80::/64%1", "::g", "/8"],
)
def test_anything_but_an_address_or_network_is_refused_by_name(entry: str) -> None:
    with pytest.raises(InvalidIpAllowlist) as refused:
        checked_ip_allowlist(f"10.0.0.1\n{entry}\n10.0.0.2")
    assert refused.value.code == "invalid_ip_allowlist" and refused.value.status == 400
    assert refused.value.entry == entry


def test_at_most_fifty_entries_and_4000_characters() -> None:
    fifty = [f"10.0.{i}.0/24" for i in range(MAX_ENTRIES)]
    assert checked_ip_allowlist("\n".join(fifty)) == fifty
    # Duplicates are not counted twice.
    assert len(checked_ip_allowlist("\n".join(fifty + fifty))) == MAX_ENTRIES
    for text in ("\n".join([*fifty, "10.1.0.0/24"]), " " * 4001):
        with pytest.raises(InvalidIpAllowlist) as refused:
            checked_ip_allowlist(text)
        assert refused.value.entry == ""


def test_the_stored_list_is_read_back_and_a_broken_one_allows_less() -> None:
    assert load_ip_allowlist(None) is None
    assert load_ip_allowlist("10.0.0.0/8,2001:db8::/48") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/48"),
    )
    # Edited by hand into something unreadable: those entries allow nothing.
    assert load_ip_allowlist("nonsense,10.0.0.0/8") == (ipaddress.ip_network("10.0.0.0/8"),)
    assert load_ip_allowlist("nonsense") == ()
    assert not ip_allowed((), "10.0.0.1")


def test_which_addresses_are_allowed() -> None:
    networks = load_ip_allowlist("203.0.113.0/24,2001:db8:1::/64,192.0.2.1/32")
    assert ip_allowed(None, "198.51.100.1") and ip_allowed(None, None)
    for ip in ("203.0.113.0", "203.0.113.255", "2001:db8:1::ffff", "192.0.2.1", "::ffff:192.0.2.1"):
        assert ip_allowed(networks, ip), ip
    for ip in ("203.0.114.0", "2001:db8:2::1", "192.0.2.2", "unknown", "", None, "::"):
        assert not ip_allowed(networks, ip), ip


def _allowlisted(allowlist: str) -> KeyCredentials:
    return replace(creds(), ip_allowlist=load_ip_allowlist(allowlist))


class CountingReplay(MemoryReplayStore):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.claims = 0

    async def claim(self, key: str, ttl_ms: int) -> bool:
        self.claims += 1
        return await super().claim(key, ttl_ms)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start_ms=NOW)


async def test_an_address_outside_the_list_is_refused_before_signatures_and_replay(
    clock: FakeClock,
) -> None:
    replay = CountingReplay(clock)
    lookup = Lookup(_allowlisted("203.0.113.0/24,2001:db8::/32"))
    signed = post(post_headers(**{"BlockATM-Signature-V2": V2_POST}))

    async def run(ip: str | None, req: object = signed, *, require: bool = True) -> object:
        return await authenticate(
            req,  # type: ignore[arg-type]
            lookup,
            replay,
            clock,
            require_signature=require,
            client_ip=ip,
        )

    for ip in ("198.51.100.1", "2001:db9::1", None, "unknown"):
        await fails(run(ip), 403, "ip_not_allowed")
    assert replay.claims == 0
    # A wrong signature from outside is the same 403: the signature is not even looked at.
    forged = post(post_headers(**{"BlockATM-Signature-V2": "0" * 64}))
    await fails(run("198.51.100.1", forged), 403, "ip_not_allowed")
    # A read with the key alone is refused from outside too.
    unsigned = post({"BlockATM-API-Key": API_KEY})
    await fails(run("198.51.100.1", unsigned, require=False), 403, "ip_not_allowed")
    assert replay.claims == 0

    # From inside, the very same signed request is accepted (it was never claimed), once.
    result = await run("2001:db8:ffff::1")
    assert result.signed  # type: ignore[attr-defined]
    assert replay.claims == 1
    await fails(run("203.0.113.5"), 401, "replayed_request")
    await fails(run("203.0.113.5", forged), 401, "invalid_signature")


async def test_unknown_keys_answer_as_before_whatever_the_address(clock: FakeClock) -> None:
    lookup = Lookup(_allowlisted("203.0.113.0/24"), api_key="ak_someone_else")
    signed = post(post_headers(**{"BlockATM-Signature-V2": V2_POST}))
    await fails(
        authenticate(
            signed,
            lookup,
            MemoryReplayStore(clock),
            clock,
            require_signature=True,
            client_ip="198.51.100.1",
        ),
        401,
        "invalid_api_key",
    )
