"""A dynamic QR issued by the merchant's SNAP acquirer (``qr-mpm-generate``, SPEC §13).

``dynamic_qr.issue_dynamic_qr`` comes here when the terminal's merchant names an acquirer of
protocol ``snap``: the acquirer owns the merchant's NMID, so the QR content is its own. The
call is made before anything is written; its answer is checked like any outside input (a
reference, a QRIS that parses, for the very amount asked); then the transaction and its
``acquirer_qrs`` row (the acquirer's reference, the poller's bookkeeping) are one statement.

``partnerReferenceNo`` is the platform's transaction id: a notification or query answer names
it back as ``originalPartnerReferenceNo``, and a retried generate carries the same one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import msgspec

from qris_soundbox.core.acquirers.clients import AcquirerClients
from qris_soundbox.core.acquirers.errors import AcquirerAnswerInvalid, AcquirerNotUsable
from qris_soundbox.core.db import Connection, fetch_one
from qris_soundbox.core.payments.transactions import NewTransaction
from qris_soundbox.core.qris import QrisError, parse_qris


async def issue_at_acquirer(
    conn: Connection, acquirers: AcquirerClients, terminal: asyncpg.Record, transaction: NewTransaction
) -> asyncpg.Record:
    """The pending transaction of a QR the acquirer generated; nothing is written when the call fails."""
    code = terminal["acquirer_code"]
    merchant_id = terminal["acquirer_merchant_id"]
    if merchant_id is None:
        raise AcquirerNotUsable(
            f"merchant {terminal['merchant_id']} has no acquirer_merchant_id at acquirer {code}",
            details={"merchant_id": terminal["merchant_id"], "acquirer_code": code},
        )
    client = await acquirers.client(conn, code, terminal["acquirer_updated_at"])
    assert transaction.expires_at is not None
    validity_s = max(1, round((transaction.expires_at - datetime.now(UTC)).total_seconds()))
    answer = await client.generate(
        partner_reference=transaction.id,
        amount=transaction.amount,
        merchant_id=merchant_id,
        terminal_id=terminal["acquirer_terminal_id"],
        validity_s=validity_s,
    )
    reference, content = answer.get("referenceNo"), answer.get("qrContent")
    if not isinstance(reference, str) or not 1 <= len(reference) <= 64:
        raise AcquirerAnswerInvalid(f"acquirer {code} answered a generate without a usable referenceNo")
    try:
        amount = parse_qris(content).amount if isinstance(content, str) else None
    except QrisError as exc:
        raise AcquirerAnswerInvalid(f"acquirer {code} answered a qrContent that is no QRIS: {exc.message}") from None
    if amount != transaction.amount:
        raise AcquirerAnswerInvalid(
            f"acquirer {code} answered a QR for {amount}, not {transaction.amount}",
            details={"expected": transaction.amount, "received": amount},
        )
    try:
        return await fetch_one(
            conn, "payment_create_acquired", msgspec.structs.replace(transaction, qr_payload=content), code, reference
        )
    except asyncpg.UniqueViolationError:
        raise AcquirerAnswerInvalid(f"acquirer {code} answered a referenceNo it gave another QR") from None
