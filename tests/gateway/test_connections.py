"""The connection counter behind gateway.connections: who is capped, by what, and release."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import textwrap

import pytest

from bastion.config import parse_config
from bastion.errors import ConfigError
from bastion.gateway.connections import (
    REPORT_EVERY,
    ConnectionCounter,
    ConnectionLimits,
    client_key,
)
from bastion.gateway.serving import FILES_BESIDE_CONNECTIONS

PROXY = ipaddress.ip_network("10.0.0.0/8")


def counter(max_open: int = 10, per_client: int | None = 2) -> ConnectionCounter:
    return ConnectionCounter(ConnectionLimits(max_open, per_client, (PROXY,)))


def test_one_client_is_held_to_its_share_and_others_are_not() -> None:
    connections = counter()
    assert [connections.admit("192.0.2.1") for _ in range(3)] == [None, None, "per_client"]
    assert connections.admit("192.0.2.2") is None
    assert (connections.open, connections.held_by("192.0.2.1")) == (3, 2)


def test_release_gives_the_place_back() -> None:
    connections = counter()
    connections.admit("192.0.2.1")
    connections.admit("192.0.2.1")
    connections.release("192.0.2.1")
    assert connections.admit("192.0.2.1") is None
    for _ in range(2):
        connections.release("192.0.2.1")
    assert (connections.open, connections.held_by("192.0.2.1")) == (0, 0)


def test_the_total_caps_every_client_trusted_proxies_included() -> None:
    connections = counter(max_open=3)
    for peer in ("10.1.1.1", "10.1.1.1", "10.1.1.1"):
        assert connections.admit(peer) is None  # a trusted proxy has no per-client cap
    assert connections.admit("192.0.2.9") == "max"
    assert connections.admit("10.1.1.1") == "max"


def test_a_refused_connection_is_not_counted() -> None:
    connections = counter(max_open=10, per_client=1)
    connections.admit("192.0.2.1")
    assert connections.admit("192.0.2.1") == "per_client"
    assert connections.open == 1


def test_an_ipv6_host_cannot_escape_the_cap_by_changing_address_within_its_64() -> None:
    connections = counter()
    assert connections.admit("2001:db8:1:2::1") is None
    assert connections.admit("2001:db8:1:2:ffff::9") is None
    assert connections.admit("2001:db8:1:2:dead:beef::1") == "per_client"
    assert connections.admit("2001:db8:1:3::1") is None  # another /64 is another client


def test_ipv4_mapped_addresses_count_as_the_ipv4_client() -> None:
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    connections = counter()
    connections.admit("192.0.2.1")
    connections.admit("::ffff:192.0.2.1")
    assert connections.admit("192.0.2.1") == "per_client"


def test_a_peer_without_an_address_is_capped_by_the_total_only() -> None:
    connections = counter(max_open=2)
    assert [connections.admit(None), connections.admit("")] == [None, None]
    assert connections.admit(None) == "max"


def test_without_per_client_only_the_total_counts() -> None:
    connections = counter(max_open=3, per_client=None)
    assert [connections.admit("192.0.2.1") for _ in range(4)] == [None, None, None, "max"]


def test_refusals_are_reported_once_a_minute_with_their_number() -> None:
    connections = counter()
    assert connections.refused(100.0) == 1
    assert connections.refused(101.0) is None
    assert connections.refused(102.0) is None
    assert connections.refused(100.0 + REPORT_EVERY) == 3


def test_config_defaults_and_bounds() -> None:
    config = parse_config("{}", environ={})
    assert (config.gateway.connections.max, config.gateway.connections.per_client) == (10_000, 512)
    text = """
        gateway:
          connections: {max: 100, perClient: 200}
        """
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), environ={})
    assert [str(issue) for issue in caught.value.issues] == [
        "gateway.connections.perClient: must be at most max (100), the cap on all connections"
    ]
    text = """
        gateway:
          connections: {max: 0}
        """
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), environ={})
    assert [str(issue) for issue in caught.value.issues] == [
        "gateway.connections.max: must be greater than 0"
    ]


def _in_child(soft: int, hard: int, connections: int) -> tuple[str, int]:
    """raise_open_file_limit(connections) in a child process that starts at (soft, hard)."""
    code = textwrap.dedent(f"""
        import resource
        from bastion.gateway.serving import raise_open_file_limit
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
        print(raise_open_file_limit({connections}))
        print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    warning, soft_after = out.stdout.splitlines()
    return warning, int(soft_after)


def test_start_up_raises_the_open_file_limit_to_what_max_needs() -> None:
    assert _in_child(1024, 4096, 2000) == ("None", 2000 + FILES_BESIDE_CONNECTIONS)


def test_start_up_warns_when_the_hard_limit_is_short() -> None:
    warning, soft = _in_child(512, 1024, 10_000)
    assert soft == 1024
    assert warning == (
        "gateway.connections.max is 10000 but the open-file limit is 1024 (hard limit 1024); "
        "raise it (ulimit -n, LimitNOFILE=) or lower the cap"
    )
