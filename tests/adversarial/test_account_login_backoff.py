"""Wrong passwords for one account from many addresses meet a per-account backoff (issue 23, finding 5).

Before: with ``TRUST_PROXY=true``, 40 wrong passwords on one account from 40
client addresses all got 401, never 429 (the login limits count per address).
Now past ``LOGIN_BACKOFF_FREE_FAILURES`` each failure makes the account wait
(1 s, doubling, capped at ``LOGIN_BACKOFF_MAX_SECONDS``), whatever address
the next attempt comes from; the owner gets in once the wait ends, and a
successful login starts the count again.
"""

from __future__ import annotations

import pytest

from tests.actors import PASSWORD, create_user
from tests.devices.helpers import eventually
from tests.support import PlatformFactory, RunningPlatform

FREE = 3
MAX_WAIT_S = 2


@pytest.fixture
async def proxied(platform_factory: PlatformFactory) -> RunningPlatform:
    # The test client connects from 127.0.0.1: it plays the reverse proxy (TRUSTED_PROXIES' default, loopback).
    running = await platform_factory.start(
        roles=frozenset({"api"}),
        trust_proxy=True,
        login_backoff_free_failures=FREE,
        login_backoff_max_seconds=MAX_WAIT_S,
    )
    yield running
    await platform_factory.stop(running)


async def _login(running: RunningPlatform, email: str, password: str, address: str):
    return await running.http.post(
        "/admin/login", json={"email": email, "password": password}, headers={"X-Forwarded-For": address}
    )


async def test_one_account_guessed_from_forty_addresses_is_slowed_and_its_owner_still_gets_in(
    proxied: RunningPlatform,
) -> None:
    email, _ = await create_user(proxied, "admin", "ops")
    answers = [await _login(proxied, email, f"wrong guess {n}", f"198.51.100.{n}") for n in range(1, 41)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:FREE] == [401] * FREE, statuses
    assert set(statuses) == {401, 429}, statuses
    assert statuses.count(429) > statuses.count(401), statuses  # most of the guesses never reach the password
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(answer.headers["retry-after"]) <= MAX_WAIT_S

    # The cap keeps the owner from being locked out: once the wait ends the right password works.
    # (Each try from its own address: the per-address login limit would count the polling itself.)
    tries = iter(range(1, 10_000))

    async def owner_gets_in() -> bool:
        return (await _login(proxied, email, PASSWORD, f"192.0.2.{next(tries) % 250 + 1}")).status_code == 200

    assert await eventually(owner_gets_in, timeout=15)
    # A success starts the count again: the next few failures are plain 401s.
    again = [(await _login(proxied, email, "wrong", f"198.51.100.{n}")).status_code for n in range(50, 50 + FREE)]
    assert again == [401] * FREE


async def test_an_unknown_email_is_slowed_like_a_real_one(proxied: RunningPlatform) -> None:
    # Keyed by the email tried, so a 429 says nothing about whether the account exists.
    statuses = [
        (await _login(proxied, "nobody-here@admin.test", "guess", f"203.0.113.{n}")).status_code
        for n in range(1, FREE + 3)
    ]
    assert statuses[:FREE] == [401] * FREE
    assert 429 in statuses[FREE:], statuses
