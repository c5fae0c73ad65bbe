"""Merchant onboarding: create, review (approve / reject), edit, outlets and terminals.

Services take the caller's connection (the caller owns the transaction) and
write the audit row on it. States (docs/merchants.md)::

    pending_review ──approve──▶ active
          │
          └──────reject──────▶ rejected   (final)

Outlets and terminals may be added while a merchant is pending review or
active, not once it is rejected or suspended; only an active merchant's
terminals take payments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection, fetch_one
from qris_soundbox.core.errors import NotFound
from qris_soundbox.core.finance.mdr import DEFAULT_MDR_CATEGORY, check_category
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.merchants import identity
from qris_soundbox.core.merchants.errors import (
    FeeAboveSchedule,
    IdentityChangeNeedsApproval,
    MerchantClosedToChildren,
    MerchantNotEditable,
    MerchantNotFound,
    MerchantNotPendingReview,
    NmidTaken,
    OutletNotFound,
    TerminalNotFound,
)
from qris_soundbox.core.merchants.schemas import BoundDevice, Merchant, Outlet, Terminal
from qris_soundbox.core.paging import PageQuery, contains_pattern
from qris_soundbox.core.schemas import Page, from_row

DEFAULT_MCC = "5499"  # misc. food stores: the seed's default, and the schema's
ACCEPTS_CHILDREN = ("pending_review", "active")
EDITABLE = ("pending_review", "active", "suspended")
MERCHANT_STATUSES = ("pending_review", "active", "rejected", "suspended")
TERMINAL_STATUSES = ("active", "inactive")


def merchant_of(row: Any) -> Merchant:
    return from_row(Merchant, row)


def outlet_of(row: Any) -> Outlet:
    return from_row(Outlet, row)


def terminal_of(row: Any) -> Terminal:
    # A freshly inserted terminal has no bound_device column (and no device yet).
    bound = row["bound_device"] if "bound_device" in row.keys() else None
    return from_row(Terminal, row, bound_device=msgspec.convert(bound, BoundDevice) if bound else None)


@asynccontextmanager
async def _fee_within_schedule(category: str) -> AsyncIterator[None]:
    """The database refuses a fee_bps contract above the category's schedule (SQLSTATE QS003, sql/migrations/110)."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        if exc.sqlstate != "QS003":
            raise
        ceiling = int(getattr(exc, "detail", None) or 0)
        raise FeeAboveSchedule(
            f"fee_bps is a contract below the {category} schedule ({ceiling} bps)",
            details={"field": "fee_bps", "mdr_category": category, "schedule_bps": ceiling},
        ) from None


async def nmid_is_free(conn: Connection, nmid: str | None, merchant_id: str | None) -> None:
    if nmid is None:
        return
    holder = await conn.fetchrow(QUERIES["merchant_by_nmid"], nmid)
    if holder is not None and holder["id"] != merchant_id:
        raise NmidTaken()


async def create_merchant(
    conn: Connection,
    actor: AuditActor,
    *,
    name: str,
    city: str,
    mcc: str | None = None,
    nmid: str | None = None,
    email: str | None = None,
    fee_bps: int | None = None,
    mdr_category: str = DEFAULT_MDR_CATEGORY,
    legal_name: str | None = None,
    postal_code: str | None = None,
) -> Merchant:
    values = {
        "name": identity.merchant_name(name),
        "legal_name": identity.plain_text("legal_name", legal_name, 200),
        "city": identity.merchant_city(city),
        "postal_code": identity.postal_code(postal_code),
        "mcc": identity.mcc(mcc if mcc is not None else DEFAULT_MCC),
        "nmid": identity.nmid(nmid),
        "email": identity.email(email),
        "fee_bps": identity.fee_bps(fee_bps),
        "mdr_category": await check_category(conn, mdr_category),
    }
    await nmid_is_free(conn, identity.nmid(nmid), None)
    try:
        async with _fee_within_schedule(mdr_category):
            row = await conn.fetchrow(QUERIES["insert_merchant"], new_id("mer"), *values.values())
    except asyncpg.UniqueViolationError:
        # Two creates with one NMID racing: the loser gets the same answer as above.
        raise NmidTaken() from None
    merchant = merchant_of(row)
    await audit.record(
        conn,
        actor,
        "merchant.create",
        entity_type="merchant",
        entity_id=merchant.id,
        merchant_id=merchant.id,
        payload={"code": merchant.code, **values},
    )
    return merchant


async def _one(
    conn: Connection, query: str, object_id: str, scope: str | None, missing: type[NotFound]
) -> asyncpg.Record:
    """One row by id within the caller's merchant scope; out of scope is the same 404 as absent."""
    row = await conn.fetchrow(QUERIES[query], object_id, scope)
    if row is None:
        kind = query.removesuffix("_by_id")
        raise missing(f"no such {kind}", details={f"{kind}_id": object_id})
    return row


