"""Refund Structs: the admin API's bodies and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from qris_soundbox.core.schemas import Body, Struct

RefundStatus = Literal["pending_approval", "pending", "succeeded", "failed", "rejected"]


class RefundCreate(Body, kw_only=True):
    amount: int  # whole rupiah, at most what is left of the payment
    reason: str


class RefundDecisionBody(Body, kw_only=True):
    note: str | None = None


class Refund(Struct, kw_only=True):
    id: str
    transaction_id: str
    merchant_id: str
    amount: int
    status: RefundStatus
    reason: str
    source: str
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None
    partner_id: str | None
    partner_refund_no: str | None
    acquirer_code: str | None
    acquirer_refund_no: str | None
    # The MDR given back with it (0 unless FINANCE_REFUND_RETURNS_MDR); set once it succeeded.
    fee_returned: int | None
    failure_reason: str | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    # Names for people (lists).
    merchant_name: str | None = None
    transaction_reference: str | None = None
    transaction_amount: int | None = None
