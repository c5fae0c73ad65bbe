"""Liveness and readiness: ``GET /health`` and ``GET /health/deep``."""

from __future__ import annotations

from litestar import Response, get

from qris_soundbox.control_plane.deps import Platform
from qris_soundbox.core import runtime
from qris_soundbox.core.db import RETRY_AFTER_S
from qris_soundbox.core.runtime import DeepHealth, Health


@get("/health", summary="Liveness: the HTTP API answers", tags=["health"], opt={"public": True})
async def health() -> Health:
    # Touches nothing else: it stays 200 while the database is down, so the process is not restarted for that.
    return Health(status="ok")


@get("/health/deep", summary="Readiness: database and MQTT broker reachable", tags=["health"], opt={"public": True})
async def health_deep(platform: Platform) -> Response[DeepHealth]:
    report = await runtime.deep_health(platform)
    if report.status == "ok":
        return Response(report)
    # Each part says its own status: a load balancer or an operator sees which one is down.
    return Response(report, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


routes = [health, health_deep]
