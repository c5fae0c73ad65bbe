"""Liveness and readiness: ``GET /health`` and ``GET /health/deep``."""

from __future__ import annotations

from litestar import Response, get

from qris_soundbox.control_plane.deps import Platform
from qris_soundbox.control_plane.schemas import Health
from qris_soundbox.core import runtime
from qris_soundbox.core.runtime import DeepHealth


@get("/health", summary="Liveness: the HTTP API answers", tags=["health"], opt={"public": True})
async def health() -> Health:
    return Health(status="ok")


@get("/health/deep", summary="Readiness: database and MQTT broker reachable", tags=["health"], opt={"public": True})
async def health_deep(platform: Platform) -> Response[DeepHealth]:
    report = await runtime.deep_health(platform)
    return Response(report, status_code=200 if report.status == "ok" else 503)


routes = [health, health_deep]
