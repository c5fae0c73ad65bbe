"""Behind a reverse proxy (``TRUST_PROXY``): the client IP is the right-most ``X-Forwarded-For`` hop that is
not a trusted proxy, so a client cannot pick the IP the login limit counts or the audit log records."""

from __future__ import annotations

import pytest

from qris_soundbox.control_plane.auth import forwarded_client, trusted_networks
from qris_soundbox.core.config import ConfigError, load_settings
from tests.support import PlatformFactory, RunningPlatform

LOOPBACK = trusted_networks(("127.0.0.1/32", "::1/128"))
INTERNAL = trusted_networks(("10.0.0.0/8", "127.0.0.1/32"))


@pytest.mark.parametrize(
    ("peer", "hops", "trusted", "client"),
    [
        # What the client wrote is on the left; the proxy appended the address it saw.
        ("127.0.0.1", ["6.6.6.6", "203.0.113.9"], LOOPBACK, "203.0.113.9"),
        # Two proxies of ours: skip both, stop at the first address that is not one.
        ("10.0.0.2", ["6.6.6.6", "198.51.100.7", "10.0.0.1"], INTERNAL, "198.51.100.7"),
        # A peer that is no trusted proxy: its header is not believed at all.
        ("198.51.100.20", ["203.0.113.9"], LOOPBACK, "198.51.100.20"),
        # Every hop trusted: the request came from inside; the left-most.
        ("10.0.0.2", ["10.0.0.9", "10.0.0.1"], INTERNAL, "10.0.0.9"),
        # A hop with a port, an IPv6 one in brackets.
        ("127.0.0.1", ["203.0.113.9:51234"], LOOPBACK, "203.0.113.9"),
        ("127.0.0.1", ["[2001:db8::7]:443"], LOOPBACK, "2001:db8::7"),
        # A hop that is no address: the walk ends at the trusted proxy that passed it on.
        ("127.0.0.1", ["203.0.113.9", "unknown"], LOOPBACK, "127.0.0.1"),
        # A dual-stack listener's IPv4 peer.
        ("::ffff:127.0.0.1", ["203.0.113.9"], LOOPBACK, "203.0.113.9"),
        # No header.
        ("127.0.0.1", [], LOOPBACK, "127.0.0.1"),
    ],
)
def test_the_right_most_untrusted_hop_is_the_client(peer: str, hops: list[str], trusted: tuple, client: str) -> None:
    assert forwarded_client(peer, hops, trusted) == client


async def failed_login(running: RunningPlatform, forwarded_for: str) -> int:
    answer = await running.http.post(
        "/admin/login",
        json={"email": "nobody@example.test", "password": "not-the-password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return answer.status_code


async def audited_ips(running: RunningPlatform) -> list[str | None]:
    """The IPs of the failed admin logins, newest first (the module's platforms share one database)."""
    rows = (
        await running.http.get(
            "/admin/audit-logs", params={"action": "admin.login.failed"}, headers=running.admin_headers
        )
    ).json()["items"]
    return [row["ip"] for row in rows]


@pytest.fixture(scope="module")
async def proxied(platform_factory: PlatformFactory) -> RunningPlatform:
    # The test client connects from 127.0.0.1: it plays the reverse proxy (TRUSTED_PROXIES' default, loopback).
    return await platform_factory.start(
        roles=frozenset({"api"}), trust_proxy=True, rate_limit_login_max=100, rate_limit_login_ip_max=3
    )


async def test_a_forged_left_most_hop_neither_dodges_the_login_limit_nor_lands_in_the_audit_log(
    proxied: RunningPlatform,
) -> None:
    # The same client (203.0.113.9, as the proxy saw it) claims another address on every attempt.
    statuses = [await failed_login(proxied, f"198.18.0.{attempt}, 203.0.113.9") for attempt in range(1, 6)]
    assert statuses[:3] == [401, 401, 401]
    assert statuses[3:] == [429, 429]
    assert (await audited_ips(proxied))[:3] == ["203.0.113.9"] * 3  # the three that got as far as a login


async def test_a_header_from_a_peer_that_is_no_trusted_proxy_is_ignored(platform_factory: PlatformFactory) -> None:
    direct = await platform_factory.start(roles=frozenset({"api"}), trust_proxy=True, trusted_proxies=("10.0.0.0/8",))
    try:
        assert await failed_login(direct, "203.0.113.9") == 401
        assert (await audited_ips(direct))[0] == "127.0.0.1"
    finally:
        await platform_factory.stop(direct)


def test_trusted_proxies_is_a_list_of_networks() -> None:
    settings = load_settings({"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7,fd00::/8"})
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.7/32", "fd00::/8")
    assert load_settings({}).trusted_proxies == ("127.0.0.1/32", "::1/128")
    for bad in ("proxy.internal", "10.0.0.0/33", " , "):
        with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
            load_settings({"TRUSTED_PROXIES": bad})
