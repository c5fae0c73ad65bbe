"""The settlement calendar: the Jakarta day a batch's money reaches the merchant.

A batch's ``value_date`` is ``SETTLEMENT_T_PLUS_DAYS`` working days after its
cutoff's Jakarta date. A working day is a weekday that is neither one of
Indonesia's public holidays nor a joint leave day (cuti bersama) — both from the
``holidays`` package, whose ``GOVERNMENT`` category for ``ID`` holds the cuti
bersama of each year's SKB 3 Menteri — nor a day an admin added
(``settlement_holidays``, added through core/finance/settlement_holidays.py). ``value_date`` is the one rule; batches store its
answer when they are made, and admin days are only accepted after every stored
value date, so no batch's date changes afterwards. See docs/finance.md.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from functools import cache

import holidays

from qris_soundbox.core.db import QUERIES, Connection

# The module, not the name: dashboard imports settlements, which imports this.
from qris_soundbox.core.finance import dashboard
from qris_soundbox.core.finance.errors import FinanceInputInvalid


@cache
def indonesia() -> holidays.HolidayBase:
    """Public holidays and cuti bersama; the package fills years in as they are asked for."""
    return holidays.country_holidays("ID", categories=(holidays.PUBLIC, holidays.GOVERNMENT))


def is_working_day(day: date, extra_holidays: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in indonesia() and day not in extra_holidays


def value_date(cutoff: datetime, t_plus_days: int, extra_holidays: Collection[date] = ()) -> date:
    """``t_plus_days`` working days after ``cutoff``'s Jakarta date (0: that day if it works, else the next)."""
    if cutoff.tzinfo is None:
        raise FinanceInputInvalid("cutoff must carry a time zone", details={"field": "cutoff"})
    day = cutoff.astimezone(dashboard.business_tz()).date()
    remaining = t_plus_days
    if remaining == 0:
        while not is_working_day(day, extra_holidays):
            day += timedelta(days=1)
        return day
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day, extra_holidays):
            remaining -= 1
    return day


async def batch_value_date(conn: Connection, cutoff: datetime, t_plus_days: int) -> date:
    """The value date of a batch being made in ``conn``'s transaction, against the admin days as of now.

    Holds the calendar's shared lock until the transaction ends (see ``add_holiday``)."""
    await conn.execute(QUERIES["read_settlement_calendar"])
    start = cutoff.astimezone(dashboard.business_tz()).date()
    extra = {row["day"] for row in await conn.fetch(QUERIES["settlement_holiday_days"], start)}
    return value_date(cutoff, t_plus_days, extra)
