"""The partner registry: who may call the SNAP services, with which keys, for which merchants.

The ``client_secret`` is the HMAC key of the partner's symmetric signatures, so the
platform needs it back: it is encrypted at rest (``SECRETS_ENCRYPTION_KEY``,
``core.secrets.SecretBox``), shown once at creation and at each rotation, never
logged. A rotation keeps the previous secret valid for an overlap window, so a
partner can roll its fleet of POS terminals over to the new one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.partners import schemas as s
from qris_soundbox.core.partners.errors import ClientKeyTaken, PartnerInputInvalid, PartnerNotFound
from qris_soundbox.core.schemas import Page, from_row
from qris_soundbox.core.secrets import SecretBox
from qris_soundbox.core.snap import wire

_SECRET = "client_secret"


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def _check_public_key(pem: str) -> None:
    try:
        wire.load_public_key(pem)
    except ValueError as exc:
        raise PartnerInputInvalid(str(exc), details={"field": "public_key_pem"}) from None


async def _check_merchants(conn: Connection, merchant_ids: list[str]) -> None:
    unknown = [row["id"] for row in await conn.fetch(QUERIES["unknown_merchant_ids"], merchant_ids)]
    if unknown:
        raise PartnerInputInvalid(
            f"unknown merchants: {', '.join(unknown)}", details={"field": "merchant_ids", "unknown": unknown}
        )


def _seal(settings: Settings, secret: str) -> bytes:
    sealed = SecretBox.of(settings).seal({_SECRET: secret})
    assert sealed is not None  # a non-empty mapping always seals
    return sealed


def secrets_of(settings: Settings, partner: asyncpg.Record, now: datetime | None = None) -> list[str]:
    """The secrets a request of ``partner`` may be signed with: the current one, and the previous
    one while its overlap lasts."""
    box = SecretBox.of(settings)
    valid = [box.open(partner["client_secret_enc"])[_SECRET]]
    until = partner["previous_secret_until"]
    if until is not None and until > (now or datetime.now(UTC)):
        valid.append(box.open(partner["previous_secret_enc"])[_SECRET])
    return valid


async def rotate_secrets(conn: Connection, box: SecretBox) -> int:
    """Re-encrypt every partner's secrets (the previous one too) under the newest key; how many partners."""
    rows = await conn.fetch(QUERIES["sealed_partner_secrets"])
    for row in rows:
        previous = row["previous_secret_enc"]
        await conn.execute(
            QUERIES["reseal_partner_secrets"],
            row["id"],
            box.rotate(row["client_secret_enc"]),
            box.rotate(previous) if previous is not None else None,
        )
    return len(rows)


async def get_partner(conn: Connection, partner_id: str) -> s.Partner:
    row = await conn.fetchrow(QUERIES["partner_by_id"], partner_id)
    if row is None:
        raise PartnerNotFound(f"partner {partner_id} does not exist", details={"partner_id": partner_id})
    return from_row(s.Partner, row)


async def create_partner(
    conn: Connection, settings: Settings, actor: AuditActor, data: s.PartnerCreate
) -> s.PartnerWithSecret:
    _check_public_key(data.public_key_pem)
    merchant_ids = sorted(set(data.merchant_ids))
    await _check_merchants(conn, merchant_ids)
    if await conn.fetchrow(QUERIES["acquirer_by_client_key"], data.client_key) is not None:
        # X-CLIENT-KEY is how the token endpoint tells a partner from an acquirer: it must name one of them.
        raise ClientKeyTaken(f"client key {data.client_key} is taken", details={"field": "client_key"})
    secret = new_client_secret()
    partner_id = new_id("ptn")
    try:
        async with conn.transaction():
            await conn.execute(
                QUERIES["create_partner"],
                partner_id,
                data.name,
                data.client_key,
                data.public_key_pem,
                _seal(settings, secret),
                data.notify_url,
            )
    except asyncpg.UniqueViolationError:
        raise ClientKeyTaken(f"client key {data.client_key} is taken", details={"field": "client_key"}) from None
    await conn.execute(QUERIES["add_partner_merchants"], partner_id, merchant_ids)
    await audit.record(
        conn,
        actor,
        "partner.create",
        entity_type="partner",
        entity_id=partner_id,
        payload={"client_key": data.client_key, "merchant_ids": merchant_ids, "notify_url": data.notify_url},
    )
    partner = await get_partner(conn, partner_id)
    return s.PartnerWithSecret(**msgspec.structs.asdict(partner), client_secret=secret)


async def list_partners(conn: Connection, page: PageQuery) -> Page[s.Partner]:
    rows = await conn.fetch(QUERIES["list_partners"], page.cursor, page.fetch_limit)
    return page.page(rows, lambda row: from_row(s.Partner, row))


async def update_partner(conn: Connection, actor: AuditActor, partner_id: str, data: s.PartnerUpdate) -> s.Partner:
    changes = {name: value for name, value in msgspec.structs.asdict(data).items() if value is not msgspec.UNSET}
    if isinstance(data.public_key_pem, str):
        _check_public_key(data.public_key_pem)
    found = await conn.fetchval(
        QUERIES["update_partner"],
        partner_id,
        changes.get("name"),
        changes.get("public_key_pem"),
        changes.get("notify_url"),
        changes.get("status"),
    )
    if found is None:
        raise PartnerNotFound(f"partner {partner_id} does not exist", details={"partner_id": partner_id})
    if isinstance(data.merchant_ids, list):
        merchant_ids = sorted(set(data.merchant_ids))
        await _check_merchants(conn, merchant_ids)
        await conn.execute(QUERIES["set_partner_merchants"], partner_id, merchant_ids)
        await conn.execute(QUERIES["add_partner_merchants"], partner_id, merchant_ids)
    await audit.record(
        conn,
        actor,
        "partner.update",
        entity_type="partner",
        entity_id=partner_id,
        payload={name: ("(changed)" if name == "public_key_pem" else value) for name, value in changes.items()},
    )
    return await get_partner(conn, partner_id)


async def rotate_secret(
    conn: Connection, settings: Settings, actor: AuditActor, partner_id: str, overlap_seconds: int
) -> s.PartnerWithSecret:
    secret = new_client_secret()
    row = await conn.fetchrow(QUERIES["rotate_partner_secret"], partner_id, _seal(settings, secret), overlap_seconds)
    if row is None:
        raise PartnerNotFound(f"partner {partner_id} does not exist", details={"partner_id": partner_id})
    await audit.record(
        conn,
        actor,
        "partner.rotate_secret",
        entity_type="partner",
        entity_id=partner_id,
        payload={"previous_secret_until": row["previous_secret_until"].isoformat()},
    )
    partner = await get_partner(conn, partner_id)
    return s.PartnerWithSecret(**msgspec.structs.asdict(partner), client_secret=secret)
