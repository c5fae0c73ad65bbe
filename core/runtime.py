"""Process bookkeeping shared by every role: instance heartbeat and deep health.

Every process has a row in ``runtime_instances`` and touches it every
``INSTANCE_HEARTBEAT_INTERVAL_MS``; each touch keeps it alive for three of
its own intervals (``alive_until``). A process whose time has run out is
dead (SIGKILL, a lost machine): broker nodes, on each of their own
heartbeats, mark the devices of dead brokers offline, so that their pending
downlinks are delivered wherever the devices reconnect (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform as python_platform
import socket
from importlib.metadata import PackageNotFoundError, version

import asyncpg

from qris_soundbox.core.config import Settings
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.db import QUERIES, postgresql_version
from qris_soundbox.core.devices import presence
from qris_soundbox.core.finance.schemas import RuntimeInstance
from qris_soundbox.core.schemas import Struct

log = logging.getLogger(__name__)
FORGET_AFTER_S = 24 * 3600


def heartbeat_interval_s(settings: Settings) -> float:
    return settings.instance_heartbeat_interval_ms / 1000


def fresh_for_s(settings: Settings) -> float:
    """How long a process's last heartbeat keeps it alive: three missed heartbeats and it is dead."""
    return 3 * heartbeat_interval_s(settings)


class Health(Struct, kw_only=True):
    status: str


class ComponentHealth(Struct, kw_only=True):
    status: str
    detail: str | None = None


class DeepHealth(Struct, kw_only=True):
    status: str
    database: ComponentHealth
    broker: ComponentHealth


class Versions(Struct, kw_only=True):
    platform: str | None
    python: str
    postgresql: str | None  # None while the database is unreachable
    libraries: dict[str, str | None]


class AdminDeepHealth(DeepHealth, kw_only=True):
    """``GET /admin/health/deep``: readiness, plus what an operator needs to tell processes apart."""

    instance_id: str
    roles: list[str]
    versions: Versions
    instances: list[RuntimeInstance]  # every process that registered in the shared database


# The libraries whose versions an operator is asked for first when something misbehaves.
_LIBRARIES = ("litestar", "amqtt", "asyncpg", "msgspec", "uvicorn", "prometheus-client")


async def register_instance(platform: PlatformContext) -> None:
    await platform.db.execute(
        "register_instance",
        platform.instance_id,
        socket.gethostname(),
        os.getpid(),
        sorted(platform.roles),
        fresh_for_s(platform.settings),
    )


async def heartbeat_forever(platform: PlatformContext) -> None:
    settings = platform.settings
    while True:
        await asyncio.sleep(heartbeat_interval_s(settings))
        try:
            await platform.db.execute("touch_instance", platform.instance_id, fresh_for_s(settings))
            if platform.broker is not None:
                released = await presence.release_stale(platform.db)
                if released:
                    log.warning("devices of a silent broker node marked offline", extra={"devices": released})
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("instance heartbeat failed", extra={"error": str(exc)})


async def unregister_instance(platform: PlatformContext) -> None:
    await platform.db.execute("remove_instance", platform.instance_id)


async def prune_instances(platform: PlatformContext) -> None:
    """Job ``runtime.prune_instances``: forget processes silent for a day."""
    await platform.db.execute("prune_instances", FORGET_AFTER_S)


async def deep_health(platform: PlatformContext) -> DeepHealth:
    try:
        await asyncio.wait_for(platform.db.pool.fetchval("SELECT 1"), timeout=2)
        database = ComponentHealth(status="ok")
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        database = ComponentHealth(status="error", detail=type(exc).__name__)

    if platform.broker is not None:
        running = platform.broker.is_running
        broker = ComponentHealth(status="ok" if running else "error", detail="in this process")
    elif database.status == "ok":
        # --only api: a broker in another process sharing this database is enough.
        live = await platform.db.fetch("live_broker_instances")
        broker = (
            ComponentHealth(status="ok", detail=f"instance {live[0]['id']} on {live[0]['hostname']}")
            if live
            else ComponentHealth(status="error", detail="no broker process has reported in")
        )
    else:
        broker = ComponentHealth(status="unknown", detail="database unavailable")
    status = "ok" if database.status == broker.status == "ok" else "degraded"
    return DeepHealth(status=status, database=database, broker=broker)


def runtime_instances(rows: list[asyncpg.Record]) -> list[RuntimeInstance]:
    """``runtime_instances_overview`` rows."""
    return [RuntimeInstance(**dict(row)) for row in rows]


def _version_of(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


async def admin_deep_health(platform: PlatformContext) -> AdminDeepHealth:
    """``deep_health`` with this process's roles and versions and the list of registered processes."""
    report = await deep_health(platform)
    postgresql, instances = None, []
    if report.database.status == "ok":
        try:
            async with platform.db.pool.acquire() as conn:
                postgresql = postgresql_version(await conn.fetchval(QUERIES["server_version_num"]))
                rows = await conn.fetch(QUERIES["runtime_instances_overview"])
            instances = runtime_instances(rows)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("admin deep health: database read failed", extra={"error": type(exc).__name__})
    return AdminDeepHealth(
        status=report.status,
        database=report.database,
        broker=report.broker,
        instance_id=platform.instance_id,
        roles=sorted(platform.roles),
        versions=Versions(
            platform=_version_of("qris-soundbox"),
            python=python_platform.python_version(),
            postgresql=postgresql,
            libraries={name: _version_of(name) for name in _LIBRARIES},
        ),
        instances=instances,
    )
