"""The client's address behind trusted proxies (X-Forwarded-For)."""

from __future__ import annotations

import pytest

from relay.core.forwarded import ClientAddresses, parse_networks, source_key


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert ClientAddresses([]).resolve("127.0.0.1", ["203.0.113.7"]) == "127.0.0.1"


def test_a_peer_not_listed_cannot_pick_its_address() -> None:
    resolver = ClientAddresses(["10.0.0.5"])
    assert resolver.resolve("10.0.0.6", ["203.0.113.7"]) == "10.0.0.6"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    resolver = ClientAddresses(["10.0.0.0/24", "192.0.2.1"])
    # The client wrote 198.51.100.1 itself; the proxies saw 203.0.113.7.
    header = "198.51.100.1, 203.0.113.7, 192.0.2.1"
    assert resolver.resolve("10.0.0.5", [header]) == "203.0.113.7"
    # Two header lines are one list, in order.
    assert resolver.resolve("10.0.0.5", ["198.51.100.1", "203.0.113.7"]) == "203.0.113.7"


def test_hops_with_ports_brackets_and_mapped_addresses() -> None:
    resolver = ClientAddresses(["127.0.0.1"])
    assert resolver.resolve("::ffff:127.0.0.1", ["203.0.113.7:5555"]) == "203.0.113.7"
    assert resolver.resolve("127.0.0.1", ["[2001:db8::1]:443"]) == "2001:db8::1"


def test_garbage_or_no_header_leaves_the_nearest_trusted_hop() -> None:
    resolver = ClientAddresses(["127.0.0.1", "10.0.0.0/8"])
    assert resolver.resolve("127.0.0.1", []) == "127.0.0.1"
    assert resolver.resolve("127.0.0.1", ["unknown, 10.1.2.3"]) == "10.1.2.3"
    assert resolver.resolve("127.0.0.1", ["203.0.113.7, unix:"]) == "127.0.0.1"


def test_ipv6_sources_are_counted_per_64() -> None:
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9")
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")
    assert source_key("203.0.113.7") == "203.0.113.7"


def test_bad_entries_are_named() -> None:
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        parse_networks(["10.0.0.1", "10.0.0.300"])
