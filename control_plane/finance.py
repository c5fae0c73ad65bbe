"""Finance routes: settlement batches, adjustments, CSV reports, async exports,
reconciliation and the dashboards. Thin: parse → core/finance → shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

import multipart
from litestar import Request, get, patch, post, put
from litestar.response import File, Response, Stream

from qris_soundbox.control_plane.auth import audit_actor, principal_of
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Paging, Platform, QueryParameter, Window
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.errors import Forbidden
from qris_soundbox.core.finance import (
    acquirer_reports,
    adjustments,
    bank_formats,
    csv_reports,
    dashboard,
    exports,
    mdr,
    payout_accounts,
    reconciliation,
    settlement_holidays,
    settlements,
)
from qris_soundbox.core.finance import schemas as s
from qris_soundbox.core.finance.errors import ReportMalformed, ReportTooLarge
from qris_soundbox.core.schemas import Page

ReportFormat = Annotated[str | None, QueryParameter(name="format")]


def csv_stream(chunks: Any, filename: str) -> Stream:
    return Stream(
        chunks,
        media_type="text/csv",  # Litestar adds "; charset=utf-8" to every text/* type
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


async def batch_csv(
    request: Request, platform: PlatformContext, batch_id: str, fmt: str | None, merchant_id: str | None = None
) -> Response[bytes] | Stream:
    """A settlement batch report (the merchant's own when ``merchant_id`` is given): the standard
    report, or a bank upload file, which carries full account numbers and so needs ``payout_account:read``."""
    value = bank_formats.report_format(fmt)
    batch = await settlements.scoped_batch(platform.db, batch_id, merchant_id=merchant_id)
    if value == bank_formats.STANDARD:
        return csv_stream(csv_reports.batch_report(platform.db, batch.id), f"settlement-{batch.id}-{value}.csv")
    if not principal_of(request).may(payout_accounts.READ_PERMISSION):
        raise Forbidden(f"a bank file carries full account numbers: it needs {payout_accounts.READ_PERMISSION}")
    layout = bank_formats.FORMATS[value]
    async with platform.db.pool.acquire() as conn:
        content = await bank_formats.batch_file(conn, batch.id, value)
    return Response(
        content,
        media_type=layout.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="settlement-{batch.id}-{value}.{layout.extension}"',
            "Cache-Control": "no-store",
        },
    )


# Admin principals only: the guard's /admin audience rule (control_plane/auth.py).
_TAGS = ["finance"]


@post(
    "/admin/settlement-batches",
    status_code=201,
    summary="Build settlement batches from unbatched payables",
    opt={"permission": "settlement:write", "idempotent": True},
    tags=_TAGS,
)
async def create_settlement_batches(
    request: Request, platform: Platform, data: JSONBody[s.SettlementBatchCreate | None] = None
) -> s.SettlementBatchesCreated:
    body = data or s.SettlementBatchCreate()
    return await settlements.create_batches(
        platform.db,
        audit_actor(request),
        t_plus_days=platform.settings.settlement_t_plus_days,
        merchant_id=body.merchant_id,
        cutoff=body.cutoff,
    )


@get(
    "/admin/settlement-holds",
    summary="Merchants held from settlement: their refunds outweigh what they are owed",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def list_settlement_holds(platform: Platform) -> s.SettlementHolds:
    return s.SettlementHolds(items=await settlements.settlement_holds(platform.db))


@post(
    "/admin/settlement-batches/preview",
    status_code=200,
    summary="What building settlement batches with this body would make now: payables, missing payout accounts, value date (writes nothing)",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def preview_settlement_batches(
    platform: Platform, data: JSONBody[s.SettlementBatchCreate | None] = None
) -> s.SettlementBatchPreview:
    body = data or s.SettlementBatchCreate()
    return await settlements.preview_batches(
        platform.db,
        t_plus_days=platform.settings.settlement_t_plus_days,
        merchant_id=body.merchant_id,
        cutoff=body.cutoff,
    )


@get("/admin/settlement-batches", summary="List settlement batches", opt={"permission": "settlement:read"}, tags=_TAGS)
async def list_settlement_batches(
    platform: Platform,
    page: Paging,
    window: Window,
    merchant_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> Page[s.SettlementBatch]:
    return await settlements.list_batches(platform.db, page, window, merchant_id=merchant_id, status=status)


@get(
    "/admin/settlement-batches/{batch_id:str}",
    summary="One settlement batch with entries, adjustments, history",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def get_settlement_batch(
    request: Request, platform: Platform, batch_id: FromPath[str]
) -> s.SettlementBatchDetail:
    full = principal_of(request).may(payout_accounts.READ_PERMISSION)
    return await settlements.batch_detail(platform.db, batch_id, full_account=full)


@get(
    "/admin/settlement-batches/{batch_id:str}/export.csv",
    summary="Settlement batch report (standard) or bank upload file (format=bank_generic, ...)",
    opt={"permission": "settlement:export"},
    tags=_TAGS,
)
async def export_settlement_batch(
    request: Request,
    platform: Platform,
    batch_id: FromPath[str],
    fmt: ReportFormat = None,
) -> Response[bytes] | Stream:
    return await batch_csv(request, platform, batch_id, fmt)


@post(
    "/admin/settlement-batches/{batch_id:str}/mark-paid",
    status_code=200,
    summary="Record the payout of a batch",
    opt={"permission": "settlement:pay", "idempotent": True},
    tags=_TAGS,
)
async def mark_paid(
    request: Request, platform: Platform, batch_id: FromPath[str], data: JSONBody[s.MarkPaid]
) -> s.SettlementBatch:
    async with platform.db.transaction() as conn:
        return await settlements.mark_paid(
            conn, batch_id, audit_actor(request), payout_reference=data.payout_reference, note=data.note
        )


@post(
    "/admin/settlement-batches/{batch_id:str}/mark-failed",
    status_code=200,
    summary="The payout failed: release the entries",
    opt={"permission": "settlement:write"},
    tags=_TAGS,
)
async def mark_failed(
    request: Request, platform: Platform, batch_id: FromPath[str], data: JSONBody[s.Reason]
) -> s.SettlementBatch:
    async with platform.db.transaction() as conn:
        return await settlements.mark_failed(conn, batch_id, audit_actor(request), reason=data.reason)


@post(
    "/admin/settlement-batches/{batch_id:str}/cancel",
    status_code=200,
    summary="Cancel a pending batch: release the entries",
    opt={"permission": "settlement:write"},
    tags=_TAGS,
)
async def cancel(
    request: Request, platform: Platform, batch_id: FromPath[str], data: JSONBody[s.Reason]
) -> s.SettlementBatch:
    async with platform.db.transaction() as conn:
        return await settlements.cancel(conn, batch_id, audit_actor(request), reason=data.reason)


@post(
    "/admin/settlement-batches/{batch_id:str}/reprocess",
    status_code=201,
    summary="Re-batch a failed or cancelled batch into a new pending batch",
    opt={"permission": "settlement:write", "idempotent": True},
    tags=_TAGS,
)
async def reprocess(request: Request, platform: Platform, batch_id: FromPath[str]) -> s.SettlementBatch:
    async with platform.db.transaction() as conn:
        return await settlements.reprocess(
            conn, batch_id, audit_actor(request), t_plus_days=platform.settings.settlement_t_plus_days
        )


@patch(
    "/admin/settlement-batches/{batch_id:str}/reference",
    summary="Set or correct the payout reference",
    opt={"permission": "settlement:pay"},
    tags=_TAGS,
)
async def update_reference(
    request: Request, platform: Platform, batch_id: FromPath[str], data: JSONBody[s.ReferenceUpdate]
) -> s.SettlementBatch:
    async with platform.db.transaction() as conn:
        return await settlements.update_reference(
            conn, batch_id, audit_actor(request), payout_reference=data.payout_reference
        )


@post(
    "/admin/settlement-batches/{batch_id:str}/adjustments",
    status_code=201,
    summary="Adjust a pending batch's payable",
    opt={"permission": "settlement:adjust", "idempotent": True},
    tags=_TAGS,
)
async def create_adjustment(
    request: Request, platform: Platform, batch_id: FromPath[str], data: JSONBody[s.AdjustmentCreate]
) -> s.SettlementAdjustmentCreated:
    async with platform.db.transaction() as conn:
        return await adjustments.add_adjustment(
            conn,
            batch_id,
            audit_actor(request),
            adjustment_type=data.adjustment_type,
            amount=data.amount,
            reason=data.reason,
            max_amount=platform.settings.finance_max_adjustment,
        )


@get(
    "/admin/settlement-adjustments",
    summary="Adjustments across batches",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def list_adjustments(
    platform: Platform,
    page: Paging,
    window: Window,
    merchant_id: FromQuery[str | None] = None,
    adjustment_type: FromQuery[str | None] = None,
) -> Page[s.SettlementAdjustment]:
    return await adjustments.list_adjustments(
        platform.db, page, window, merchant_id=merchant_id, adjustment_type=adjustment_type
    )


@get(
    "/admin/settlement-adjustments/export.csv",
    summary="Adjustment report as CSV (small; use an export job above EXPORT_SETTLEMENT_ADJUSTMENT_MAX_ROWS)",
    opt={"permission": "settlement:export"},
    tags=_TAGS,
)
async def export_adjustments(
    platform: Platform,
    window: Window,
    merchant_id: FromQuery[str | None] = None,
    adjustment_type: FromQuery[str | None] = None,
) -> Stream:
    filters = s.AdjustmentFilters(
        merchant_id=merchant_id, adjustment_type=adjustment_type, from_=window.from_, to=window.to
    )
    cap = platform.settings.export_settlement_adjustment_max_rows
    await exports.check_direct_report(platform.db, filters, cap)
    return csv_stream(csv_reports.adjustment_report(platform.db, filters, cap), "settlement-adjustments.csv")


@post(
    "/admin/exports/settlement-adjustments",
    status_code=201,
    summary="Start an async adjustment export",
    opt={"permission": "settlement:export", "idempotent": True},
    tags=_TAGS,
)
async def create_adjustment_export(
    request: Request, platform: Platform, data: JSONBody[s.AdjustmentExportCreate | None] = None
) -> s.ExportJob:
    body = data or s.AdjustmentExportCreate()
    filters = s.AdjustmentFilters(
        merchant_id=body.merchant_id, adjustment_type=body.adjustment_type, from_=body.from_, to=body.to
    )
    async with platform.db.transaction() as conn:
        return await exports.create_adjustment_export(conn, audit_actor(request), filters)


@get(
    "/admin/exports/{job_id:str}", summary="An export job's status", opt={"permission": "settlement:export"}, tags=_TAGS
)
async def get_export(platform: Platform, job_id: FromPath[str]) -> s.ExportJob:
    return await exports.get_job(platform.db, job_id)


@get(
    "/admin/exports/{job_id:str}/download",
    summary="Download a completed export",
    opt={"permission": "settlement:export"},
    tags=_TAGS,
)
async def download_export(platform: Platform, job_id: FromPath[str]) -> File:
    path, job = await exports.download_path(platform.db, platform.settings, job_id)
    return File(path=path, filename=f"{job.export_type.replace('_', '-')}-{job.id}.csv", media_type="text/csv")


@get(
    "/admin/reconciliation/settlement-batches",
    summary="Batches against the ledger, plus callback exceptions",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def reconcile_settlement_batches(
    platform: Platform,
    page: Paging,
    window: Window,
    merchant_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> s.ReconciliationReport:
    return await reconciliation.settlement_batches(platform.db, page, window, merchant_id=merchant_id, status=status)


@get(
    "/admin/dashboard/summary",
    summary="Finance and settlement overview",
    opt={"permission": "dashboard:read"},
    tags=_TAGS,
)
async def dashboard_summary(platform: Platform) -> s.DashboardSummary:
    return await dashboard.settlement_summary(platform.db)  # type: ignore[return-value]


@get(
    "/admin/observability/summary",
    summary="Outbox, export jobs, processes and recent transactions",
    opt={"permission": "observability:read"},
    tags=_TAGS,
)
async def observability_summary(platform: Platform) -> s.ObservabilitySummary:
    return await dashboard.observability_summary(platform)


@get(
    "/admin/merchants/{merchant_id:str}/payout-account",
    summary="A merchant's payout account and its history (masked without payout_account:read)",
    opt={"permission": "merchant:read"},
    tags=_TAGS,
)
async def get_payout_account(request: Request, platform: Platform, merchant_id: FromPath[str]) -> s.PayoutAccountState:
    full = principal_of(request).may(payout_accounts.READ_PERMISSION)
    async with platform.db.pool.acquire() as conn:
        return await payout_accounts.account_state(conn, merchant_id, full=full)


@put(
    "/admin/merchants/{merchant_id:str}/payout-account",
    summary="Set or change a merchant's payout account (refused while a batch of theirs is pending)",
    opt={"permission": "payout_account:write", "rate_limit": "admin_write", "idempotent": True},
    tags=_TAGS,
)
async def put_payout_account(
    request: Request, platform: Platform, merchant_id: FromPath[str], data: JSONBody[s.PayoutAccountPut]
) -> s.PayoutAccount:
    async with platform.db.transaction() as conn:
        return await payout_accounts.set_account(
            conn,
            merchant_id,
            audit_actor(request),
            bank_code=data.bank_code,
            account_number=data.account_number,
            account_name=data.account_name,
        )


@get("/admin/payout-banks", summary="Banks a payout account may be at", opt={"permission": "merchant:read"}, tags=_TAGS)
async def list_payout_banks(platform: Platform) -> Page[s.PayoutBank]:
    async with platform.db.pool.acquire() as conn:
        return Page(items=await payout_accounts.list_banks(conn))


@put(
    "/admin/payout-banks/{code:str}",
    summary="Add a bank to the list, or change one",
    opt={"permission": "payout_bank:write", "rate_limit": "admin_write"},
    tags=_TAGS,
)
async def put_payout_bank(
    request: Request, platform: Platform, code: FromPath[str], data: JSONBody[s.PayoutBankPut]
) -> s.PayoutBank:
    async with platform.db.transaction() as conn:
        return await payout_accounts.put_bank(conn, code, audit_actor(request), data)


# What a multipart envelope adds around the file (boundaries, part headers), at most.
MULTIPART_OVERHEAD = 64 * 1024


class FileUpload:
    """The ``file`` part of a ``multipart/form-data`` request, streamed as it arrives."""

    def __init__(self, request: Request, max_bytes: int) -> None:
        self.request = request
        self.max_bytes = max_bytes
        self.file_name: str | None = None

    def boundary(self) -> str:
        media_type, options = multipart.parse_options_header(self.request.headers.get("content-type", ""))
        if media_type != "multipart/form-data" or not options.get("boundary"):
            raise ReportMalformed(
                "send the report as multipart/form-data with the CSV in a part named file",
                code="report_not_csv",
                details={"line": None},
            )
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes + MULTIPART_OVERHEAD:
            raise ReportTooLarge(
                f"the report is larger than {self.max_bytes} bytes (ACQUIRER_REPORT_MAX_BYTES)",
                details={"max_bytes": self.max_bytes},
            )
        return options["boundary"]

    async def chunks(self) -> AsyncIterator[bytes]:
        parser = multipart.PushMultipartParser(self.boundary(), max_segment_count=4, strict=True)
        in_file = found = False
        received = 0
        try:
            async for data in self.request.stream():
                received += len(data)
                if received > self.max_bytes + MULTIPART_OVERHEAD:
                    raise ReportTooLarge(
                        f"the report is larger than {self.max_bytes} bytes (ACQUIRER_REPORT_MAX_BYTES)",
                        details={"max_bytes": self.max_bytes},
                    )
                for event in parser.parse(data):
                    if isinstance(event, multipart.MultipartSegment):
                        in_file = event.name == "file" and not found
                        if not in_file:
                            raise ReportMalformed(
                                "the form takes one part, named file", code="report_not_csv", details={"line": None}
                            )
                        found = True
                        self.file_name = (event.filename or "")[:255] or None
                    elif event is None:
                        in_file = False
                    elif in_file:
                        yield bytes(event)
            parser.close()
        except multipart.MultipartError as exc:
            raise ReportMalformed(
                f"the multipart/form-data body is malformed: {exc}", code="report_not_csv", details={"line": None}
            ) from None
        if not found:
            raise ReportMalformed("the form has no part named file", code="report_not_csv", details={"line": None})


_REPORTS = "/admin/reconciliation/acquirer-reports"


@post(
    _REPORTS,
    status_code=201,
    summary="Import the acquirer's settlement report (multipart/form-data, CSV in the part named file)",
    opt={"permission": "settlement:write", "upload": True, "rate_limit": "admin_write"},
    request_max_body_size=None,  # streamed: FileUpload enforces ACQUIRER_REPORT_MAX_BYTES itself
    tags=_TAGS,
)
async def import_acquirer_report(request: Request, platform: Platform) -> Response[s.AcquirerReport]:
    upload = FileUpload(request, platform.settings.acquirer_report_max_bytes)
    report = await acquirer_reports.import_report(
        platform.db,
        upload.chunks(),
        audit_actor(request),
        file_name=lambda: upload.file_name,
        max_bytes=platform.settings.acquirer_report_max_bytes,
        lag_days=platform.settings.acquirer_settlement_lag_days,
    )
    return Response(report, status_code=200 if report.already_imported else 201)


@get(_REPORTS, summary="Imported acquirer reports", opt={"permission": "settlement:read"}, tags=_TAGS)
async def list_acquirer_reports(platform: Platform, page: Paging, window: Window) -> Page[s.AcquirerReport]:
    return await acquirer_reports.list_reports(platform.db, page, window)


@get(
    _REPORTS + "/{report_id:str}",
    summary="An acquirer report's counts and totals against the ledger",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def get_acquirer_report(platform: Platform, report_id: FromPath[str]) -> s.AcquirerReport:
    return await acquirer_reports.get_report(platform.db, report_id)


@get(
    _REPORTS + "/{report_id:str}/exceptions",
    summary="An acquirer report's lines that do not match the ledger",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def list_acquirer_report_exceptions(
    platform: Platform,
    report_id: FromPath[str],
    page: Paging,
    kind: FromQuery[str | None] = None,
    resolved: FromQuery[bool | None] = None,
    merchant_id: FromQuery[str | None] = None,
) -> Page[s.AcquirerReportException]:
    return await acquirer_reports.list_exceptions(
        platform.db, report_id, page, kind=kind, resolved=resolved, merchant_id=merchant_id
    )


@get(
    _REPORTS + "/{report_id:str}/exceptions/export.csv",
    summary="An acquirer report's exceptions as CSV",
    opt={"permission": "settlement:export"},
    tags=_TAGS,
)
async def export_acquirer_report_exceptions(
    platform: Platform,
    report_id: FromPath[str],
    kind: FromQuery[str | None] = None,
    resolved: FromQuery[bool | None] = None,
    merchant_id: FromQuery[str | None] = None,
) -> Stream:
    acquirer_reports.check_kind(kind)
    report = await acquirer_reports.get_report(platform.db, report_id)
    return csv_stream(
        acquirer_reports.exceptions_csv(platform.db, report.id, kind=kind, resolved=resolved, merchant_id=merchant_id),
        f"acquirer-report-{report.id}-exceptions.csv",
    )


@post(
    _REPORTS + "/{report_id:str}/exceptions/{exception_id:str}/resolve",
    status_code=200,
    summary="Close an exception with a note",
    opt={"permission": "settlement:write", "rate_limit": "admin_write", "idempotent": True},
    tags=_TAGS,
)
async def resolve_acquirer_report_exception(
    request: Request,
    platform: Platform,
    report_id: FromPath[str],
    exception_id: FromPath[str],
    data: JSONBody[s.ExceptionResolve],
) -> s.AcquirerReportException:
    async with platform.db.transaction() as conn:
        return await acquirer_reports.resolve_exception(
            conn, report_id, exception_id, audit_actor(request), note=data.note
        )


@get(
    "/admin/mdr-schedules",
    summary="MDR schedule rows by category (on: only those in force that Jakarta day)",
    opt={"permission": "merchant:read"},
    tags=_TAGS,
)
async def list_mdr_schedules(
    platform: Platform, category: FromQuery[str | None] = None, on: FromQuery[date | None] = None
) -> s.MdrSchedules:
    async with platform.db.transaction() as conn:
        return s.MdrSchedules(items=await mdr.list_schedules(conn, category, on))


@post(
    "/admin/mdr-schedules",
    status_code=201,
    summary="A new MDR schedule for a category from a future day (closes the one in force there)",
    opt={"permission": "merchant:fees", "idempotent": True},
    tags=_TAGS,
)
async def create_mdr_schedule(
    request: Request, platform: Platform, data: JSONBody[s.MdrScheduleCreate]
) -> s.MdrSchedules:
    async with platform.db.transaction() as conn:
        return s.MdrSchedules(items=await mdr.add_schedule(conn, audit_actor(request), data))


@get(
    "/admin/settlement-holidays",
    summary="Non-working days admins added to the settlement calendar (since: on or after that day)",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def list_settlement_holidays(
    # A day, not the RFC 3339 instant every list's shared `from` is (docs/architecture.md, "Lists").
    platform: Platform,
    since: Annotated[date | None, QueryParameter(name="since")] = None,
) -> s.SettlementHolidays:
    async with platform.db.pool.acquire() as conn:
        return s.SettlementHolidays(items=await settlement_holidays.list_holidays(conn, since))


@post(
    "/admin/settlement-holidays",
    status_code=201,
    summary="Add a non-working day to the settlement calendar (after today and every batch's value date)",
    opt={"permission": "settlement:write", "idempotent": True},
    tags=_TAGS,
)
async def create_settlement_holiday(
    request: Request, platform: Platform, data: JSONBody[s.SettlementHolidayCreate]
) -> s.SettlementHoliday:
    async with platform.db.transaction() as conn:
        return await settlement_holidays.add_holiday(conn, audit_actor(request), data)


routes = [
    list_settlement_holidays,
    create_settlement_holiday,
    list_mdr_schedules,
    create_mdr_schedule,
    import_acquirer_report,
    list_acquirer_reports,
    get_acquirer_report,
    list_acquirer_report_exceptions,
    export_acquirer_report_exceptions,
    resolve_acquirer_report_exception,
    get_payout_account,
    put_payout_account,
    list_payout_banks,
    put_payout_bank,
    create_settlement_batches,
    preview_settlement_batches,
    list_settlement_holds,
    list_settlement_batches,
    get_settlement_batch,
    export_settlement_batch,
    mark_paid,
    mark_failed,
    cancel,
    reprocess,
    update_reference,
    create_adjustment,
    list_adjustments,
    export_adjustments,
    create_adjustment_export,
    get_export,
    download_export,
    reconcile_settlement_batches,
    dashboard_summary,
    observability_summary,
]
