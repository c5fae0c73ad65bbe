"""Async adjustment exports: the worker job, downloads, retention, stale jobs, row cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qris_soundbox.core.finance import exports
from tests.devices.helpers import eventually
from tests.finance.helpers import batch_for, merchant_with_payments, parse_csv
from tests.support import PlatformFactory, RunningPlatform

MAX_ROWS = 5


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="module")
async def manual(platform_factory: PlatformFactory, storage: Path) -> RunningPlatform:
    """A platform whose export worker is off: tests run ``exports.process`` themselves."""
    return await platform_factory.start(
        export_worker_enabled=False, export_storage_dir=str(storage), export_settlement_adjustment_max_rows=MAX_ROWS
    )


@pytest.fixture
async def worker(platform_factory: PlatformFactory, storage: Path) -> AsyncIterator[RunningPlatform]:
    running = await platform_factory.start(export_worker_interval_ms=200, export_storage_dir=str(storage))
    yield running
    await platform_factory.stop(running)


async def merchant_with_adjustments(running: RunningPlatform, count: int) -> str:
    ids = await merchant_with_payments(running, [1_000_000])
    batch = await batch_for(running, ids["merchant_id"])
    for index in range(count):
        response = await running.http.post(
            f"/admin/settlement-batches/{batch['id']}/adjustments",
            json={"adjustment_type": "correction", "amount": -(index + 1), "reason": f"=row {index}"},
            headers=running.admin_headers,
        )
        assert response.status_code == 201, response.text
    return ids["merchant_id"]


async def start_export(running: RunningPlatform, body: dict) -> dict:
    response = await running.http.post(
        "/admin/exports/settlement-adjustments", json=body, headers=running.admin_headers
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["status"] == "pending" and job["id"] and job["download_url"] is None
    return job


async def job_of(running: RunningPlatform, job_id: str) -> dict:
    response = await running.http.get(f"/admin/exports/{job_id}", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_worker_completes_a_job_and_it_downloads(worker: RunningPlatform, storage: Path) -> None:
    merchant_id = await merchant_with_adjustments(worker, 3)
    job = await start_export(worker, {"merchant_id": merchant_id})

    async def completed() -> bool:
        return (await job_of(worker, job["id"]))["status"] == "completed"

    assert await eventually(completed, timeout=30), await job_of(worker, job["id"])
    current = await job_of(worker, job["id"])
    assert current["row_count"] == 3 and current["download_url"] == f"/admin/exports/{job['id']}/download"
    assert (storage / f"{job['id']}.csv").is_file()
    assert not list(storage.glob(".*partial"))
    download = await worker.http.get(current["download_url"], headers=worker.admin_headers)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    rows = parse_csv(download.text)
    assert len(rows) == 3 and {r["merchant_id"] for r in rows} == {merchant_id}
    assert sorted(int(r["amount"]) for r in rows) == [-3, -2, -1]
    assert all(r["reason"].startswith("'=") for r in rows)
    summary = (await worker.http.get("/admin/observability/summary", headers=worker.admin_headers)).json()
    assert summary["export_jobs"]["counts"]["completed"] >= 1
    assert summary["export_jobs"]["worker"]["this_process"]["enabled"] is True
    assert summary["export_jobs"]["worker"]["this_process"]["last_run_at"] is not None


async def test_not_ready_then_expired_after_retention(manual: RunningPlatform, storage: Path) -> None:
    merchant_id = await merchant_with_adjustments(manual, 2)
    job = await start_export(manual, {"merchant_id": merchant_id, "adjustment_type": "correction"})
    early = await manual.http.get(f"/admin/exports/{job['id']}/download", headers=manual.admin_headers)
    assert early.status_code == 409 and early.json()["error"]["code"] == "export_not_ready"

    await exports.process(manual.platform)
    done = await job_of(manual, job["id"])
    assert done["status"] == "completed" and done["row_count"] == 2 and done["expires_at"]
    path = storage / f"{job['id']}.csv"
    assert path.is_file()

    # Retention: back-date the job past EXPORT_RETENTION_DAYS and let the worker clean up.
    await manual.platform.db.pool.execute(
        "UPDATE export_jobs SET completed_at = now() - interval '8 days', expires_at = now() - interval '1 day' "
        "WHERE id = $1",
        job["id"],
    )
    await exports.process(manual.platform)
    expired = await job_of(manual, job["id"])
    assert expired["status"] == "expired" and expired["download_url"] is None and expired["expired_at"]
    assert not path.exists()
    gone = await manual.http.get(f"/admin/exports/{job['id']}/download", headers=manual.admin_headers)
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "export_expired"


async def test_the_summary_says_how_many_jobs_the_workers_last_run_finished(manual: RunningPlatform) -> None:
    async def last_processed() -> int:
        summary = await manual.http.get("/admin/observability/summary", headers=manual.admin_headers)
        assert summary.status_code == 200, summary.text
        return summary.json()["export_jobs"]["worker"]["this_process"]["last_processed"]

    merchant_id = await merchant_with_adjustments(manual, 1)
    for _ in range(2):
        await start_export(manual, {"merchant_id": merchant_id})
    assert await exports.process(manual.platform) == 2
    assert await last_processed() == 2
    assert await exports.process(manual.platform) == 0
    assert await last_processed() == 0


async def test_too_many_rows_fails_the_job_with_a_clear_error(manual: RunningPlatform) -> None:
    merchant_id = await merchant_with_adjustments(manual, MAX_ROWS + 1)
    job = await start_export(manual, {"merchant_id": merchant_id})
    await exports.process(manual.platform)
    failed = await job_of(manual, job["id"])
    assert failed["status"] == "failed" and failed["error_code"] == "export_too_large"
    assert "EXPORT_SETTLEMENT_ADJUSTMENT_MAX_ROWS" in failed["error_message"]
    sync = await manual.http.get(
        "/admin/settlement-adjustments/export.csv", params={"merchant_id": merchant_id}, headers=manual.admin_headers
    )
    assert sync.status_code == 422 and sync.json()["error"]["code"] == "export_too_large"


async def test_stale_running_job_is_taken_back(manual: RunningPlatform) -> None:
    merchant_id = await merchant_with_adjustments(manual, 1)
    job = await start_export(manual, {"merchant_id": merchant_id})
    # A worker claimed it and died: its heartbeat is older than EXPORT_JOB_STALE_RUNNING_MS.
    await manual.platform.db.pool.execute(
        "UPDATE export_jobs SET status = 'running', worker_id = 'dead-worker', attempts = 1, started_at = now(), "
        "heartbeat_at = now() - interval '1 hour' WHERE id = $1",
        job["id"],
    )
    await exports.process(manual.platform)
    done = await job_of(manual, job["id"])
    assert done["status"] == "completed" and done["attempts"] == 2 and done["row_count"] == 1


async def test_concurrent_workers_claim_each_job_once(manual: RunningPlatform) -> None:
    merchant_id = await merchant_with_adjustments(manual, 1)
    jobs = [await start_export(manual, {"merchant_id": merchant_id}) for _ in range(4)]
    await asyncio.gather(*(exports.process(manual.platform) for _ in range(3)))
    for job in jobs:
        done = await job_of(manual, job["id"])
        assert done["status"] == "completed" and done["attempts"] == 1


async def test_export_requests_are_validated_and_audited(manual: RunningPlatform) -> None:
    for body in (
        {"adjustment_type": "gift"},
        {"from": "2026-01-01T00:00:00"},
        {"merchant": "x"},
        {"from": "not a date"},
    ):
        response = await manual.http.post(
            "/admin/exports/settlement-adjustments", json=body, headers=manual.admin_headers
        )
        assert response.status_code == 400, (body, response.text)
    missing = await manual.http.get("/admin/exports/exp_nope", headers=manual.admin_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "export_job_not_found"
    merchant_id = await merchant_with_adjustments(manual, 1)
    job = await start_export(manual, {"merchant_id": merchant_id, "from": "2026-01-01T00:00:00Z"})
    assert job["filters"]["from"].startswith("2026-01-01T00:00:00")
    audited = await manual.platform.db.pool.fetchval(
        "SELECT count(*) FROM audit_logs WHERE action = 'export_job.create' AND entity_id = $1", job["id"]
    )
    assert audited == 1
    await exports.process(manual.platform)
    done = await job_of(manual, job["id"])
    assert done["status"] == "completed" and done["row_count"] == 1, done
