"""Async export jobs and the ``exports.process`` worker job.

A request creates a ``pending`` row; the worker (any process running the
worker role) claims pending rows with ``FOR UPDATE SKIP LOCKED``, writes the
CSV to ``EXPORT_STORAGE_DIR`` under a temporary name, fsyncs and renames it
into place (readers never see half a file), then marks the job ``completed``.
While it writes it refreshes ``heartbeat_at``; a running job whose heartbeat is
older than ``EXPORT_JOB_STALE_RUNNING_MS`` is taken back (a crashed worker)
and retried, up to ``MAX_ATTEMPTS``. Completed files live for
``EXPORT_RETENTION_DAYS``; then the file is removed and the row marked
``expired`` (kept, without its file, as a record of who exported what).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.finance import csv_reports
from qris_soundbox.core.finance.adjustments import check_filter_type
from qris_soundbox.core.finance.errors import ExportExpired, ExportJobNotFound, ExportNotReady, ExportTooLarge
from qris_soundbox.core.finance.schemas import AdjustmentFilters, ExportJob
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import time_window
from qris_soundbox.core.schemas import from_row

log = logging.getLogger(__name__)
EXPORT_TYPES = ("settlement_adjustments",)
MAX_ATTEMPTS = 3
HEARTBEAT_EVERY_S = 2.0
CLEANUP_BATCH = 100


def storage_dir(settings: Settings) -> Path:
    """``EXPORT_STORAGE_DIR``, relative to the working directory unless absolute."""
    return Path(settings.export_storage_dir).expanduser().resolve()


def job_view(row: Any) -> ExportJob:
    job = from_row(ExportJob, row)
    if job.status == "completed":
        job.download_url = f"/admin/exports/{job.id}/download"
    return job


async def create_adjustment_export(conn: Connection, actor: AuditActor, filters: AdjustmentFilters) -> ExportJob:
    check_filter_type(filters.adjustment_type)
    time_window(filters.from_, filters.to)
    row = await fetch_one(
        conn,
        "insert_export_job",
        new_id("exp"),
        "settlement_adjustments",
        msgspec.to_builtins(filters),
        actor.actor_type,
        actor.actor_id,
    )
    await audit.record(
        conn,
        actor,
        "export_job.create",
        entity_type="export_job",
        entity_id=row["id"],
        payload={"export_type": "settlement_adjustments", "filters": msgspec.to_builtins(filters)},
    )
    return job_view(row)


async def check_direct_report(db: Database, filters: AdjustmentFilters, max_rows: int) -> None:
    """The adjustment report is answered directly up to ``max_rows`` rows; more must be an export job."""
    check_filter_type(filters.adjustment_type)
    rows = await db.fetchval(
        "count_settlement_adjustments", filters.merchant_id, filters.adjustment_type, filters.from_, filters.to
    )
    if rows > max_rows:
        raise ExportTooLarge(
            f"{rows} adjustments match; more than {max_rows} rows must be exported as a job "
            "(POST /admin/exports/settlement-adjustments)",
            details={"rows": rows, "limit": max_rows},
        )


async def get_job(db: Database, job_id: str) -> ExportJob:
    row = await db.fetchrow("export_job_by_id", job_id)
    if row is None:
        raise ExportJobNotFound(f"export job {job_id} does not exist", details={"job_id": job_id})
    return job_view(row)


async def download_path(db: Database, settings: Settings, job_id: str) -> tuple[Path, ExportJob]:
    row = await db.fetchrow("export_job_by_id", job_id)
    if row is None:
        raise ExportJobNotFound(f"export job {job_id} does not exist", details={"job_id": job_id})
    job = job_view(row)
    if job.status == "expired":
        raise ExportExpired(f"export job {job_id} expired and its file was removed", details={"job_id": job_id})
    if job.status != "completed":
        raise ExportNotReady(
            f"export job {job_id} is {job.status}; download it once it is completed",
            details={"job_id": job_id, "status": job.status},
        )
    path = storage_dir(settings) / row["file_name"]
    if not path.is_file():
        raise ExportExpired(f"the file of export job {job_id} is gone", details={"job_id": job_id})
    return path, job


async def process(platform: PlatformContext) -> int:
    """Job ``exports.process``: take back stale jobs, run pending ones, remove expired files.

    Returns how many jobs this run finished (completed or failed)."""
    db, settings = platform.db, platform.settings
    state = platform.export_worker
    worker_id = platform.instance_id or f"worker-{os.getpid()}"
    try:
        await db.fetch("reclaim_stale_export_jobs", settings.export_job_stale_running_ms, MAX_ATTEMPTS)
        claimed = await db.fetch("claim_export_jobs", settings.export_worker_batch_size, worker_id)
        finished = 0
        for job in claimed:
            finished += await run_job(db, settings, job, worker_id)
        await remove_expired(db, settings)
        state.last_processed, state.last_error = finished, None
        return finished
    except Exception as exc:
        state.last_error = type(exc).__name__
        raise
    finally:
        state.last_run_at = datetime.now(UTC)


async def run_job(db: Database, settings: Settings, job: asyncpg.Record, worker_id: str) -> int:
    directory = storage_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"{job['id']}.csv"
    partial = directory / f".{job['id']}.{worker_id}.partial"
    try:
        filters = msgspec.convert(job["filters"], AdjustmentFilters)
        row_count = await _write_adjustments(db, settings, job["id"], worker_id, filters, partial)
    except _TooManyRows as too_many:
        partial.unlink(missing_ok=True)
        await db.fetchrow(
            "fail_export_job",
            job["id"],
            worker_id,
            "export_too_large",
            f"{too_many.rows} rows match; the limit is {settings.export_settlement_adjustment_max_rows}"
            " (EXPORT_SETTLEMENT_ADJUSTMENT_MAX_ROWS): narrow the filters",
            too_many.rows,
        )
        return 1
    except _LostJob:
        partial.unlink(missing_ok=True)
        return 0
    except (msgspec.ValidationError, OSError) as exc:
        partial.unlink(missing_ok=True)
        log.warning("export job failed", extra={"job_id": job["id"], "error": str(exc)})
        await db.fetchrow("fail_export_job", job["id"], worker_id, "export_failed", str(exc)[:500], None)
        return 1
    byte_size = partial.stat().st_size
    os.replace(partial, final)  # atomic on one filesystem
    done = await db.fetchrow(
        "complete_export_job", job["id"], worker_id, row_count, byte_size, final.name, settings.export_retention_days
    )
    if done is None:  # taken back meanwhile; the other attempt writes its own file
        return 0
    return 1


class _TooManyRows(Exception):
    def __init__(self, rows: int) -> None:
        self.rows = rows


class _LostJob(Exception):
    """The job was taken back from this worker (its heartbeat went stale)."""


async def _write_adjustments(
    db: Database, settings: Settings, job_id: str, worker_id: str, filters: AdjustmentFilters, partial: Path
) -> int:
    limit = settings.export_settlement_adjustment_max_rows
    async with db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        rows = await conn.fetchval(
            QUERIES["count_settlement_adjustments"],
            filters.merchant_id,
            filters.adjustment_type,
            filters.from_,
            filters.to,
        )
        if rows > limit:
            raise _TooManyRows(rows)
        last_beat = time.monotonic()
        with partial.open("wb") as out:
            async for chunk in csv_reports.chunked_csv(
                csv_reports.adjustment_rows(conn, filters, limit), csv_reports.ADJUSTMENT_COLUMNS
            ):
                out.write(chunk)
                if time.monotonic() - last_beat >= HEARTBEAT_EVERY_S:
                    if await db.fetchrow("heartbeat_export_job", job_id, worker_id) is None:
                        raise _LostJob()
                    last_beat = time.monotonic()
            out.flush()
            os.fsync(out.fileno())
    return rows


async def remove_expired(db: Database, settings: Settings) -> list[str]:
    """Completed exports past ``EXPORT_RETENTION_DAYS``: file removed, row marked expired."""
    directory = storage_dir(settings)
    async with db.transaction() as conn:
        due = await conn.fetch(QUERIES["due_expired_export_jobs"], CLEANUP_BATCH)
        for row in due:
            if row["file_name"]:
                (directory / row["file_name"]).unlink(missing_ok=True)
            await conn.execute(QUERIES["mark_export_job_expired"], row["id"])
    return [row["id"] for row in due]
