"""The acquirer's signed payment callback (SPEC §4).

Order of work, and why:
1. The signature and timestamp are checked on the raw bytes before anything is
   parsed: an unsigned request learns nothing and changes nothing.
2. The callback is *claimed* first, by inserting its ``event_id`` and
   ``provider_reference`` under unique constraints. A concurrent replay blocks
   on that insert until the first commits, then finds the original and answers
   its stored response: one transaction, one ledger set, one announcement,
   however many replays race.
3. Rejections (amount mismatch, unknown transaction, paid twice...) roll the
   claim back; the reconciliation record and audit row are written afterwards
   in their own short transaction, so finance sees them and nothing else changed.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings, secret_list
from qris_soundbox.core.db import QUERIES, Database, fetch_one
from qris_soundbox.core.errors import DomainError, Unavailable
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.payments import transactions as txns
from qris_soundbox.core.payments.errors import (
    AlreadyPaid,
    AmountMismatch,
    CallbackSignatureInvalid,
    CallbackTimestampStale,
    MerchantNotActive,
    PaymentInputInvalid,
    TerminalNotFound,
    TransactionNotFound,
)
from qris_soundbox.core.payments.schemas import CallbackNotification, CallbackResult

TIMESTAMP_WINDOW_S = 300


def verify_signature(
    secrets: Sequence[str], timestamp: str | None, signature: str | None, body: bytes, now: float | None = None
) -> int:
    """The index (in ``INTEGRATION_WEBHOOK_SECRET``'s list) of the secret that signed ``body``; raises otherwise.

    Several secrets are valid at once while one is rotated. Every one is
    compared, in constant time and without stopping at a match, so the time
    taken says nothing about which secret (or how much of a signature) matched.
    """
    if not secrets:
        raise Unavailable("INTEGRATION_WEBHOOK_SECRET is not configured; callbacks cannot be verified")
    if not timestamp or not signature:
        raise CallbackSignatureInvalid("X-Callback-Timestamp and X-Callback-Signature are required")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise CallbackSignatureInvalid("X-Callback-Timestamp must be unix seconds") from None
    given = signature.strip().lower().encode()
    signed = timestamp.encode() + b"." + body
    matched = [
        hmac.compare_digest(hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest().encode(), given)
        for secret in secrets
    ]
    if not any(matched):
        raise CallbackSignatureInvalid("the callback signature does not match")
    # Checked after the signature, so the window cannot be probed without the secret.
    if abs((now if now is not None else time.time()) - sent_at) > TIMESTAMP_WINDOW_S:
        raise CallbackTimestampStale(f"the callback timestamp is more than {TIMESTAMP_WINDOW_S} s away from now")
    return matched.index(True)


def parse_notification(body: bytes) -> CallbackNotification:
    try:
        notification = msgspec.json.decode(body, type=CallbackNotification)
    except msgspec.ValidationError as exc:
        raise PaymentInputInvalid(f"invalid callback body: {exc}") from None
    except msgspec.DecodeError:
        raise PaymentInputInvalid("the callback body is not valid JSON") from None
    if (notification.transaction_id is None) == (notification.terminal_id is None):
        raise PaymentInputInvalid("give exactly one of transaction_id (dynamic QR) or terminal_id (static QR)")
    if notification.status == "paid":
        if notification.paid_at is None:
            raise PaymentInputInvalid("paid_at is required when status is paid")
        if notification.paid_at.tzinfo is None:
            raise PaymentInputInvalid("paid_at must carry a time zone (ISO-8601 with Z or an offset)")
    return notification


class _Rejection(Exception):
    """A refused notification: the error to answer and what finance must see."""

    def __init__(
        self,
        error: DomainError,
        reconciliation_kind: str | None = None,
        transaction_id: str | None = None,
        expected_amount: int | None = None,
    ) -> None:
        self.error = error
        self.reconciliation_kind = reconciliation_kind
        self.transaction_id = transaction_id
        self.expected_amount = expected_amount


async def receive_callback(
    db: Database, settings: Settings, *, timestamp: str | None, signature: str | None, body: bytes, actor: AuditActor
) -> CallbackResult:
    """The whole callback: verify, parse, apply; every refusal is audited.

    Which of the configured secrets signed it (its index, never the secret) is
    recorded on the audit row and the transaction event: an operator rotating
    the secret sees when the acquirer stopped using the old one.
    """
    secret_index = None
    try:
        secret_index = verify_signature(secret_list(settings.integration_webhook_secret), timestamp, signature, body)
        notification = parse_notification(body)
    except DomainError as error:
        async with db.transaction() as conn:
            await audit.record(
                conn,
                actor,
                "qris.callback.rejected",
                payload={"code": error.code, "reason": error.message, "secret_index": secret_index},
            )
        raise
    return await handle_callback(db, settings, notification, actor, secret_index)


async def handle_callback(
    db: Database, settings: Settings, notification: CallbackNotification, actor: AuditActor, secret_index: int
) -> CallbackResult:
    try:
        async with db.transaction() as conn:
            claimed = await conn.fetchval(
                QUERIES["claim_callback"],
                notification.event_id,
                notification.provider_reference,
                notification.status,
                notification.amount,
            )
            if claimed is None:
                original = await fetch_one(
                    conn, "original_callback", notification.event_id, notification.provider_reference
                )
                return msgspec.convert({**original["response"], "duplicate": True}, CallbackResult)
            transaction = await _apply(conn, settings, notification, secret_index)
            result = CallbackResult(transaction_id=transaction["id"], status=transaction["status"], duplicate=False)
            await conn.execute(
                QUERIES["complete_callback"], notification.event_id, transaction["id"], msgspec.to_builtins(result)
            )
            await audit.record(
                conn,
                actor,
                "qris.callback.applied",
                entity_type="transaction",
                entity_id=transaction["id"],
                merchant_id=transaction["merchant_id"],
                payload={
                    "event_id": notification.event_id,
                    "status": notification.status,
                    "amount": notification.amount,
                    "secret_index": secret_index,
                },
            )
            return result
    except _Rejection as rejection:
        await _record_rejection(db, notification, rejection, actor, secret_index)
        raise rejection.error from None
    except DomainError as error:  # e.g. a failed notification for a paid (final) transaction
        await _record_rejection(db, notification, _Rejection(error), actor, secret_index)
        raise


async def _apply(conn: Any, settings: Settings, notification: CallbackNotification, secret_index: int) -> Any:
    if notification.terminal_id is not None:
        # Static QR: the customer typed the amount; the platform creates the transaction.
        try:
            terminal = await txns.payable_terminal(conn, notification.terminal_id)
        except (TerminalNotFound, MerchantNotActive) as error:
            raise _Rejection(error, error.code) from None
        current = await txns.create_transaction(
            conn, settings, terminal, kind="static", amount=notification.amount, source="callback"
        )
    else:
        try:
            current = await txns.locked_transaction(conn, notification.transaction_id or "")
        except TransactionNotFound as error:
            raise _Rejection(error, "unknown_transaction") from None
        if current["amount"] != notification.amount:
            raise _Rejection(
                AmountMismatch(
                    f"amount {notification.amount} does not match the QR's {current['amount']}",
                    details={"expected": current["amount"], "received": notification.amount},
                ),
                "amount_mismatch",
                current["id"],
                current["amount"],
            )
        if current["status"] == "paid" and notification.status == "paid":
            # A second payment for one QR under another reference: money moved twice.
            raise _Rejection(
                AlreadyPaid(
                    f"transaction {current['id']} was already paid under another reference",
                    details={"transaction_id": current["id"]},
                ),
                "paid_twice",
                current["id"],
                current["amount"],
            )
    return await txns.transition(
        conn,
        settings,
        current,
        notification.status,
        source="callback",
        paid_at=notification.paid_at,
        provider_reference=notification.provider_reference,
        reason=notification.failure_reason or (None if notification.status == "paid" else notification.status),
        payload={"event_id": notification.event_id, "secret_index": secret_index},
    )


async def _record_rejection(
    db: Database, notification: CallbackNotification, rejection: _Rejection, actor: AuditActor, secret_index: int
) -> None:
    async with db.transaction() as conn:
        if rejection.reconciliation_kind:
            await conn.execute(
                QUERIES["record_reconciliation_exception"],
                new_id("rex"),
                rejection.reconciliation_kind,
                notification.event_id,
                rejection.transaction_id,
                notification.provider_reference,
                rejection.expected_amount,
                notification.amount,
                msgspec.to_builtins(notification),
            )
        await audit.record(
            conn,
            actor,
            "qris.callback.rejected",
            entity_type="transaction",
            entity_id=rejection.transaction_id or notification.transaction_id,
            payload={
                "event_id": notification.event_id,
                "code": rejection.error.code,
                "reason": rejection.error.message,
                "secret_index": secret_index,
            },
        )
