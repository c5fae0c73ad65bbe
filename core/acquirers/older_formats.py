"""The acquirers' older notification formats (SPEC §13) at ``POST /integrations/acquirers/{code}/notify``.

The acquirer's protocol picks the verifier; every secret is compared in
constant time, before the body is trusted. A verified notification becomes a
``CallbackNotification`` and runs ``callbacks.handle_callback``, the same core
path as the platform's callback and SNAP. These formats name the platform's
transaction (the QR was issued for it), so they pay dynamic QRs only.
Errors are the platform's own envelope (these are not SNAP routes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import msgspec

from qris_soundbox.core.acquirers.service import acquirer_row
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Database
from qris_soundbox.core.payments import callbacks
from qris_soundbox.core.payments.errors import CallbackSignatureInvalid, PaymentInputInvalid, TransactionNotFound
from qris_soundbox.core.payments.schemas import CallbackNotification, CallbackResult
from qris_soundbox.core.secrets import SecretBox
from qris_soundbox.core.snap import amounts, codes

MIDTRANS_STATUSES = {"settlement": "paid", "capture": "paid", "expire": "expired", "cancel": "failed", "deny": "failed"}
XENDIT_STATUSES = {"SUCCEEDED": "paid", "COMPLETED": "paid", "FAILED": "failed", "EXPIRED": "expired"}
DOKU_STATUSES = {"SUCCESS": "paid", "FAILED": "failed", "EXPIRED": "expired"}


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _decode(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise PaymentInputInvalid("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise PaymentInputInvalid("the body must be a JSON object")
    return value


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise PaymentInputInvalid(f"{field} must be a text of 1–64 characters")
    return value


def _rupiah(value: Any, field: str) -> int:
    """Midtrans sends ``"25000.00"``, Xendit and DOKU a JSON number; rupiah has no fraction either way."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, float) and value.is_integer():
        value = str(int(value))
    try:
        amount = amounts.rupiah(value)
    except codes.SnapError:
        raise PaymentInputInvalid(f"{field} must be whole rupiah") from None
    if amount <= 0:
        raise PaymentInputInvalid(f"{field} must be positive")
    return amount


def midtrans(secrets: dict[str, str], body: bytes) -> tuple[CallbackNotification | None, dict[str, Any]]:
    """``signature_key`` = hex SHA512(order_id + status_code + gross_amount + server_key)."""
    data = _decode(body)
    parts = [data.get(k) for k in ("order_id", "status_code", "gross_amount")]
    given = data.get("signature_key")
    if not all(isinstance(p, str) for p in parts) or not isinstance(given, str):
        raise CallbackSignatureInvalid("order_id, status_code, gross_amount and signature_key are required")
    expected = hashlib.sha512(("".join(parts) + secrets["server_key"]).encode()).hexdigest()  # type: ignore[arg-type]
    if not _same(expected, given.lower()):
        raise CallbackSignatureInvalid("signature_key does not match")
    status = MIDTRANS_STATUSES.get(str(data.get("transaction_status")))
    if status is None:
        return None, data  # pending and the like: acknowledged, nothing changes
    reference = _text(data.get("transaction_id"), "transaction_id")
    return _notification(
        "midtrans",
        reference,
        _text(data["order_id"], "order_id"),
        status,
        _rupiah(data["gross_amount"], "gross_amount"),
    ), data


def xendit(
    secrets: dict[str, str], headers: Mapping[str, str], body: bytes
) -> tuple[CallbackNotification | None, dict[str, Any]]:
    """``x-callback-token`` equals the token from Xendit's dashboard; both ``qr.payment`` shapes."""
    if not _same(headers.get("x-callback-token", ""), secrets["callback_token"]):
        raise CallbackSignatureInvalid("x-callback-token does not match")
    data = _decode(body)
    if isinstance(data.get("data"), dict):  # {"event": "qr.payment", "data": {..., "reference_id"}}
        payment = data["data"]
        transaction_id = payment.get("reference_id")
    else:  # the older shape: {"id", "amount", "status", "qr_code": {"external_id"}}
        payment = data
        transaction_id = (
            (data.get("qr_code") or {}).get("external_id") if isinstance(data.get("qr_code"), dict) else None
        )
    status = XENDIT_STATUSES.get(str(payment.get("status")))
    if status is None:
        return None, data
    return _notification(
        "xendit",
        _text(payment.get("id"), "id"),
        _text(transaction_id, "reference_id"),
        status,
        _rupiah(payment.get("amount"), "amount"),
    ), data


