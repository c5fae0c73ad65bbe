"""Signed callbacks and pending transactions for payment tests (merchants and terminals: ``tests/onboarding.py``)."""

from __future__ import annotations

import msgspec

from qris_soundbox.tools.api import callback_body, callback_headers
from tests.support import WEBHOOK_SECRET, RunningPlatform

__all__ = ["callback_body", "pending_transaction", "post_callback", "signed_headers"]


def signed_headers(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    return callback_headers(secret, body, timestamp)


async def post_callback(running: RunningPlatform, body: dict, **header_kwargs: object):
    raw = msgspec.json.encode(body)
    return await running.http.post(
        "/integrations/qris/callback", content=raw, headers=signed_headers(raw, **header_kwargs)
    )


async def pending_transaction(running: RunningPlatform, terminal_id: str, amount: int) -> str:
    from qris_soundbox.core.payments import transactions as txns

    platform = running.platform
    async with platform.db.transaction() as conn:
        terminal = await txns.payable_terminal(conn, terminal_id)
        row = await txns.create_transaction(
            conn, txns.new_transaction(terminal, kind="dynamic", amount=amount, source="admin")
        )
    return row["id"]
