"""Loose bounds (issue 23, finding 7): numbers as strings, absurd amounts, unbounded adjustments.

Before: ``{"amount": "100"}`` in an admin body answered 201 (Litestar converts bodies leniently)
while the acquirer callback refused the same; a signed callback of Rp10,000,000,000 was accepted;
an adjustment could move ±10 billion. Now every JSON body is decoded strictly
(``control_plane/middleware.strict_body``), no amount goes above ``AMOUNT_CEILING``
(Rp1,000,000,000, held by the database too) and an adjustment is at most
``FINANCE_MAX_ADJUSTMENT`` (Rp100,000,000 by default) either way.
"""

from __future__ import annotations

import asyncpg
import pytest

from tests.finance.helpers import batch_for, merchant_with_payments
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import RunningPlatform


def _refused_field(answer: object, key: str) -> None:
    assert answer.status_code == 400, answer.text  # type: ignore[attr-defined]
    error = answer.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "validation_error", error
    assert [item["key"] for item in error["details"]] == [key], error


async def test_admin_bodies_refuse_numbers_and_booleans_given_as_strings(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    dynamic = {"terminal_id": ids["terminal_id"], "amount": "100"}
    answer = await running.http.post("/admin/transactions", json=dynamic, headers=running.admin_headers)
    _refused_field(answer, "amount")
    merchant = await running.http.post(
        "/admin/merchants", json={"name": "Toko Str", "city": "Solo", "fee_bps": "50"}, headers=running.admin_headers
    )
    _refused_field(merchant, "fee_bps")
    async with running.platform.db.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM merchants WHERE name = 'Toko Str'") == 0
    # The same bodies with real numbers are taken.
    taken = await running.http.post(
        "/admin/transactions", json=dynamic | {"amount": 100}, headers=running.admin_headers
    )
    assert taken.status_code == 201, taken.text


async def test_an_unauthenticated_bad_body_is_still_401_first(running: RunningPlatform) -> None:
    # Strict decoding runs after the guard: it tells a stranger nothing about the body's shape.
    answer = await running.http.post("/admin/transactions", json={"terminal_id": "x", "amount": "100"})
    assert answer.status_code == 401, answer.text


@pytest.mark.parametrize("amount", [1_000_000_001, 10_000_000_000])
async def test_a_signed_callback_of_an_absurd_amount_is_refused_and_nothing_is_written(
    running: RunningPlatform, amount: int
) -> None:
    ids = await onboarded_terminal(running)
    body = callback_body(amount=amount, terminal_id=ids["terminal_id"])
    answer = await post_callback(running, body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error" and error["details"] == {"field": "amount"}, error
    assert "1000000000" in error["message"]
    async with running.platform.db.pool.acquire() as conn:
        written = await conn.fetchval(
            "SELECT (SELECT count(*) FROM acquirer_callbacks WHERE event_id = $1)"
            " + (SELECT count(*) FROM transactions WHERE provider_reference = $2)",
            body["event_id"],
            body["provider_reference"],
        )
    assert written == 0


async def test_adjustments_are_bounded_in_the_service_and_in_the_database(running: RunningPlatform) -> None:
    paid = await merchant_with_payments(running, [100_000], fee_bps=50)
    batch = await batch_for(running, paid["merchant_id"])
    path = f"/admin/settlement-batches/{batch['id']}/adjustments"
    for amount in (100_000_001, 10_000_000_000):
        answer = await running.http.post(
            path, json={"adjustment_type": "bonus", "amount": amount, "reason": "x"}, headers=running.admin_headers
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["details"] == {"field": "amount", "max_amount": 100_000_000}
    as_text = await running.http.post(
        path, json={"adjustment_type": "bonus", "amount": "100", "reason": "x"}, headers=running.admin_headers
    )
    _refused_field(as_text, "amount")
    taken = await running.http.post(
        path, json={"adjustment_type": "bonus", "amount": 100_000_000, "reason": "x"}, headers=running.admin_headers
    )
    assert taken.status_code == 201, taken.text
    # Past the service: the database refuses an amount above the ceiling for any writer.
    async with running.platform.db.transaction() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO settlement_batch_adjustments (id, batch_id, merchant_id, adjustment_type, amount,"
                " reason, actor_type, actor_id) VALUES ('sadj_big', $1, $2, 'bonus', 1000000001, 'x', 'system', 'x')",
                batch["id"],
                paid["merchant_id"],
            )
