"""Dashboards: the admin finance summary, the merchant's settlement summary and
the operations (observability) summary.

Definitions (docs/finance.md): ``pending_payout_amount`` = Σ adjusted payable
of pending batches; ``paid_payout_amount`` = Σ payable (before adjustments) of
paid batches; ``settlement_adjustment_amount`` = Σ adjustments of live (pending
and paid) batches; ``settlement_adjusted_paid_amount`` = Σ adjusted payable of
paid batches, i.e. what was actually transferred. "Today" is the calendar day
in Asia/Jakarta (WIB, UTC+7), the platform's business day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import msgspec

from qris_soundbox.core import runtime
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.db import QUERIES, Database, fetch_one
from qris_soundbox.core.finance.schemas import (
    DashboardSummary,
    ExportJobsOverview,
    ExportWorkerOverview,
    ObservabilitySummary,
    SettlementSummary,
    StatusAmount,
    TodayTransactions,
)
from qris_soundbox.core.finance.settlements import STATUSES, batch_from_row
from qris_soundbox.core.ids import id_floor

BUSINESS_TIMEZONE = "Asia/Jakarta"
LATEST_BATCHES = 5
# The observability summary: its window for transactions and closed outbox rows, and how far apart the
# clocks of the processes that make ids may be (ids carry their time: core/ids.py).
RECENT_WINDOW = timedelta(hours=1)
CLOCK_SLACK = timedelta(minutes=5)


def business_tz() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(BUSINESS_TIMEZONE)
    except Exception:  # no tz database on the host: WIB has had no DST since 1964
        return timezone(timedelta(hours=7), "WIB")


def business_day(now: datetime | None = None) -> tuple[str, datetime, datetime]:
    """Today's date in Jakarta and its [start, end) in UTC."""
    local = (now or datetime.now(UTC)).astimezone(business_tz())
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=1)).replace(hour=0)
    return start.date().isoformat(), start.astimezone(UTC), end.astimezone(UTC)


async def settlement_summary(db: Database, merchant_id: str | None = None) -> SettlementSummary:
    date, start, end = business_day()
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        totals = {r["status"]: r for r in await conn.fetch(QUERIES["settlement_totals_by_status"], merchant_id)}
        unbatched = await fetch_one(conn, "unbatched_payable_totals", merchant_id)
        latest = await conn.fetch(QUERIES["latest_settlement_batches"], merchant_id, LATEST_BATCHES)
        today = await fetch_one(conn, "transactions_in_window", start, end, merchant_id)
        fee_total = await conn.fetchval(QUERIES["platform_fee_total"]) if merchant_id is None else None

    def total(status: str, field: str) -> int:
        row = totals.get(status)
        return int(row[field]) if row else 0

    values = dict(
        generated_at=datetime.now(UTC),
        pending_payout_amount=total("pending", "adjusted_payable_amount"),
        paid_payout_amount=total("paid", "payable_amount"),
        settlement_adjustment_amount=total("pending", "adjustment_amount") + total("paid", "adjustment_amount"),
        settlement_adjusted_paid_amount=total("paid", "adjusted_payable_amount"),
        unbatched_payable_amount=unbatched["amount"],
        unbatched_payable_count=unbatched["entry_count"],
        batch_counts={status: total(status, "batch_count") for status in STATUSES},
        latest_batches=[batch_from_row(r) for r in latest],
        today=_today(date, start, end, today),
    )
    if merchant_id is None:
        return DashboardSummary(**values, platform_fee_total=fee_total or 0)
    return SettlementSummary(**values)


def _today(date: str, start: datetime, end: datetime, row: Any) -> TodayTransactions:
    return TodayTransactions(
        date=date,
        timezone=BUSINESS_TIMEZONE,
        from_=start,
        to=end,
        transaction_count=row["created_count"],
        paid_count=row["paid_count"],
        paid_volume=row["paid_volume"],
    )


async def today_transactions(db: Database, merchant_id: str) -> TodayTransactions:
    """A merchant's payments of the business day so far: what its "hari ini" page polls (any
    merchant role may read it, unlike the settlement summary)."""
    date, start, end = business_day()
    async with db.pool.acquire() as conn:
        row = await fetch_one(conn, "transactions_in_window", start, end, merchant_id)
    return _today(date, start, end, row)


async def observability_summary(platform: PlatformContext) -> ObservabilitySummary:
    """The operations summary: its database part read at most every ``OBSERVABILITY_MAX_AGE_S`` per
    process (``generated_at`` says when), this process's own state (export worker, legacy token) now."""
    summary = await platform.observability.get(lambda: _read_observability(platform))
    worker = msgspec.structs.replace(summary.export_jobs.worker, this_process=platform.export_worker)
    return msgspec.structs.replace(
        summary,
        export_jobs=msgspec.structs.replace(summary.export_jobs, worker=worker),
        legacy_device_token=platform.legacy_device_token.usage,
    )


async def _read_observability(platform: PlatformContext) -> ObservabilitySummary:
    """One read of the database part; every query reads a bounded set (partial indexes, the last hour
    through the primary key), so its cost does not grow with the transactions and outbox rows kept."""
    db, settings = platform.db, platform.settings
    now = datetime.now(UTC)
    since = now - RECENT_WINDOW
    # Ids carry the time they were made (core/ids.py) by the clock of the process that made them:
    # the floor allows for clocks a few minutes apart; created_at decides.
    floor = since - CLOCK_SLACK
    async with db.pool.acquire() as conn:
        devices_online = await conn.fetchval(QUERIES["metrics_devices_online"])
        outbox = await conn.fetch(QUERIES["observability_outbox_counts"], id_floor("obx", floor), since)
        job_counts = await conn.fetch(QUERIES["export_job_counts"])
        queue = await fetch_one(conn, "export_queue_state", settings.export_job_stale_running_ms)
        instances = await conn.fetch(QUERIES["runtime_instances_overview"])
        recent = await conn.fetch(QUERIES["observability_transactions_since"], id_floor("txn", floor), since)
    oldest = queue["oldest_pending_at"]
    return ObservabilitySummary(
        generated_at=now,
        devices_online=devices_online,
        outbox={r["status"]: r["count"] for r in outbox},
        export_jobs=ExportJobsOverview(
            counts={r["status"]: r["count"] for r in job_counts},
            worker=ExportWorkerOverview(
                this_process=platform.export_worker,
                oldest_pending_age_seconds=(now - oldest).total_seconds() if oldest else None,
                stale_running_jobs=queue["stale_running"],
                last_completed_at=queue["last_completed_at"],
            ),
        ),
        runtime_instances=runtime.runtime_instances(instances),
        transactions_last_hour={r["status"]: StatusAmount(count=r["count"], amount=r["amount"]) for r in recent},
        legacy_device_token=platform.legacy_device_token.usage,
    )
