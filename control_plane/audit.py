"""``GET /admin/audit-logs``: who did what, when, from where."""

from __future__ import annotations

from litestar import get

from qris_soundbox.control_plane.deps import FromQuery, Paging, Platform, Window
from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditLog
from qris_soundbox.core.schemas import Page


@get(
    "/admin/audit-logs",
    summary="Audit log, newest first; from inclusive, to exclusive",
    tags=["audit"],
    opt={"permission": "audit:read"},
)
async def list_audit_logs(
    platform: Platform,
    page: Paging,
    window: Window,
    action: FromQuery[str | None] = None,
    entity_type: FromQuery[str | None] = None,
    entity_id: FromQuery[str | None] = None,
    actor_id: FromQuery[str | None] = None,
    merchant_id: FromQuery[str | None] = None,
) -> Page[AuditLog]:
    async with platform.db.transaction() as conn:
        return await audit.list_logs(
            conn,
            page,
            window,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            actor_id=actor_id,
            merchant_id=merchant_id,
        )


routes = [list_audit_logs]
