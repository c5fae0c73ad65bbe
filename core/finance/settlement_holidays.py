"""Non-working days an admin adds to the settlement calendar (core/finance/calendar.py).

A day is accepted only after today (Jakarta) and after every batch's value date,
under the calendar's exclusive lock, so no batch already made, or being made,
would have had a different value date with it.
"""

from __future__ import annotations

from datetime import date

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.finance.dashboard import business_day
from qris_soundbox.core.finance.errors import (
    SettlementHolidayBatched,
    SettlementHolidayExists,
    SettlementHolidayInPast,
)
from qris_soundbox.core.finance.schemas import SettlementHoliday, SettlementHolidayCreate
from qris_soundbox.core.finance.settlements import clean_text
from qris_soundbox.core.schemas import from_row


async def list_holidays(conn: Connection, from_day: date | None) -> list[SettlementHoliday]:
    return [from_row(SettlementHoliday, row) for row in await conn.fetch(QUERIES["settlement_holidays"], from_day)]


async def add_holiday(conn: Connection, actor: AuditActor, data: SettlementHolidayCreate) -> SettlementHoliday:
    """One admin-added non-working day: after today (Jakarta) and after every batch's value date."""
    reason = clean_text(data.reason, "reason", 200)
    today = date.fromisoformat(business_day()[0])
    if data.day <= today:
        raise SettlementHolidayInPast(
            f"day {data.day} is not after today ({today}) in Jakarta",
            details={"field": "day", "today": today.isoformat()},
        )
    # Exclusive: waits for batches being made, and keeps new ones out until this day is in.
    await conn.execute(QUERIES["change_settlement_calendar"])
    latest: date | None = await conn.fetchval(QUERIES["latest_settlement_value_date"])
    if latest is not None and data.day <= latest:
        raise SettlementHolidayBatched(
            f"a settlement batch already pays on {latest}: day {data.day} must be after it",
            details={"field": "day", "latest_value_date": latest.isoformat()},
        )
    row = await conn.fetchrow(QUERIES["insert_settlement_holiday"], data.day, reason, actor.actor_id)
    if row is None:
        raise SettlementHolidayExists(f"day {data.day} is already a settlement holiday", details={"day": str(data.day)})
    await audit.record(
        conn,
        actor,
        "settlement_holiday.create",
        entity_type="settlement_holiday",
        entity_id=data.day.isoformat(),
        payload={"day": data.day.isoformat(), "reason": reason},
    )
    return from_row(SettlementHoliday, row)
