"""MDR schedules: Bank Indonesia's merchant discount rate by merchant category, as effective-dated data.

The rule itself (which row prices a payment, a contract below it, half-up
rounding) is the database's, in the payment functions of sql/migrations/110;
this module lists the rows and adds a new schedule when Bank Indonesia
changes one (docs/finance.md).
"""

from __future__ import annotations

from datetime import date

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.finance.dashboard import business_day
from qris_soundbox.core.finance.errors import (
    FinanceInputInvalid,
    MdrScheduleInPast,
    MdrScheduleOverlap,
    UnknownMdrCategory,
)
from qris_soundbox.core.finance.schemas import MdrScheduleCreate, MdrScheduleRow
from qris_soundbox.core.finance.settlements import clean_text
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.schemas import from_row

MAX_BANDS = 10
# What a merchant is until an operator says otherwise (SPEC §15); the column's default too.
DEFAULT_MDR_CATEGORY = "uke"


def _invalid(field: str, message: str) -> FinanceInputInvalid:
    return FinanceInputInvalid(f"{field}: {message}", details={"field": field})


async def check_category(conn: Connection, category: str) -> str:
    if not await conn.fetchval(QUERIES["mdr_category_exists"], category):
        raise UnknownMdrCategory(f"no MDR category {category!r}", details={"field": "mdr_category"})
    return category


async def list_schedules(conn: Connection, category: str | None, on: date | None) -> list[MdrScheduleRow]:
    if category is not None:
        await check_category(conn, category)
    rows = await conn.fetch(QUERIES["mdr_schedules"], category, on)
    return [from_row(MdrScheduleRow, row) for row in rows]


def _bands(data: MdrScheduleCreate) -> list[dict[str, object]]:
    """The bands as rows: contiguous from Rp1, ascending, the last open-ended, so every amount has one rate."""
    if not 1 <= len(data.bands) <= MAX_BANDS:
        raise _invalid("bands", f"between 1 and {MAX_BANDS} bands")
    rows: list[dict[str, object]] = []
    low = 1
    for index, band in enumerate(data.bands):
        last = index == len(data.bands) - 1
        if not 0 <= band.bps <= 10_000:
            raise _invalid(f"bands[{index}].bps", "basis points between 0 and 10000")
        if last != (band.max_amount is None):
            raise _invalid(f"bands[{index}].max_amount", "only the last band has no max_amount")
        if band.max_amount is not None and band.max_amount < low:
            raise _invalid(f"bands[{index}].max_amount", "bands ascend: above the previous band's max_amount")
        rows.append({"id": new_id("mdr"), "min_amount": low, "max_amount": band.max_amount, "bps": band.bps})
        low = (band.max_amount or 0) + 1
    return rows


async def add_schedule(conn: Connection, actor: AuditActor, data: MdrScheduleCreate) -> list[MdrScheduleRow]:
    """A new schedule for a category from ``effective_from`` (today at the earliest, Jakarta): the one in force
    is closed there. Days already priced keep the rows that priced them."""
    await check_category(conn, data.category)
    source = clean_text(data.source, "source", 200)
    bands = _bands(data)
    today = date.fromisoformat(business_day()[0])
    if data.effective_from <= today:
        raise MdrScheduleInPast(
            f"effective_from {data.effective_from} is not after today ({today}) in Jakarta",
            details={"field": "effective_from", "today": today.isoformat()},
        )
    try:
        async with conn.transaction():
            rows = await conn.fetch(QUERIES["mdr_schedule_add"], data.category, data.effective_from, bands, source)
    except asyncpg.ExclusionViolationError:
        raise MdrScheduleOverlap(
            f"a {data.category} schedule already prices payments from {data.effective_from}",
            details={"category": data.category, "effective_from": data.effective_from.isoformat()},
        ) from None
    created = [from_row(MdrScheduleRow, row) for row in rows]
    await audit.record(
        conn,
        actor,
        "mdr_schedule.create",
        entity_type="mdr_schedule",
        entity_id=created[0].id,
        payload={
            "category": data.category,
            "effective_from": data.effective_from.isoformat(),
            "bands": msgspec.to_builtins(created),
            "source": source,
        },
    )
    return created
