"""A signed callback's ``paid_at`` must be a plausible payment time (issue 23, finding 7).

Before: ``paid_at`` 9999-12-31 and 1970 were accepted and booked. Now it must
fall between 2019-01-01 (QRIS began) and five minutes past now (the callback
timestamp's own tolerance); outside: ``400 validation_error`` naming the
field, and nothing written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import RunningPlatform


async def _written(running: RunningPlatform, body: dict) -> int:
    async with running.platform.db.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT (SELECT count(*) FROM acquirer_callbacks WHERE event_id = $1)"
            " + (SELECT count(*) FROM transactions WHERE provider_reference = $2)",
            body["event_id"],
            body["provider_reference"],
        )


@pytest.mark.parametrize(
    "paid_at",
    [
        "9999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        "2018-12-31T23:59:59+07:00",
        (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    ],
    ids=["year-9999", "epoch", "before-qris", "an-hour-ahead"],
)
async def test_an_implausible_paid_at_is_refused_and_nothing_is_written(running: RunningPlatform, paid_at: str) -> None:
    ids = await onboarded_terminal(running)
    body = callback_body(amount=10_000, terminal_id=ids["terminal_id"]) | {"paid_at": paid_at}
    response = await post_callback(running, body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"] == {"field": "paid_at"}
    assert await _written(running, body) == 0


async def test_a_paid_at_a_minute_ahead_or_a_week_ago_is_accepted(running: RunningPlatform) -> None:
    # A little clock skew and a late delivery are normal: the window must not refuse them.
    ids = await onboarded_terminal(running)
    for offset in (timedelta(minutes=1), -timedelta(days=7)):
        body = callback_body(amount=10_000, terminal_id=ids["terminal_id"]) | {
            "paid_at": (datetime.now(UTC) + offset).isoformat()
        }
        response = await post_callback(running, body)
        assert response.status_code == 200, response.text
