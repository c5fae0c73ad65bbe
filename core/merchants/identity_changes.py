"""Identity changes of a merchant: proposed by one person, applied by another (four eyes).

An approved merchant's name, legal name, NMID and email (``service.IDENTITY_FIELDS``) say who is paid:
the name on the QR the customer sees, the national merchant id the acquirer settles against, the address
of the bank file's notices. Changing them alone was how one ops user could quietly re-badge a merchant.
So a change is stored as a proposal (``merchant_identity_changes``, one open per merchant) and the
merchant keeps its approved identity, and keeps taking payments, until a different user holding
``merchant:approve`` applies it; anyone holding it may reject it, the proposer included (a withdrawal).
The database holds the four eyes too (sql/migrations/167). Every step is audited in its transaction.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, fetch_one
from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.merchants import identity, service
from qris_soundbox.core.merchants.errors import (
    IdentityChangeDecided,
    IdentityChangeNotFound,
    IdentityChangePending,
    IdentityChangeStale,
    SecondApproverRequired,
)
from qris_soundbox.core.merchants.schemas import IdentityChange
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.schemas import Page, from_row


def change_of(row: Any) -> IdentityChange:
    return from_row(IdentityChange, row)


async def _audit(conn: Connection, actor: AuditActor, action: str, change: asyncpg.Record) -> None:
    await audit.record(
        conn,
        actor,
        f"merchant.identity_change.{action}",
        entity_type="merchant",
        entity_id=change["merchant_id"],
        merchant_id=change["merchant_id"],
        payload={
            "change_id": change["id"],
            "changes": change["changes"],
            "proposed_by": {"type": change["proposed_by_type"], "id": change["proposed_by_id"]},
            **({"reason": change["decision_reason"]} if change["decision_reason"] else {}),
        },
    )


async def propose(conn: Connection, actor: AuditActor, merchant_id: str, changes: dict[str, Any]) -> IdentityChange:
    """Store the proposal; nothing about the merchant changes yet."""
    outside = sorted(changes.keys() - service.IDENTITY_FIELDS)
    if outside:
        raise identity.invalid(outside[0], "is not part of a merchant's identity: PATCH the merchant")
    row = await service.locked(conn, merchant_id)
    service.editable(row)
    new, changed = service.planned(row, changes)
    if not changed:
        raise ValidationFailed("the proposal changes nothing: every value is the merchant's already")
    await service.nmid_is_free(conn, new["nmid"], merchant_id)
    try:
        async with conn.transaction():
            created = await fetch_one(
                conn, "insert_identity_change", new_id("mic"), merchant_id, changed, actor.actor_type, actor.actor_id
            )
    except asyncpg.UniqueViolationError:
        raise IdentityChangePending(
            "this merchant already has an identity change waiting: approve or reject it first",
            details={"merchant_id": merchant_id},
        ) from None
    await _audit(conn, actor, "propose", created)
    return change_of(created)


async def _pending(conn: Connection, merchant_id: str, change_id: str) -> asyncpg.Record:
    change = await conn.fetchrow(QUERIES["identity_change_for_update"], change_id, merchant_id)
    if change is None:
        raise IdentityChangeNotFound("no such identity change", details={"change_id": change_id})
    if change["status"] != "pending":
        raise IdentityChangeDecided(
            f"this identity change was already {change['status']}", details={"status": change["status"]}
        )
    return change


async def approve(conn: Connection, actor: AuditActor, merchant_id: str, change_id: str) -> IdentityChange:
    """Apply the proposal: only someone other than its proposer, on the identity it was proposed against."""
    row = await service.locked(conn, merchant_id)
    change = await _pending(conn, merchant_id, change_id)
    if actor.actor_id is None or (actor.actor_type, actor.actor_id) == (
        change["proposed_by_type"],
        change["proposed_by_id"],
    ):
        raise SecondApproverRequired(
            "an identity change is applied by someone other than who proposed it",
            details={"proposed_by": {"type": change["proposed_by_type"], "id": change["proposed_by_id"]}},
        )
    service.editable(row)
    moved = sorted(field for field, step in change["changes"].items() if row[field] != step["from"])
    if moved:
        raise IdentityChangeStale(
            f"{', '.join(moved)} changed since this proposal: reject it and propose again", details={"fields": moved}
        )
    new, _ = service.planned(row, {field: step["to"] for field, step in change["changes"].items()})
    await service.write_merchant(conn, merchant_id, new)
    decided = await fetch_one(
        conn, "decide_identity_change", change_id, "applied", actor.actor_type, actor.actor_id, None
    )
    await _audit(conn, actor, "approve", decided)
    return change_of(decided)


async def reject(
    conn: Connection, actor: AuditActor, merchant_id: str, change_id: str, reason: str | None
) -> IdentityChange:
    cleaned = identity.plain_text("reason", reason, 500) if reason is not None else None
    await service.locked(conn, merchant_id)
    await _pending(conn, merchant_id, change_id)
    decided = await fetch_one(
        conn, "decide_identity_change", change_id, "rejected", actor.actor_type, actor.actor_id, cleaned
    )
    await _audit(conn, actor, "reject", decided)
    return change_of(decided)


async def list_changes(conn: Connection, merchant_id: str, page: PageQuery) -> Page[IdentityChange]:
    await service.get_merchant(conn, merchant_id)
    rows = await conn.fetch(QUERIES["list_identity_changes"], merchant_id, page.cursor, page.fetch_limit)
    return page.page(rows, change_of)