def doku_signature(client_id: str, request_id: str, timestamp: str, target: str, secret: str, body: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    lines = f"Client-Id:{client_id}\nRequest-Id:{request_id}\nRequest-Timestamp:{timestamp}\nRequest-Target:{target}\nDigest:{digest}"
    return "HMACSHA256=" + base64.b64encode(hmac.new(secret.encode(), lines.encode(), hashlib.sha256).digest()).decode()


def doku(
    settings: dict[str, Any], secrets: dict[str, str], headers: Mapping[str, str], target: str, body: bytes
) -> tuple[CallbackNotification | None, dict[str, Any]]:
    """``Signature: HMACSHA256=`` + Base64(HMAC-SHA256) over the Client-Id … Digest lines."""
    client_id = headers.get("client-id", "")
    request_id = headers.get("request-id", "")
    timestamp = headers.get("request-timestamp", "")
    expected = doku_signature(client_id, request_id, timestamp, target, secrets["secret_key"], body)
    valid = _same(expected, headers.get("signature", "")) & _same(client_id, settings["client_id"])
    if not valid or not request_id:
        raise CallbackSignatureInvalid("Signature does not match")
    sent = timestamp and _parse_time(timestamp)
    if not sent or abs((datetime.now(UTC) - sent).total_seconds()) > callbacks.TIMESTAMP_WINDOW_S:
        raise CallbackSignatureInvalid("Request-Timestamp is missing or more than 300 s from now")
    data = _decode(body)
    order = _object(data, "order")
    transaction = _object(data, "transaction")
    status = DOKU_STATUSES.get(str(transaction.get("status")))
    if status is None:
        return None, data
    invoice = _text(order.get("invoice_number"), "order.invoice_number")
    return _notification("doku", f"doku-{invoice}", invoice, status, _rupiah(order.get("amount"), "order.amount")), data


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _notification(protocol: str, reference: str, transaction_id: str, status: str, amount: int) -> CallbackNotification:
    return CallbackNotification(
        # One event per format, acquirer reference and outcome: a resend is a replay.
        event_id=f"{protocol}:{reference}:{status}",
        status=status,  # type: ignore[arg-type]
        amount=amount,
        currency="IDR",
        provider_reference=reference,
        paid_at=datetime.now(UTC) if status == "paid" else None,
        transaction_id=transaction_id,
    )


async def receive(
    db: Database,
    settings: Settings,
    box: SecretBox,
    code: str,
    headers: Mapping[str, str],
    target: str,
    body: bytes,
    actor: AuditActor,
) -> CallbackResult | None:
    """Verify with the acquirer's protocol and apply; ``None`` for a status that changes nothing."""
    async with db.pool.acquire() as conn:
        acquirer = await acquirer_row(conn, code)
    protocol = acquirer["protocol"]
    secrets = box.open(acquirer["secrets"])
    if protocol == "midtrans":
        notification, _ = midtrans(secrets, body)
    elif protocol == "xendit":
        notification, _ = xendit(secrets, headers, body)
    elif protocol == "doku":
        notification, _ = doku(acquirer["settings"], secrets, headers, target, body)
    else:
        raise PaymentInputInvalid(f"acquirer {code} speaks {protocol}; its notifications go to its own endpoint")
    if notification is None:
        return None
    async with db.pool.acquire() as conn:
        owner = await conn.fetchval(QUERIES["transaction_acquirer"], notification.transaction_id)
    if owner != code:
        # One acquirer cannot pay another's transactions, whatever it signs.
        raise TransactionNotFound(f"no transaction {notification.transaction_id} of acquirer {code}")
    actor = msgspec.structs.replace(actor, actor_type="acquirer", actor_id=code)
    return await callbacks.handle_callback(db, settings, notification, actor, 0, "acquirer_notify")
