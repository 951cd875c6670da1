"""Client IP from the peer and X-Forwarded-For, and the ban subject (IPv6 /64)."""

from __future__ import annotations

import pytest

from stablegate.auth.client_ip import ban_subject, client_ip, forwarded_for, parse_trusted_proxies

TRUSTED = parse_trusted_proxies(["10.0.0.0/8", "127.0.0.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "1.1.1.1", "203.0.113.5"),  # untrusted peer: header ignored
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.7", "198.51.100.7"),  # spoofed left entry ignored
        ("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.1.1.1", "198.51.100.7"),  # trusted hop skipped
        ("10.0.0.2", "10.9.9.9, 10.1.1.1", "10.9.9.9"),  # all trusted: the farthest
        ("10.0.0.2", "garbage, 10.1.1.1", "10.1.1.1"),
        ("10.0.0.2", "198.51.100.7:4711", "198.51.100.7"),
        ("10.0.0.2", "[2001:db8::1]:443", "2001:db8::1"),
        ("10.0.0.2", " , 198.51.100.7 ,", "198.51.100.7"),
        ("127.0.0.1", "2001:db8::5", "2001:db8::5"),
        ("fd00::1", "198.51.100.7", "198.51.100.7"),
        ("::ffff:10.0.0.2", "198.51.100.7", "198.51.100.7"),  # mapped peer is the v4 proxy
        ("::ffff:203.0.113.9", None, "203.0.113.9"),
        ("10.0.0.2", "::ffff:198.51.100.7", "198.51.100.7"),
        (None, "1.1.1.1", "unknown"),
        ("", None, "unknown"),
    ],
)
def test_client_ip(peer: str | None, xff: str | None, expected: str) -> None:
    assert client_ip(peer, xff, TRUSTED) == expected


def test_no_trusted_proxies_means_peer() -> None:
    assert client_ip("10.0.0.2", "198.51.100.7", []) == "10.0.0.2"


@pytest.mark.parametrize(
    ("ip", "subject"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("unknown", "unknown"),
    ],
)
def test_ban_subject(ip: str, subject: str) -> None:
    assert ban_subject(ip) == subject


def test_two_addresses_in_one_64_share_a_subject() -> None:
    assert ban_subject("2001:db8:0:1::a") == ban_subject("2001:db8:0:1:8000::b")
    assert ban_subject("2001:db8:0:1::a") != ban_subject("2001:db8:0:2::a")


def test_every_forwarded_for_line_counts() -> None:
    # The client sent its own line; the trusted proxy appended the real address as a second line.
    lines = ["6.6.6.6", "198.51.100.7"]
    assert forwarded_for(lines) == "6.6.6.6,198.51.100.7"
    assert client_ip("127.0.0.1", forwarded_for(lines), TRUSTED) == "198.51.100.7"
    assert forwarded_for([]) is None
    assert client_ip("127.0.0.1", forwarded_for([]), TRUSTED) == "127.0.0.1"
