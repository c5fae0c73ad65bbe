"""``POST /admin/seed``: the idempotent demo data of ``serve --demo``, on demand."""

from __future__ import annotations

from typing import Any

from litestar import Request, post

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import Platform
from qris_soundbox.core.demo import DemoData, seed_demo_data


@post(
    "/admin/seed",
    status_code=200,
    summary="Create the demo data if missing (development only)",
    tags=["demo"],
    opt={"permission": "seed:write", "rate_limit": "admin_write"},
)
async def seed(platform: Platform, request: Request[Any, Any, Any]) -> DemoData:
    return await seed_demo_data(platform.db, audit_actor(request))


routes = [seed]
