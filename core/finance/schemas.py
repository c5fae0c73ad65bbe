"""What finance looks like at the boundary: settlement batches, adjustments, exports,
reconciliation and the dashboards, and the request bodies of the finance routes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from qris_soundbox.core.devices.legacy_token import LegacyTokenUsage
from qris_soundbox.core.schemas import Body, Struct, Value

Text = Annotated[str, Meta(min_length=1, max_length=500)]
Reference = Annotated[str, Meta(min_length=1, max_length=128)]
Id = Annotated[str, Meta(min_length=1, max_length=64)]


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
    value_date: date  # the Jakarta day the money reaches the merchant (core/finance/calendar.py)
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
    payout_account_id: str | None  # the account this batch pays, fixed when it was created
    merchant_name: str | None = None  # in lists, for people


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


class PayoutBank(Struct, kw_only=True):
    code: str
    name: str
    account_digits_min: int
    account_digits_max: int
    active: bool
    created_at: datetime
    updated_at: datetime


class PayoutBankPut(Body, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    account_digits_min: Annotated[int, Meta(ge=5, le=20)] = 6
    account_digits_max: Annotated[int, Meta(ge=5, le=20)] = 20
    active: bool = True


class PayoutAccount(Struct, kw_only=True):
    """One row of a merchant's payout account history; ``account_number`` is masked
    (all but the last 4 digits replaced by ``*``) unless the reader holds
    ``payout_account:read``, and ``masked`` says which."""

    id: str
    merchant_id: str
    bank_code: str
    bank_name: str
    account_number: str
    masked: bool
    account_name: str
    created_by_type: str
    created_by: str | None
    created_at: datetime


class PayoutAccountState(Struct, kw_only=True):
    current: PayoutAccount | None
    history: list[PayoutAccount]  # newest first, the current one included


class PayoutAccountPut(Body, kw_only=True):
    bank_code: Annotated[str, Meta(min_length=1, max_length=8)]
    account_number: Annotated[str, Meta(min_length=1, max_length=40)]
    account_name: Annotated[str, Meta(min_length=1, max_length=200)]


class SettlementBatchDetail(SettlementBatch, kw_only=True):
    entries: list[SettlementBatchEntry]
    adjustments: list[SettlementAdjustment]
    events: list[SettlementBatchEvent]
    payout_account: PayoutAccount | None


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


class WorkerState(Struct, kw_only=True):
    """What this process's export worker last did (for /admin/observability/summary)."""

    enabled: bool
    interval_ms: int
    batch_size: int
    last_run_at: datetime | None = None
    last_processed: int = 0
    last_error: str | None = None


class AdjustmentFilters(Value, kw_only=True, frozen=True):
    merchant_id: str | None = None
    adjustment_type: str | None = None
    from_: datetime | None = msgspec.field(default=None, name="from")
    to: datetime | None = None


class TodayTransactions(Struct, kw_only=True):
    date: str
    timezone: str
    from_: datetime = msgspec.field(name="from")
    to: datetime
    transaction_count: int  # created today, any status
    paid_count: int  # paid today
    paid_volume: int  # rupiah paid today


class SettlementSummary(Struct, kw_only=True):
    generated_at: datetime
    pending_payout_amount: int
    paid_payout_amount: int
    settlement_adjustment_amount: int
    settlement_adjusted_paid_amount: int
    unbatched_payable_amount: int
    unbatched_payable_count: int
    batch_counts: dict[str, int]
    latest_batches: list[SettlementBatch]
    today: TodayTransactions


class DashboardSummary(SettlementSummary, kw_only=True):
    platform_fee_total: int


class RuntimeInstance(Struct, kw_only=True):
    id: str
    hostname: str
    pid: int
    roles: list[str]
    started_at: datetime
    last_seen_at: datetime
    alive: bool


class ExportWorkerOverview(Struct, kw_only=True):
    this_process: WorkerState
    oldest_pending_age_seconds: float | None
    stale_running_jobs: int
    last_completed_at: datetime | None


class ExportJobsOverview(Struct, kw_only=True):
    counts: dict[str, int]
    worker: ExportWorkerOverview


class StatusAmount(Struct, kw_only=True):
    count: int
    amount: int


class ObservabilitySummary(Struct, kw_only=True):
    generated_at: datetime
    devices_online: int  # over every broker node
    outbox: dict[str, int]
    export_jobs: ExportJobsOverview
    runtime_instances: list[RuntimeInstance]
    transactions_last_hour: dict[str, StatusAmount]
    legacy_device_token: LegacyTokenUsage  # this process's


class BatchReconciliation(Struct, kw_only=True):
    batch_id: str
    merchant_id: str
    status: str
    payout_state: str
    payout_reference: str | None
    paid_at: datetime | None
    created_at: datetime
    reprocessed_into_batch_id: str | None
    entry_count: int
    ledger_entry_count: int
    live_entry_count: int
    gross_amount: int
    ledger_gross_amount: int
    fee_amount: int
    ledger_fee_amount: int
    payable_amount: int
    ledger_payable_amount: int
    adjustment_amount: int
    adjustment_rows_amount: int
    adjustment_count: int
    adjusted_payable_amount: int
    matched: bool
    mismatches: list[str]