async def get_merchant(conn: Connection, merchant_id: str, scope: str | None = None) -> Merchant:
    return merchant_of(await _one(conn, "merchant_by_id", merchant_id, scope, MerchantNotFound))


async def find_merchant(conn: Connection, id_or_code: str) -> Merchant:
    """A merchant by id or by code (``M000001``), as operators type it in the CLI."""
    row = await conn.fetchrow(QUERIES["merchant_by_id_or_code"], id_or_code.strip())
    if row is None:
        raise MerchantNotFound(f"no merchant with id or code {id_or_code!r}")
    return merchant_of(row)


async def list_merchants(
    conn: Connection,
    page: PageQuery,
    *,
    status: str | None = None,
    scope: str | None = None,
    search: str | None = None,
) -> Page[Merchant]:
    """``search``: the merchant's code or NMID, or any part of its name."""
    if status is not None and status not in MERCHANT_STATUSES:
        raise identity.invalid("status", f"one of {', '.join(MERCHANT_STATUSES)}")
    rows = await conn.fetch(
        QUERIES["list_merchants"], page.cursor, page.fetch_limit, status, scope, search, contains_pattern(search)
    )
    return page.page(rows, merchant_of)


async def locked(conn: Connection, merchant_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(QUERIES["merchant_by_id_for_update"], merchant_id)
    if row is None:
        raise MerchantNotFound("no such merchant", details={"merchant_id": merchant_id})
    return row


# What identifies a merchant: the name on its QR, its legal name, its QRIS NMID and the email of the bank
# file's notices. Once approved, these change only through an identity change a second person applies
# (core/merchants/identity_changes.py).
IDENTITY_FIELDS = frozenset({"name", "legal_name", "nmid", "email"})
APPROVED = ("active", "suspended")
# Each field a change may carry, in the order of the update_merchant query's parameters.
_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "name": identity.merchant_name,
    "legal_name": lambda v: identity.plain_text("legal_name", v, 200),
    "city": identity.merchant_city,
    "postal_code": identity.postal_code,
    "mcc": identity.mcc,
    "nmid": identity.nmid,
    "email": identity.email,
    "fee_bps": identity.fee_bps,
    "mdr_category": lambda v: v,  # checked against mdr_categories by the caller
}


