"""Liveness and readiness: ``GET /health``, ``GET /health/deep`` and the seed's admin variants
(``GET /admin/health``, ``GET /admin/health/deep``, ``POST /admin/sample-idempotent``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from litestar import Request, Response, get, post

from qris_soundbox.control_plane.auth import principal_of
from qris_soundbox.control_plane.deps import JSONBody, Platform
from qris_soundbox.core import runtime
from qris_soundbox.core.db import RETRY_AFTER_S
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.runtime import AdminDeepHealth, DeepHealth, Health
from qris_soundbox.core.schemas import Struct

Report = TypeVar("Report", bound=DeepHealth)


class AdminHealth(Struct, kw_only=True):
    status: str
    principal: str  # "<kind>:<role>": whom the token stands for


class SampleIdempotent(Struct, kw_only=True):
    id: str  # new on every first request; the same on a replay of its Idempotency-Key
    received: dict[str, Any]
    created_at: datetime


@get("/health", summary="Liveness: the HTTP API answers", tags=["health"], opt={"public": True})
async def health() -> Health:
    # Touches nothing else: it stays 200 while the database is down, so the process is not restarted for that.
    return Health(status="ok")


def _readiness(report: Report) -> Response[Report]:
    if report.status == "ok":
        return Response(report)
    # Each part says its own status: a load balancer or an operator sees which one is down.
    return Response(report, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)})


@get("/health/deep", summary="Readiness: database and MQTT broker reachable", tags=["health"], opt={"public": True})
async def health_deep(platform: Platform) -> Response[DeepHealth]:
    return _readiness(await runtime.deep_health(platform))


@get(
    "/admin/health",
    summary="Liveness, for a valid admin token (the seed's token check)",
    tags=["health"],
    opt={"permission": "observability:read"},
)
async def admin_health(request: Request) -> AdminHealth:
    principal = principal_of(request)
    return AdminHealth(status="ok", principal=f"{principal.kind}:{principal.role}")


@get(
    "/admin/health/deep",
    summary="Readiness with this process's roles and versions and every registered process",
    tags=["health"],
    opt={"permission": "observability:read"},
)
async def admin_health_deep(platform: Platform) -> Response[AdminDeepHealth]:
    return _readiness(await runtime.admin_deep_health(platform))


@post(
    "/admin/sample-idempotent",
    summary="Idempotency probe: echoes the body under a new id, replayed for a repeated Idempotency-Key",
    tags=["health"],
    status_code=201,
    opt={"permission": "observability:read", "idempotent": True, "rate_limit": "admin_write"},
)
async def sample_idempotent(data: JSONBody[dict[str, Any]]) -> SampleIdempotent:
    # Changes nothing: what it shows is the idempotency layer (control_plane/policies.py) around a write.
    return SampleIdempotent(id=new_id("smp"), received=data, created_at=datetime.now(UTC))


routes = [health, health_deep, admin_health, admin_health_deep, sample_idempotent]
