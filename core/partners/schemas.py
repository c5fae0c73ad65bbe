"""Partners at the boundary: the admin API's bodies and answers, and the SNAP services' bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from qris_soundbox.core.schemas import Body, Struct

ClientKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
NotifyUrl = Annotated[str, msgspec.Meta(min_length=8, max_length=2000, pattern=r"^https?://[^\s]+$")]


class Partner(Struct, kw_only=True):
    id: str
    name: str
    client_key: str
    public_key_pem: str
    notify_url: str
    merchant_ids: list[str]
    status: str  # active | suspended
    # While a rotation overlaps: the previous secret is still accepted until then.
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime


class PartnerWithSecret(Partner, kw_only=True):
    """The answer of a create or a rotation: the only time the secret is shown."""

    client_secret: str


class PartnerCreate(Body, kw_only=True):
    name: Name
    client_key: ClientKey
    public_key_pem: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    notify_url: NotifyUrl
    merchant_ids: Annotated[list[str], msgspec.Meta(max_length=1000)] = msgspec.field(default_factory=list)


class PartnerUpdate(Body, kw_only=True):
    name: Name | UnsetType = UNSET
    public_key_pem: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)] | UnsetType = UNSET
    notify_url: NotifyUrl | UnsetType = UNSET
    merchant_ids: Annotated[list[str], msgspec.Meta(max_length=1000)] | UnsetType = UNSET
    status: Literal["active", "suspended"] | UnsetType = UNSET


class SecretRotation(Body, kw_only=True):
    # How long the current secret keeps working beside the new one (at most a week).
    overlap_seconds: Annotated[int, msgspec.Meta(ge=0, le=7 * 86400)] = 86400


class PartnerNotification(Struct, kw_only=True):
    id: int
    transaction_id: str
    event_id: str
    status: str  # pending | delivered | dead
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    body: dict[str, Any]


class PartnerDelivery(Struct, kw_only=True):
    id: int
    outbox_id: int
    attempt: int
    http_status: int | None
    response_code: str | None
    outcome: str
    error: str | None
    latency_ms: int
    attempted_at: datetime


class DeliveryLog(Struct, kw_only=True):
    notifications: list[PartnerNotification]
    attempts: list[PartnerDelivery]


# --- SNAP services (field names are the standard's) ---


class SnapAmount(Struct, kw_only=True):
    value: str
    currency: str


class GenerateRequest(Struct, kw_only=True):
    partnerReferenceNo: str
    amount: SnapAmount
    merchantId: str
    terminalId: str
    validityPeriod: str | None = None
    additionalInfo: dict[str, Any] | None = None


class RefundRequest(Struct, kw_only=True):
    """``qr-mpm-refund``'s own fields (the QR is named as in ``QrReference``)."""

    partnerRefundNo: str
    refundAmount: SnapAmount
    reason: str | None = None


class QrReference(Struct, kw_only=True):
    """query / cancel / refund name the QR by the platform's referenceNo or the partner's own."""

    originalReferenceNo: str | None = None
    originalPartnerReferenceNo: str | None = None
    serviceCode: str | None = None
    reason: str | None = None
    additionalInfo: dict[str, Any] | None = None
