"""The acquirer's signed payment callback (SPEC §4).

Order of work, and why:
1. The signature and timestamp are checked on the raw bytes before anything is
   parsed: an unsigned request learns nothing and changes nothing.
2. The callback is *claimed* first, by inserting its ``event_id`` and
   ``provider_reference`` under unique constraints. A concurrent replay blocks
   on that insert until the first commits, then finds the original and answers
   its stored response: one transaction, one ledger set, one announcement,
   however many replays race.
3. Rejections (amount mismatch, unknown transaction, paid twice...) undo the
   claim; the reconciliation record and audit row are written afterwards
   in their own short transaction, so finance sees them and nothing else changed.

Steps 2 and 3 run in the database as one statement, ``apply_callback``
(sql/migrations/080): a callback costs two round trips, not twenty.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings, secret_list
from qris_soundbox.core.db import QUERIES, Database
from qris_soundbox.core.errors import DomainError, Unavailable
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.payments import notifications
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
# A payment's paid_at must fall between these: QRIS began in 2019, and the acquirer's clock
# may run ahead of ours by as much as a callback timestamp may (9999-12-31 or 1970 is a bug or a forgery).
PAID_AT_EARLIEST = datetime(2019, 1, 1, tzinfo=UTC)
PAID_AT_MAX_AHEAD = timedelta(seconds=TIMESTAMP_WINDOW_S)


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
        # msgspec names the field last: "Expected `int` <= 1000000000 - at `$.amount`".
        field = str(exc).rpartition(" - at `$.")[2].rstrip("`") if " - at `$." in str(exc) else None
        raise PaymentInputInvalid(
            f"invalid callback body: {exc}", details={"field": field} if field else None
        ) from None
    except msgspec.DecodeError:
        raise PaymentInputInvalid("the callback body is not valid JSON") from None
    if (notification.transaction_id is None) == (notification.terminal_id is None):
        raise PaymentInputInvalid("give exactly one of transaction_id (dynamic QR) or terminal_id (static QR)")
    if notification.status == "paid":
        if notification.paid_at is None:
            raise PaymentInputInvalid("paid_at is required when status is paid")
        if notification.paid_at.tzinfo is None:
            raise PaymentInputInvalid("paid_at must carry a time zone (ISO-8601 with Z or an offset)")
        problem = paid_at_problem(notification.paid_at)
        if problem is not None:
            raise PaymentInputInvalid(f"paid_at {problem}", details={"field": "paid_at"})
    return notification


def paid_at_problem(paid_at: datetime) -> str | None:
    """Why ``paid_at`` (time-zone aware) cannot be a real payment's time, or None."""
    if paid_at < PAID_AT_EARLIEST:
        return f"is before {PAID_AT_EARLIEST.date().isoformat()}"
    if paid_at > datetime.now(UTC) + PAID_AT_MAX_AHEAD:
        return f"is more than {TIMESTAMP_WINDOW_S} s in the future"
    return None


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


class AboveLimit(msgspec.Struct, kw_only=True, frozen=True):
    """The ``amount_above_limit`` reconciliation exception of a paid notification above the limit."""

    id: str
    max_amount: int
    payload: dict[str, Any]


class CallbackApplication(msgspec.Struct, kw_only=True, frozen=True):
    """Everything ``apply_callback`` (sql/migrations/080) needs that only Python knows: the ids, the
    static QR's new transaction, the transition with the announcement shaped for the device, the audit row."""

    event_id: str
    provider_reference: str
    status: str
    amount: int
    terminal_id: str | None
    transaction_id: str | None
    new_transaction: txns.NewTransaction | None
    transition: txns.TransitionRequest
    audit: audit.AuditEntry
    # Set when a paid amount is above QRIS_MAX_AMOUNT: the payment is applied (the money moved) and this
    # reconciliation exception is written with it, in the same statement (sql/migrations/111).
    above_limit: AboveLimit | None = None


class Rejection(msgspec.Struct, kw_only=True, frozen=True):
    """Why ``apply_callback`` refused a notification (its claim already undone)."""

    code: str
    reconciliation_kind: str | None = None
    transaction_id: str | None = None
    expected_amount: int | None = None
    status: str | None = None
    terminal_status: str | None = None
    merchant_id: str | None = None
    merchant_status: str | None = None


class _Outcome(msgspec.Struct, kw_only=True, frozen=True):
    outcome: Literal["applied", "duplicate", "rejected"]
    response: CallbackResult | None = None


# What brought a notification, kept as the ``source`` of the transaction event it writes (and on its
# audit row): the platform's own callback (§4), an acquirer's notification (SNAP or an older format),
# or an acquirer's qr-mpm-query answer found by the poller (core/acquirers/polling.py).
CallbackSource = Literal["callback", "acquirer_notify", "acquirer_query"]


