"""The worker's scheduled jobs, named ``<domain>.<verb>``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qris_soundbox.core import idempotency, ratelimit, runtime
from qris_soundbox.core.acquirers import polling as acquirer_polling
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.devices import trace as device_trace
from qris_soundbox.core.finance import exports as finance_exports
from qris_soundbox.core.payments import transactions as payments_transactions
from qris_soundbox.core.snap import external_ids as snap_external_ids
from qris_soundbox.core.snap import tokens as snap_tokens
from qris_soundbox.core.users import service as users

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]


def _guarded(name: str, func: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
    # A failing run is logged and retried at the next tick; it never stops the scheduler.
    async def run() -> None:
        try:
            await func()
        except Exception:
            log.exception("job failed", extra={"job": name})

    return run


def scheduled_jobs(platform: PlatformContext) -> list[Job]:
    settings = platform.settings
    specs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("runtime.prune_instances", 3600, lambda: runtime.prune_instances(platform)),
        (
            "devices.prune_trace",
            3600,
            lambda: device_trace.prune(platform.db, platform.settings.device_trace_retention_days),
        ),
        ("idempotency.purge", 300, lambda: idempotency.purge(platform.db)),
        ("auth.purge_tokens", 3600, lambda: users.purge_tokens(platform.db)),
        ("snap.purge", settings.snap_purge_interval_seconds, lambda: purge_snap(platform)),
        # Cheap when there is nothing due: one indexed UPDATE that claims no row.
        ("acquirers.poll", settings.acquirer_query_interval_ms / 1000, lambda: acquirer_polling.poll_due(platform)),
    ]
    if settings.rate_limit_store == "postgres":
        specs.append(("ratelimit.purge", 60, lambda: ratelimit.purge_shared_counts(platform.db)))
    if settings.dynamic_qr_expiry_scheduler_enabled:
        specs.append(
            (
                "payments.expire_due",
                settings.dynamic_qr_expiry_sweep_interval_ms / 1000,
                lambda: payments_transactions.expire_due(platform.db, settings),
            )
        )
    if settings.export_worker_enabled:
        specs.append(
            (
                "exports.process",
                settings.export_worker_interval_ms / 1000,
                lambda: finance_exports.process(platform),
            )
        )
    return [Job(name, interval, _guarded(name, func)) for name, interval, func in specs]


async def purge_snap(platform: PlatformContext) -> tuple[int, int]:
    """Job ``snap.purge``: expired B2B tokens and yesterday's X-EXTERNAL-ID claims, at most
    ``SNAP_PURGE_BATCH`` of each a round (a backlog is worked off over the next rounds, never one
    long DELETE holding locks); how many of each went."""
    limit = platform.settings.snap_purge_batch
    async with platform.db.pool.acquire() as conn:
        return await snap_tokens.purge(conn, limit), await snap_external_ids.purge(conn, limit)
