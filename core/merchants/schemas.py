"""What merchants, outlets and terminals look like at the boundary: request bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from msgspec import UNSET, UnsetType

from qris_soundbox.core.schemas import Body, Struct


class Merchant(Struct, kw_only=True):
    id: str
    code: str
    name: str
    legal_name: str | None
    city: str
    postal_code: str | None
    mcc: str
    nmid: str | None
    email: str | None
    fee_bps: int | None  # a contract below the MDR schedule; None: the schedule's rate
    mdr_category: str  # umi | uke | ume | ube | education | spbu | ... (GET /admin/mdr-schedules)
    status: str  # pending_review | active | rejected | suspended
    rejection_reason: str | None
    approved_at: datetime | None
    rejected_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Outlet(Struct, kw_only=True):
    id: str
    merchant_id: str
    name: str
    address: str | None
    city: str | None
    status: str
    created_at: datetime
    updated_at: datetime


class BoundDevice(Struct, kw_only=True):
    id: str
    serial_number: str | None = None
    model: str | None = None
    status: str | None = None


class Terminal(Struct, kw_only=True):
    id: str
    outlet_id: str
    merchant_id: str
    name: str
    terminal_code: str
    static_qris: str | None
    status: str
    # The soundbox bound to this terminal (role soundbox), if any.
    bound_device: BoundDevice | None = None
    created_at: datetime
    updated_at: datetime


class MerchantCreate(Body, kw_only=True):
    name: str
    city: str
    mcc: str | None = None
    nmid: str | None = None
    email: str | None = None
    fee_bps: int | None = None
    mdr_category: str = "uke"
    legal_name: str | None = None
    postal_code: str | None = None


class MerchantUpdate(Body, kw_only=True):
    """Only the fields present change; ``null`` clears an optional one (``fee_bps: null``: the schedule's rate)."""

    name: str | UnsetType = UNSET
    city: str | UnsetType = UNSET
    mcc: str | UnsetType = UNSET
    nmid: str | None | UnsetType = UNSET
    email: str | None | UnsetType = UNSET
    fee_bps: int | None | UnsetType = UNSET
    mdr_category: str | UnsetType = UNSET
    legal_name: str | None | UnsetType = UNSET
    postal_code: str | None | UnsetType = UNSET


class MerchantFees(Body, kw_only=True):
    """What a merchant pays (``merchant:fees``): only the fields present change (``fee_bps: null``: the schedule's)."""

    mdr_category: str | UnsetType = UNSET
    fee_bps: int | None | UnsetType = UNSET


class MerchantReject(Body, kw_only=True):
    reason: str


class IdentityChangeCreate(Body, kw_only=True):
    """An approved merchant's new identity: only the fields present change (``null`` clears an optional one)."""

    name: str | UnsetType = UNSET
    legal_name: str | None | UnsetType = UNSET
    nmid: str | None | UnsetType = UNSET
    email: str | None | UnsetType = UNSET


class IdentityChangeDecision(Body, kw_only=True):
    reason: str | None = None


class IdentityChange(Struct, kw_only=True):
    id: str
    merchant_id: str
    changes: dict[str, Any]  # {"field": {"from": old, "to": new}}
    status: str  # pending | applied | rejected
    proposed_by_type: str
    proposed_by_id: str | None
    decided_by_type: str | None
    decided_by_id: str | None
    decision_reason: str | None
    created_at: datetime
    decided_at: datetime | None


class OutletCreate(Body, kw_only=True):
    name: str
    address: str | None = None
    city: str | None = None


class TerminalCreate(Body, kw_only=True):
    name: str
    static_qris: str | None = None
