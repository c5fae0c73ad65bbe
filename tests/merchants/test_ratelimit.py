"""Rate limits: the in-memory limiter, and the route opt every domain uses."""

from __future__ import annotations

import pytest

from qris_soundbox.core.config import load_settings
from qris_soundbox.core.errors import RateLimited
from qris_soundbox.core.ratelimit import Limit, RateLimiter, limits_from_settings
from tests.merchants.conftest import logged_in, unique
from tests.support import PlatformFactory


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_counts_per_bucket_and_key_and_resets_with_the_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"login": Limit(2, 60), "device": Limit(1, 10)}, clock=clock)
    limiter.count("login", "a")
    limiter.count("login", "a")
    with pytest.raises(RateLimited) as refused:
        limiter.count("login", "a")
    assert refused.value.retry_after_s == 60
    limiter.count("login", "b")  # another key
    limiter.count("device", "a")  # another bucket
    clock.now += 45
    with pytest.raises(RateLimited) as later:
        limiter.count("login", "a")
    assert later.value.retry_after_s == 15
    clock.now += 15
    limiter.count("login", "a")  # a new window


def test_finished_windows_are_swept() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"device": Limit(5, 1)}, clock=clock)
    for n in range(2000):
        limiter.count("device", f"k{n}")
        clock.now += 0.01
    assert len(limiter._windows) < 1100


def test_limits_come_from_the_rate_limit_variables() -> None:
    settings = load_settings(
        {"RATE_LIMIT_LOGIN_MAX": "7", "RATE_LIMIT_LOGIN_WINDOW_MS": "1500", "RATE_LIMIT_ENABLED": "false"}
    )
    limiter = RateLimiter(limits_from_settings(settings), enabled=settings.rate_limit_enabled)
    assert limiter.limits["login"] == Limit(7, 1.5)
    assert limiter.limits["login_ip"] == Limit(50, 1.5)
    assert set(limiter.limits) == {"login", "login_ip", "device", "device_auth", "admin_write", "callback", "partner"}
    for _ in range(20):
        limiter.count("login", "x")  # disabled: never refuses


async def test_admin_writes_are_limited_per_principal(platform_factory: PlatformFactory) -> None:
    limited = await platform_factory.start(rate_limit_admin_write_max=3)
    try:
        ops = await logged_in(limited, "admin", "ops")
        statuses = []
        for _ in range(4):
            response = await limited.http.post(
                "/admin/merchants", json={"name": unique("RL "), "city": "Garut"}, headers=ops.headers
            )
            statuses.append(response.status_code)
        assert statuses == [201, 201, 201, 429]
        assert response.json()["error"]["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
        # Reads are not admin writes; another principal has its own budget.
        assert (await limited.http.get("/admin/merchants", headers=ops.headers)).status_code == 200
        other = await limited.http.post(
            "/admin/merchants", json={"name": unique("RL "), "city": "Garut"}, headers=limited.admin_headers
        )
        assert other.status_code == 201
    finally:
        await platform_factory.stop(limited)


async def test_logins_from_one_ip_are_limited_whatever_the_email(platform_factory: PlatformFactory) -> None:
    limited = await platform_factory.start(rate_limit_login_max=10, rate_limit_login_ip_max=3)
    try:
        statuses = []
        for n in range(4):  # a new email each time: the IP+email limit alone would never trip
            response = await limited.http.post(
                "/admin/login", json={"email": f"spray{n}@y.test", "password": "nope nope"}
            )
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]
        assert response.json()["error"]["code"] == "rate_limited"
    finally:
        await platform_factory.stop(limited)


async def test_rate_limit_enabled_false_turns_limits_off(platform_factory: PlatformFactory) -> None:
    unlimited = await platform_factory.start(rate_limit_enabled=False, rate_limit_login_max=1)
    try:
        for _ in range(3):
            response = await unlimited.http.post("/admin/login", json={"email": "x@y.test", "password": "nope nope"})
            assert response.status_code == 401
    finally:
        await platform_factory.stop(unlimited)
