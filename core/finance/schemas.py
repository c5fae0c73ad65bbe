"""msgspec Structs that finance services return and the routes answer with."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qris_soundbox.core.schemas import Struct


class SettlementBatch(Struct, kw_only=True):
    id: str
    merchant_id: str
    status: str  # pending | paid | failed | cancelled
    entry_count: int
    gross_amount: int
    fee_amount: int
    payable_amount: int
    adjustment_amount: int
    adjusted_payable_amount: int
    currency: str
    cutoff: datetime
    payout_reference: str | None
    note: str | None
    failure_reason: str | None
    cancellation_reason: str | None
    reprocessed_from_batch_id: str | None
    reprocessed_into_batch_id: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    paid_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None


class SettlementBatchEntry(Struct, kw_only=True):
    ledger_entry_id: str
    transaction_id: str
    gross_amount: int
    fee_amount: int
    payable_amount: int
    live: bool
    released_at: datetime | None
    paid_at: datetime | None
    provider_reference: str | None
    reference: str
    terminal_id: str


class SettlementAdjustment(Struct, kw_only=True):
    id: str
    batch_id: str
    batch_status: str
    merchant_id: str
    adjustment_type: str
    amount: int
    reason: str
    carried_from_adjustment_id: str | None
    actor_type: str
    actor_id: str | None
    created_at: datetime


class SettlementAdjustmentCreated(SettlementAdjustment, kw_only=True):
    batch: SettlementBatch


class SettlementBatchEvent(Struct, kw_only=True):
    id: str
    batch_id: str
    event_type: str
    from_status: str | None
    to_status: str | None
    actor_type: str
    actor_id: str | None
    payload: dict[str, Any]
    created_at: datetime


class SettlementBatchDetail(SettlementBatch, kw_only=True):
    entries: list[SettlementBatchEntry]
    adjustments: list[SettlementAdjustment]
    events: list[SettlementBatchEvent]


class ExportJob(Struct, kw_only=True):
    id: str
    export_type: str
    status: str  # pending | running | completed | failed | expired
    filters: dict[str, Any]
    requested_by_type: str
    requested_by_id: str | None
    attempts: int
    row_count: int | None
    byte_size: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    expired_at: datetime | None
    download_url: str | None = None