def planned(row: asyncpg.Record, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every field's value once ``changes`` apply to ``row`` (validated), and ``{field: {from, to}}``
    for those that differ."""
    new = {field: row[field] for field in _VALIDATORS}
    for field, value in changes.items():
        if field not in _VALIDATORS:
            raise identity.invalid(field, "cannot be changed")
        if value is None and field in ("name", "city", "mcc", "mdr_category"):
            raise identity.invalid(field, "is required")
        new[field] = _VALIDATORS[field](value)
    changed = {field: {"from": row[field], "to": new[field]} for field in _VALIDATORS if new[field] != row[field]}
    return new, changed


async def write_merchant(conn: Connection, merchant_id: str, new: dict[str, Any]) -> asyncpg.Record:
    """Store ``new`` (every field, as ``planned`` gives it) on the locked merchant row."""
    await nmid_is_free(conn, new["nmid"], merchant_id)
    try:
        async with _fee_within_schedule(new["mdr_category"]):
            return await fetch_one(conn, "update_merchant", merchant_id, *new.values())
    except asyncpg.UniqueViolationError:
        raise NmidTaken() from None


def editable(row: asyncpg.Record) -> None:
    if row["status"] not in EDITABLE:
        raise MerchantNotEditable(f"a {row['status']} merchant cannot be changed", details={"status": row["status"]})


async def update_merchant(conn: Connection, actor: AuditActor, merchant_id: str, changes: dict[str, Any]) -> Merchant:
    """Apply the fields present in ``changes``; ``None`` clears an optional field
    (``fee_bps: null`` goes back to the schedule's rate). An approved merchant's identity is refused
    here: it changes through ``identity_changes.propose`` and a second person."""
    row = await locked(conn, merchant_id)
    editable(row)
    new, changed = planned(row, changes)
    await check_category(conn, new["mdr_category"])
    if not changed:
        return merchant_of(row)
    identity_fields = sorted(changed.keys() & IDENTITY_FIELDS)
    if row["status"] in APPROVED and identity_fields:
        raise IdentityChangeNeedsApproval(
            f"{', '.join(identity_fields)} of an approved merchant change only when a second person approves: "
            f"propose it with POST /admin/merchants/{merchant_id}/identity-changes",
            details={"fields": identity_fields},
        )
    updated = await write_merchant(conn, merchant_id, new)
    await audit.record(
        conn,
        actor,
        "merchant.update",
        entity_type="merchant",
        entity_id=merchant_id,
        merchant_id=merchant_id,
        payload={"changes": changed},
    )
    return merchant_of(updated)


async def _review(
    conn: Connection,
    actor: AuditActor,
    merchant_id: str,
    decision: str,
    reason: str | None = None,
) -> Merchant:
    """approve (→ active) or reject (→ rejected): both only from pending_review."""
    row = await locked(conn, merchant_id)
    if row["status"] != "pending_review":
        raise MerchantNotPendingReview(
            f"only a merchant pending review can be {decision}d; this one is {row['status']}",
            details={"status": row["status"]},
        )
    if decision == "approve":
        updated = await fetch_one(conn, "approve_merchant", merchant_id, actor.actor_id)
    else:
        updated = await fetch_one(conn, "reject_merchant", merchant_id, reason, actor.actor_id)
    payload = {"from": row["status"], "to": updated["status"]} | ({"reason": reason} if reason else {})
    await audit.record(
        conn,
        actor,
        f"merchant.{decision}",
        entity_type="merchant",
        entity_id=merchant_id,
        merchant_id=merchant_id,
        payload=payload,
    )
    return merchant_of(updated)


async def approve_merchant(conn: Connection, actor: AuditActor, merchant_id: str) -> Merchant:
    return await _review(conn, actor, merchant_id, "approve")


async def reject_merchant(conn: Connection, actor: AuditActor, merchant_id: str, reason: str) -> Merchant:
    cleaned = identity.plain_text("reason", reason, 500, required=True)
    return await _review(conn, actor, merchant_id, "reject", cleaned)


async def _accepting_children(conn: Connection, merchant_id: str, what: str) -> asyncpg.Record:
    # FOR UPDATE: a concurrent reject waits for this insert, or this insert sees the rejection.
    row = await locked(conn, merchant_id)
    if row["status"] not in ACCEPTS_CHILDREN:
        raise MerchantClosedToChildren(
            f"cannot add {what} to a {row['status']} merchant", details={"status": row["status"]}
        )
    return row


async def create_outlet(
    conn: Connection,
    actor: AuditActor,
    merchant_id: str,
    *,
    name: str,
    address: str | None = None,
    city: str | None = None,
) -> Outlet:
    values = {
        "name": identity.plain_text("name", name, 100, required=True),
        "address": identity.plain_text("address", address, 300),
        "city": identity.merchant_city(city) if city is not None else None,
    }
    await _accepting_children(conn, merchant_id, "an outlet")
    outlet = outlet_of(await conn.fetchrow(QUERIES["insert_outlet"], new_id("out"), merchant_id, *values.values()))
    await audit.record(
        conn,
        actor,
        "outlet.create",
        entity_type="outlet",
        entity_id=outlet.id,
        merchant_id=merchant_id,
        payload=values,
    )
    return outlet


async def get_outlet(conn: Connection, outlet_id: str, scope: str | None = None) -> Outlet:
    return outlet_of(await _one(conn, "outlet_by_id", outlet_id, scope, OutletNotFound))


async def list_outlets(
    conn: Connection,
    page: PageQuery,
    *,
    merchant_id: str | None = None,
    scope: str | None = None,
) -> Page[Outlet]:
    rows = await conn.fetch(QUERIES["list_outlets"], page.cursor, page.fetch_limit, merchant_id, scope)
    return page.page(rows, outlet_of)


async def create_terminal(
    conn: Connection,
    actor: AuditActor,
    outlet_id: str,
    *,
    name: str,
    static_qris: str | None = None,
) -> Terminal:
    values = {
        "name": identity.plain_text("name", name, 100, required=True),
        "static_qris": identity.static_qris(static_qris),
    }
    outlet = await get_outlet(conn, outlet_id)
    await _accepting_children(conn, outlet.merchant_id, "a terminal")
    row = await conn.fetchrow(
        QUERIES["insert_terminal"], new_id("ter"), outlet_id, outlet.merchant_id, *values.values()
    )
    terminal = terminal_of(row)
    await audit.record(
        conn,
        actor,
        "terminal.create",
        entity_type="terminal",
        entity_id=terminal.id,
        merchant_id=outlet.merchant_id,
        payload={
            "outlet_id": outlet_id,
            "terminal_code": terminal.terminal_code,
            "name": values["name"],
            "has_static_qris": values["static_qris"] is not None,
        },
    )
    return terminal


async def get_terminal(conn: Connection, terminal_id: str, scope: str | None = None) -> Terminal:
    return terminal_of(await _one(conn, "terminal_by_id", terminal_id, scope, TerminalNotFound))


async def list_terminals(
    conn: Connection,
    page: PageQuery,
    *,
    merchant_id: str | None = None,
    outlet_id: str | None = None,
    status: str | None = None,
    scope: str | None = None,
    code: str | None = None,
) -> Page[Terminal]:
    if status is not None and status not in TERMINAL_STATUSES:
        raise identity.invalid("status", f"one of {', '.join(TERMINAL_STATUSES)}")
    rows = await conn.fetch(
        QUERIES["list_terminals"], page.cursor, page.fetch_limit, merchant_id, outlet_id, status, scope, code
    )
    return page.page(rows, terminal_of)
