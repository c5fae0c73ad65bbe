"""The worker's scheduled jobs, named ``<domain>.<verb>``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qris_soundbox.core import idempotency, runtime
from qris_soundbox.core.context import PlatformContext
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
    specs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = [
        ("runtime.prune_instances", 3600, lambda: runtime.prune_instances(platform)),
        ("idempotency.purge", 300, lambda: idempotency.purge(platform.db)),
        ("auth.purge_tokens", 3600, lambda: users.purge_tokens(platform.db)),
    ]
    return [Job(name, interval, _guarded(name, func)) for name, interval, func in specs]
