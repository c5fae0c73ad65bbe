"""What payments look like at the boundary: the admin and device API bodies and answers,
the acquirer's callback, and the soundbox's MQTT payment payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta

from qris_soundbox.core.config import AMOUNT_CEILING
from qris_soundbox.core.outbox import NotificationState
from qris_soundbox.core.schemas import Body, Struct

MAX_TTL_S = 24 * 3600  # the longest a dynamic QR may be valid
Amount = Annotated[int, Meta(gt=0, le=AMOUNT_CEILING)]  # rupiah
RequestId = Annotated[str, Meta(min_length=1, max_length=64)]
Id = Annotated[str, Meta(min_length=1, max_length=64)]


class Transaction(Struct, kw_only=True):
    id: str
    merchant_id: str
    outlet_id: str
    terminal_id: str
    device_id: str | None
    kind: str
    status: str
    amount: int
    currency: str
    reference: str
    qr_payload: str | None
    provider_reference: str | None
    fee_bps: int
    expires_at: datetime | None
    paid_at: datetime | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    # What succeeded refunds returned (docs/finance.md "Refunds"); status partially_refunded / refunded.
    refunded_amount: int = 0
    # The soundbox announcement of this payment (detail view only).
    notification: NotificationState | None = None
    # Names for people (lists and the detail view; a transaction just written has none).
    merchant_name: str | None = None
    terminal_code: str | None = None
    terminal_name: str | None = None


class TransactionCreate(Body, kw_only=True):
    terminal_id: Id
    amount: Amount
    expires_in_s: Annotated[int, Meta(ge=30, le=MAX_TTL_S)] | None = None


class TransactionEvent(Struct, kw_only=True):
    id: str
    transaction_id: str
    event_type: str
    from_status: str | None
    to_status: str | None
    source: str
    payload: dict[str, Any]
    created_at: datetime


class LedgerEntry(Struct, kw_only=True):
    id: str
    transaction_id: str
    merchant_id: str
    entry_type: str
    amount: int
    currency: str
    # On the platform_fee row: the MDR schedule row that priced the payment (GET /admin/mdr-schedules).
    mdr_schedule_id: str | None = None
    # On the refund_* rows: the refund they carry out (docs/finance.md "Refunds").
    refund_id: str | None = None
    created_at: datetime


class CallbackNotification(Struct, kw_only=True):
    """The acquirer's body. Unknown fields are tolerated: acquirers add their own."""

    event_id: Annotated[str, Meta(min_length=1, max_length=128)]
    status: Literal["paid", "failed", "expired"]
    amount: Amount
    currency: Literal["IDR"]
    provider_reference: Id
    paid_at: datetime | None = None
    transaction_id: Id | None = None
    terminal_id: Id | None = None
    failure_reason: Annotated[str, Meta(max_length=256)] | None = None


class CallbackResult(Struct, kw_only=True):
    transaction_id: str
    status: str
    duplicate: bool


class DynamicQr(Struct, kw_only=True):
    transaction_id: str
    qr_payload: str
    expires_at: datetime
    amount: int
    reference: str


class DeviceDynamicQrCreate(Body, kw_only=True):
    amount: Amount
    request_id: RequestId | None = None
    device_id: str | None = None  # the legacy DEVICE_TOKEN names the device in the body


class DeviceDynamicQr(DynamicQr, kw_only=True):
    request_id: str | None


class DynamicQrBridgeRequest(Body, kw_only=True):
    request_id: RequestId
    amount: Amount
    device_id: str | None = None


class QueuedReply(Struct, kw_only=True):
    request_id: str
    message_id: str
    topic: str


class DynamicQrRequest(Struct, kw_only=True):
    """``devices/<id>/uplink/dynamic-qr/request`` (unknown fields tolerated, as from any device)."""

    request_id: RequestId
    amount: Amount


class PaymentAck(Struct, kw_only=True):
    """``devices/<id>/uplink/payment/ack``."""

    message_id: Id