async def handle_callback(
    db: Database,
    settings: Settings,
    notification: CallbackNotification,
    actor: AuditActor,
    secret_index: int,
    source: CallbackSource = "callback",
) -> CallbackResult:
    """Two round trips and no explicit transaction: an unlocked read of what the announcement
    needs, then ``apply_callback``, one statement and so one transaction of its own."""
    async with db.pool.acquire() as conn:
        context = await conn.fetchrow(
            QUERIES["terminal_payment_context"], notification.terminal_id, notification.transaction_id
        )
        application = _application(settings, notification, context, actor, secret_index, source)
        answer = await conn.fetchval(QUERIES["apply_callback"], application)
    outcome = msgspec.convert(answer, _Outcome)
    if outcome.outcome == "rejected":
        rejection = msgspec.convert(answer, Rejection)
        error = _error(rejection, notification)
        await _record_rejection(db, notification, rejection, error, actor, secret_index)
        raise error
    assert outcome.response is not None
    return msgspec.structs.replace(outcome.response, duplicate=outcome.outcome == "duplicate")


def _application(
    settings: Settings,
    notification: CallbackNotification,
    context: asyncpg.Record | None,
    actor: AuditActor,
    secret_index: int,
    source: CallbackSource,
) -> CallbackApplication:
    new_transaction = None
    transaction_id = notification.transaction_id
    if notification.terminal_id is not None and context is not None:
        new_transaction = txns.new_transaction(context, kind="static", amount=notification.amount, source=source)
        transaction_id = new_transaction.id
    soundbox = notifications.soundbox_of(context)
    downlink = None
    if notification.paid_at is not None and notification.status == "paid" and soundbox and transaction_id:
        downlink = notifications.payment_downlink(
            settings,
            soundbox,
            transaction_id=transaction_id,
            amount=notification.amount,
            paid_at=notification.paid_at,
        )
    reason = notification.failure_reason or (None if notification.status == "paid" else notification.status)
    above_limit = None
    if notification.status == "paid" and notification.amount > settings.qris_max_amount:
        above_limit = AboveLimit(
            id=new_id("rex"), max_amount=settings.qris_max_amount, payload=msgspec.to_builtins(notification)
        )
    return CallbackApplication(
        event_id=notification.event_id,
        provider_reference=notification.provider_reference,
        status=notification.status,
        amount=notification.amount,
        terminal_id=notification.terminal_id,
        transaction_id=notification.transaction_id,
        new_transaction=new_transaction,
        transition=txns.transition_request(
            notification.status,
            source=source,
            paid_at=notification.paid_at,
            provider_reference=notification.provider_reference,
            reason=reason,
            payload={"event_id": notification.event_id, "secret_index": secret_index},
            downlink=downlink,
        ),
        audit=audit.entry(
            actor,
            "qris.callback.applied",
            entity_type="transaction",
            payload={
                "event_id": notification.event_id,
                "status": notification.status,
                "amount": notification.amount,
                "secret_index": secret_index,
                "source": source,
            },
        ),
        above_limit=above_limit,
    )


def _error(rejection: Rejection, notification: CallbackNotification) -> DomainError:
    """The API's error for a refusal ``apply_callback`` returned."""
    transaction_id = rejection.transaction_id or notification.transaction_id or ""
    terminal_id = notification.terminal_id or ""
    if rejection.code == TerminalNotFound.code:
        state = "does not exist" if rejection.terminal_status is None else "is not active"
        return TerminalNotFound(f"terminal {terminal_id} {state}", details={"terminal_id": terminal_id})
    if rejection.code == MerchantNotActive.code:
        return MerchantNotActive(
            f"merchant {rejection.merchant_id} is {rejection.merchant_status}; only active merchants take payments",
            details={"merchant_id": rejection.merchant_id, "status": rejection.merchant_status},
        )
    if rejection.code == TransactionNotFound.code:
        return TransactionNotFound(
            f"transaction {transaction_id} does not exist", details={"transaction_id": transaction_id}
        )
    if rejection.code == AmountMismatch.code:
        return AmountMismatch(
            f"amount {notification.amount} does not match the QR's {rejection.expected_amount}",
            details={"expected": rejection.expected_amount, "received": notification.amount},
        )
    if rejection.code == AlreadyPaid.code:
        return AlreadyPaid(
            f"transaction {transaction_id} was already paid under another reference",
            details={"transaction_id": transaction_id},
        )
    return txns.transaction_final(transaction_id, rejection.status or "")


async def _record_rejection(
    db: Database,
    notification: CallbackNotification,
    rejection: Rejection,
    error: DomainError,
    actor: AuditActor,
    secret_index: int,
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
                "code": error.code,
                "reason": error.message,
                "secret_index": secret_index,
            },
        )
