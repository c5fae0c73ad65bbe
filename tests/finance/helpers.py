"""Payments generated through the real callback API, and principals for role tests."""

from __future__ import annotations

import csv
import io
import itertools

from tests.actors import Client, bearer, logged_in
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import ADMIN_TOKEN, RunningPlatform


async def pay(running: RunningPlatform, terminal_id: str, amount: int, *, paid_at: str | None = None) -> str:
    """A static-QR payment through the signed callback: one paid transaction, three ledger rows."""
    body = callback_body(amount=amount, terminal_id=terminal_id)
    if paid_at is not None:
        body["paid_at"] = paid_at
    response = await post_callback(running, body)
    assert response.status_code == 200, response.text
    return response.json()["transaction_id"]


_account_numbers = itertools.count(1)


async def set_payout_account(
    running: RunningPlatform,
    merchant_id: str,
    *,
    bank_code: str = "014",
    account_number: str | None = None,
    account_name: str = "Warung Test",
    headers: dict | None = None,
):
    """PUT the merchant's payout account (a fresh 10-digit BCA number unless given); the raw response."""
    number = account_number or f"{next(_account_numbers):010d}"
    return await running.http.put(
        f"/admin/merchants/{merchant_id}/payout-account",
        json={"bank_code": bank_code, "account_number": number, "account_name": account_name},
        headers=headers or running.admin_headers,
    )


async def payee_terminal(running: RunningPlatform, *, fee_bps: int | None = 70) -> dict:
    """An onboarded merchant and terminal whose merchant has a payout account (``payout_account``)."""
    ids = await onboarded_terminal(running, fee_bps=fee_bps)
    response = await set_payout_account(running, ids["merchant_id"])
    assert response.status_code == 200, response.text
    ids["payout_account"] = response.json()
    return ids


async def merchant_with_payments(running: RunningPlatform, amounts: list[int], *, fee_bps: int | None = 70) -> dict:
    ids = await payee_terminal(running, fee_bps=fee_bps)
    ids["transaction_ids"] = [await pay(running, ids["terminal_id"], amount) for amount in amounts]
    return ids


async def ledger_sums(running: RunningPlatform, merchant_id: str) -> dict[str, int]:
    rows = await running.platform.db.pool.fetch(
        "SELECT entry_type, sum(amount)::bigint AS total FROM ledger_entries WHERE merchant_id = $1 GROUP BY entry_type",
        merchant_id,
    )
    return {r["entry_type"]: r["total"] for r in rows}


async def create_batches(running: RunningPlatform, body: dict | None = None, headers: dict | None = None) -> list[dict]:
    response = await running.http.post(
        "/admin/settlement-batches", json=body or {}, headers=headers or running.admin_headers
    )
    assert response.status_code == 201, response.text
    return response.json()["items"]


async def batch_for(running: RunningPlatform, merchant_id: str) -> dict:
    batches = await create_batches(running, {"merchant_id": merchant_id})
    assert len(batches) == 1, batches
    return batches[0]


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def admin_logins(running: RunningPlatform, *roles: str) -> dict[str, Client]:
    """Real admin users of these roles, logged in through POST /admin/login."""
    return {role: await logged_in(running, "admin", role) for role in roles}


__all__ = ["ADMIN_TOKEN", "Client", "bearer", "onboarded_terminal", "pay"]
