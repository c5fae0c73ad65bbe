"""``GET /admin/audit-logs``: who did what, when, from where."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from litestar import get

from qris_soundbox.control_plane.deps import FromQuery, Platform, QueryParameter
from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditLog
from qris_soundbox.core.paging import page_limit
from qris_soundbox.core.schemas import Page


@get("/admin/audit-logs", summary="Audit log, newest first; from inclusive, to exclusive", tags=["audit"],
     opt={"permission": "audit:read"})
async def list_audit_logs(
    platform: Platform,
    action: FromQuery[str | None] = None,
    entity_type: FromQuery[str | None] = None,
    entity_id: FromQuery[str | None] = None,
    actor_id: FromQuery[str | None] = None,
    merchant_id: FromQuery[str | None] = None,
    since: Annotated[datetime | None, QueryParameter(name="from")] = None,
    until: Annotated[datetime | None, QueryParameter(name="to")] = None,
    cursor: FromQuery[str | None] = None,
    limit: FromQuery[int | None] = None,
) -> Page[AuditLog]:
    async with platform.db.transaction() as conn:
        items, next_cursor = await audit.list_logs(
            platform.db, conn, cursor=cursor, limit=page_limit(limit), action=action, entity_type=entity_type,
            entity_id=entity_id, actor_id=actor_id, since=since, until=until, merchant_id=merchant_id,
        )
    return Page(items=items, next_cursor=next_cursor)


routes = [list_audit_logs]
