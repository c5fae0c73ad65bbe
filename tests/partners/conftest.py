"""A running platform whose partner notifications retry fast, for the partner tests."""

from __future__ import annotations

import pytest

from tests.support import PlatformFactory, RunningPlatform


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    return await platform_factory.start(
        partner_notify_backoff_ms=50,
        partner_notify_backoff_max_ms=200,
        partner_notify_timeout_ms=1_000,
        partner_notify_interval_ms=100,
        partner_notify_max_attempts=4,
    )
