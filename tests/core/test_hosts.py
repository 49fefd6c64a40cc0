"""`gateway.allowedHosts`: which Host values bastion answers for."""

from __future__ import annotations

import pytest

from bastion.core.hosts import AllowedHosts, host_pattern_problem

HOSTS = AllowedHosts.of(["App.Example.com", "*.svc.example.net", "10.0.0.5", "[::1]"])


@pytest.mark.parametrize(
    "host",
    [
        "app.example.com",
        "APP.example.com:8443",
        "app.example.com.",  # the root label spelt out
        "api.svc.example.net",
        "a.b.svc.example.net:80",
        "10.0.0.5:8080",
        "[::1]:8080",
        "[0:0::1]",  # the same address spelt otherwise
    ],
)
def test_a_named_host_is_answered(host: str) -> None:
    assert HOSTS.permits(host)


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "app.example.com.evil.example",  # a suffix of the name, not the name
        "evilapp.example.com",
        "svc.example.net",  # *.svc.example.net names what is under it, not itself
        "evilsvc.example.net",
        "10.0.0.6",
        "010.0.0.5",  # not an address at all, and no name it could be
        "[::2]",
    ],
)
def test_any_other_host_is_not(host: str) -> None:
    assert not HOSTS.permits(host)


def test_none_configured_answers_every_host_and_no_host_is_answered() -> None:
    assert AllowedHosts().permits("anything.example") and not AllowedHosts().active
    assert HOSTS.permits(None)  # HTTP/1.0 without Host: no X-Forwarded-Host to poison


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("*", "leave gateway.allowedHosts empty to answer every host"),
        ("app.example.com:443", "must be a host name or an IP address, without a port"),
        ("*.10.0.0.1", "a wildcard names DNS names only, not addresses"),
        ("app example.com", "must be a host name (example.com), *. and a host name, or an IP"),
        ("*.", "must be a host name (example.com), *. and a host name, or an IP"),
        ("-app.example.com", "must be a host name (example.com), *. and a host name, or an IP"),
    ],
)
def test_a_pattern_that_names_no_host_is_refused(pattern: str, problem: str) -> None:
    assert (host_pattern_problem(pattern) or "").startswith(problem)


@pytest.mark.parametrize("pattern", ["app.example.com", "*.example.com", "::1", "[::1]", "a_b.svc"])
def test_a_host_pattern_is_accepted(pattern: str) -> None:
    assert host_pattern_problem(pattern) is None
