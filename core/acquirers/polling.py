"""Job ``acquirers.poll``: ``qr-mpm-query`` for live acquirer-issued QRs, ``qr-mpm-cancel`` for ended ones.

A notification can be lost; a QR the acquirer issued is therefore also asked about every
``ACQUIRER_QUERY_INTERVAL_MS`` while it is unpaid here. A paid (or failed) answer becomes a
``CallbackNotification`` and runs ``callbacks.handle_callback`` with source ``acquirer_query``:
the same path, and the same event id, as the acquirer's notification of that payment
(``snap:<code>:<referenceNo>:<status>``), so whichever of the two comes second is a replay.

When the QR ended here unpaid (the sweep expired it, or it failed), it is asked about once more
(a payment in its last seconds still counts, as ``paid_after_expired``), then cancelled at the
acquirer, so it cannot be paid there any more.

Several workers share the table: each round claims at most ``ACQUIRER_QUERY_BATCH`` due rows by
moving their ``next_query_at`` (``FOR UPDATE SKIP LOCKED``), so one QR is asked about by one node
per interval. The calls of a round run concurrently, each bounded by the client's timeout.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from qris_soundbox.core.acquirers.service import DEFAULT_SNAP_STATUS_MAP
from qris_soundbox.core.acquirers.snap_out import AcquirerRefused
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.payments import callbacks
from qris_soundbox.core.payments.schemas import CallbackNotification
from qris_soundbox.core.snap import amounts, codes, timestamps

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)
# An ended QR whose cancel keeps failing (the acquirer is down) is given up after this long: by then it
# has long expired at the acquirer as well.
GIVE_UP_AFTER = timedelta(days=1)


async def poll_due(platform: PlatformContext) -> int:
    """One round; how many QRs it looked at."""
    settings = platform.settings
    async with platform.db.pool.acquire() as conn:
        due = await conn.fetch(
            QUERIES["claim_acquirer_qrs_due"], settings.acquirer_query_batch, settings.acquirer_query_interval_ms
        )
    await asyncio.gather(*(_poll_one(platform, row) for row in due))
    return len(due)


async def _poll_one(platform: PlatformContext, qr: asyncpg.Record) -> None:
    try:
        await _poll(platform, qr)
    except DomainError as error:
        # An unreachable acquirer, an open circuit, a refusal: logged, the QR is asked about next round.
        log.warning(
            "acquirer poll failed",
            extra={"transaction_id": qr["transaction_id"], "acquirer": qr["acquirer_code"], "code": error.code},
        )


async def _poll(platform: PlatformContext, qr: asyncpg.Record) -> None:
    db = platform.db
    transaction_id = qr["transaction_id"]
    if qr["status"] == "paid":
        await _done(platform, transaction_id, cancelled=False)
        return
    async with db.pool.acquire() as conn:
        client = await platform.acquirer_clients.client(conn, qr["acquirer_code"], qr["acquirer_updated_at"])
    answer = await client.query(original_reference=qr["acquirer_reference"])
    status = _status_of(qr, answer)
    async with db.pool.acquire() as conn:
        await conn.execute(QUERIES["acquirer_qr_queried"], transaction_id, answer.get("latestTransactionStatus"))
    if status in ("paid", "failed", "expired"):
        # Settled at the acquirer: applied here (or refused and recorded there), nothing left to ask.
        await _apply(platform, qr, answer, status)
        await _done(platform, transaction_id, cancelled=False)
        return
    if qr["status"] == "pending":
        return  # still live: asked again next round
    # Ended here (or there) unpaid: it must not stay payable at the acquirer.
    if qr["expires_at"] is not None and datetime.now(UTC) - qr["expires_at"] > GIVE_UP_AFTER:
        await _done(platform, transaction_id, cancelled=False)
        return
    try:
        await client.cancel(
            original_reference=qr["acquirer_reference"], partner_reference=transaction_id, reason="expired"
        )
    except AcquirerRefused:
        # It answered that there is nothing to cancel (already expired or unknown there): nothing left to do.
        await _done(platform, transaction_id, cancelled=False)
        return
    await _done(platform, transaction_id, cancelled=True)


def _status_of(qr: asyncpg.Record, answer: dict[str, Any]) -> str:
    """The platform's status for the answer's ``latestTransactionStatus``, by the acquirer's table."""
    reference = answer.get("originalReferenceNo")
    if reference is not None and reference != qr["acquirer_reference"]:
        raise AcquirerRefused(f"acquirer {qr['acquirer_code']} answered a query about another QR ({reference!r})")
    code = answer.get("latestTransactionStatus")
    status = (DEFAULT_SNAP_STATUS_MAP | dict(qr["status_map"])).get(code) if isinstance(code, str) else None
    if status is None:
        raise AcquirerRefused(f"acquirer {qr['acquirer_code']} answered latestTransactionStatus {code!r}")
    return status


async def _apply(platform: PlatformContext, qr: asyncpg.Record, answer: dict[str, Any], status: str) -> None:
    """The answer through the one payment path (a refusal there is recorded there)."""
    code = qr["acquirer_code"]
    amount_field = answer.get("amount") or {}
    try:
        amount = (
            amounts.rupiah(amount_field.get("value"), amount_field.get("currency", "IDR"))
            if isinstance(amount_field, dict) and "value" in amount_field
            else qr["amount"]
        )
    except codes.SnapError:
        raise AcquirerRefused(f"acquirer {code} answered a query with a malformed amount") from None
    paid_at = None
    if status == "paid":
        paid_time = answer.get("paidTime")
        paid_at = timestamps.parse(paid_time) if isinstance(paid_time, str) else None
        if paid_at is None or callbacks.paid_at_problem(paid_at) is not None:
            paid_at = datetime.now(UTC)
    info = answer.get("additionalInfo")
    rrn = info.get("rrn") if isinstance(info, dict) else None
    if not (isinstance(rrn, str) and 1 <= len(rrn) <= 64):
        rrn = None
    description = answer.get("transactionStatusDesc")
    notification = CallbackNotification(
        event_id=f"snap:{code}:{qr['acquirer_reference']}:{status}",
        status=status,  # type: ignore[arg-type]  # paid | failed | expired, checked by the caller
        amount=amount,
        currency="IDR",
        provider_reference=rrn or qr["acquirer_reference"],
        paid_at=paid_at,
        transaction_id=qr["transaction_id"],
        failure_reason=description[:256] if isinstance(description, str) and description else None,
    )
    actor = AuditActor(actor_type="acquirer", actor_id=code)
    try:
        result = await callbacks.handle_callback(
            platform.db, platform.settings, notification, actor, 0, "acquirer_query"
        )
    except DomainError as error:
        log.warning(
            "acquirer query answer refused",
            extra={"transaction_id": qr["transaction_id"], "acquirer": code, "code": error.code},
        )
        return
    if status == "paid" and not result.duplicate and paid_at is not None:
        lag = (datetime.now(UTC) - paid_at).total_seconds()
        platform.metrics.acquirer_notification_lag.labels(code, "acquirer_query").observe(max(0.0, lag))


async def _done(platform: PlatformContext, transaction_id: str, *, cancelled: bool) -> None:
    async with platform.db.pool.acquire() as conn:
        await conn.execute(QUERIES["acquirer_qr_done"], transaction_id, cancelled)
