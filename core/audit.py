"""The audit log: every admin or merchant write, every login, every rejected callback.

Written on the caller's connection, inside the transaction of the change it
records, so an audited change and its audit row commit or fail together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery, TimeWindow
from qris_soundbox.core.schemas import Page, Struct, Value


class AuditActor(Value, kw_only=True, frozen=True):
    """Who did it and from where; built by the control plane per request."""

    actor_type: str  # admin | merchant | device | system | acquirer | anonymous
    actor_id: str | None = None
    actor_role: str | None = None
    request_id: str | None = None
    ip: str | None = None


SYSTEM = AuditActor(actor_type="system")


class AuditEntry(Struct, kw_only=True):
    """One audit row about to be written (``apply_callback`` in sql/migrations/080 takes it as jsonb)."""

    id: str
    actor_type: str
    actor_id: str | None
    actor_role: str | None
    action: str
    entity_type: str | None
    entity_id: str | None
    merchant_id: str | None
    request_id: str | None
    ip: str | None
    payload: dict[str, Any]


def entry(
    actor: AuditActor,
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    merchant_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEntry:
    """An audit row by ``actor``. ``payload`` must never hold a secret."""
    return AuditEntry(
        id=new_id("aud"),
        actor_type=actor.actor_type,
        actor_id=actor.actor_id,
        actor_role=actor.actor_role,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        merchant_id=merchant_id,
        request_id=actor.request_id,
        ip=actor.ip,
        payload=payload or {},
    )


async def record(
    conn: Connection,
    actor: AuditActor,
    action: str,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    merchant_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Append one audit row. ``payload`` must never hold a secret."""
    row = entry(actor, action, entity_type=entity_type, entity_id=entity_id, merchant_id=merchant_id, payload=payload)
    await conn.execute(QUERIES["insert_audit_log"], *(getattr(row, name) for name in AuditEntry.__struct_fields__))


class AuditLog(AuditEntry, kw_only=True):
    """An audit row as written."""

    occurred_at: datetime
    actor_email: str | None = None  # in lists: who acted, for people


async def list_logs(
    conn: Connection,
    page: PageQuery,
    window: TimeWindow,
    *,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor_id: str | None = None,
    merchant_id: str | None = None,
) -> Page[AuditLog]:
    """Newest first; ``from`` inclusive, ``to`` exclusive."""
    rows = await conn.fetch(
        QUERIES["list_audit_logs"],
        page.cursor,
        page.fetch_limit,
        action,
        entity_type,
        entity_id,
        actor_id,
        window.from_,
        window.to,
        merchant_id,
    )
    return page.page(rows, lambda row: AuditLog(**dict(row)))