class ReconciliationException(Struct, kw_only=True):
    id: str
    kind: str
    event_id: str
    transaction_id: str | None
    merchant_id: str | None
    provider_reference: str | None
    expected_amount: int | None
    received_amount: int | None
    payload: dict[str, Any]
    created_at: datetime


class UnbatchedPayables(Struct, kw_only=True):
    entry_count: int
    amount: int


class ReconciliationReport(Struct, kw_only=True):
    items: list[BatchReconciliation]
    next_cursor: str | None
    mismatched_count: int  # among the items of this page
    unbatched_payables: UnbatchedPayables
    exception_counts: dict[str, int]
    exceptions: list[ReconciliationException]


class SettlementBatchCreate(Body, kw_only=True):
    merchant_id: Id | None = None
    cutoff: datetime | None = None


class BatchPreviewMerchant(Struct, kw_only=True):
    merchant_id: str
    merchant_name: str
    merchant_code: str
    entry_count: int
    gross_amount: int
    fee_amount: int
    payable_amount: int
    has_payout_account: bool  # False: the batch is made, but cannot be marked paid until an account is set


class SettlementBatchPreview(Struct, kw_only=True):
    """What ``POST /admin/settlement-batches`` with the same body would make now; nothing is written."""

    cutoff: datetime
    value_date: date
    items: list[BatchPreviewMerchant]
    entry_count: int
    payable_amount: int
    missing_payout_accounts: int


class SettlementHold(Struct, kw_only=True):
    """A merchant whose unbatched lines add up below zero (its refunds outweigh what it is owed): no
    batch is made, nothing is paid, until its payments cover the refunds (docs/finance.md)."""

    merchant_id: str
    merchant_name: str | None = None
    line_count: int
    payable_amount: int  # below zero: what the merchant owes
    reason: str = "refunds_exceed_payables"


class SettlementHolds(Struct, kw_only=True):
    items: list[SettlementHold]


class SettlementBatchesCreated(Struct, kw_only=True):
    items: list[SettlementBatch]
    # Merchants the run held instead of paying (refunds outweigh payables).
    held: list[SettlementHold] = msgspec.field(default_factory=list)


class MarkPaid(Body, kw_only=True):
    payout_reference: Reference
    note: Text | None = None


class Reason(Body, kw_only=True):
    reason: Text


class ReferenceUpdate(Body, kw_only=True):
    payout_reference: Reference


class AdjustmentCreate(Body, kw_only=True):
    adjustment_type: Annotated[str, Meta(min_length=1, max_length=32)]
    amount: int
    reason: Text


class AdjustmentExportCreate(Body, kw_only=True):
    merchant_id: Id | None = None
    adjustment_type: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    from_: datetime | None = msgspec.field(default=None, name="from")
    to: datetime | None = None


class AcquirerReport(Struct, kw_only=True):
    """An imported acquirer settlement report: what it says, and how it compares with the ledger."""

    id: str
    content_sha256: str
    file_name: str | None
    byte_size: int
    line_count: int
    settlement_date_from: date
    settlement_date_to: date
    settlement_dates: list[date]
    settlement_lag_days: int
    report_amount: int
    report_fee: int
    matched_count: int
    matched_amount: int
    amount_mismatch_count: int
    amount_mismatch_report_amount: int
    amount_mismatch_ledger_amount: int
    missing_in_ledger_count: int
    missing_in_ledger_amount: int
    missing_in_report_count: int
    missing_in_report_amount: int
    unresolved_count: int
    imported_by_type: str
    imported_by: str | None
    created_at: datetime
    already_imported: bool = False  # this upload was a file imported before: nothing changed


class AcquirerReportException(Struct, kw_only=True):
    id: str
    report_id: str
    kind: str  # amount_mismatch | missing_in_ledger | missing_in_report
    line_number: int | None
    provider_reference: str | None
    settlement_date: date
    report_amount: int | None
    report_fee: int | None
    ledger_amount: int | None
    terminal_id: str | None
    merchant_nmid: str | None
    transaction_id: str | None
    merchant_id: str | None
    ledger_status: str | None
    paid_at: datetime | None
    resolved_at: datetime | None
    resolved_by_type: str | None
    resolved_by: str | None
    resolution_note: str | None


class ExceptionResolve(Body, kw_only=True):
    note: Text


class MdrBand(Body, kw_only=True):
    """One amount band of a new schedule: amounts up to ``max_amount`` (None: no upper bound) at ``bps``."""

    max_amount: int | None = None
    bps: int


class MdrScheduleCreate(Body, kw_only=True):
    category: str
    effective_from: date
    # Ascending, the last without max_amount: together they price every amount from Rp1.
    bands: list[MdrBand]
    source: str


class MdrScheduleRow(Struct, kw_only=True):
    id: str
    category: str
    effective_from: date
    effective_to: date | None  # exclusive; None: in force until a newer schedule
    min_amount: int
    max_amount: int | None
    bps: int
    source: str
    created_at: datetime


class MdrSchedules(Struct, kw_only=True):
    items: list[MdrScheduleRow]


class SettlementHolidayCreate(Body, kw_only=True):
    day: date
    reason: str


class SettlementHoliday(Struct, kw_only=True):
    day: date
    reason: str
    created_by: str | None
    created_at: datetime


class SettlementHolidays(Struct, kw_only=True):
    items: list[SettlementHoliday]
