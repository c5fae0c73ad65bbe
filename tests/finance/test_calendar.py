"""The settlement calendar: value dates over Indonesia's weekends, public holidays
and cuti bersama, admin-added days, and the API around them.

Expected dates are worked out by hand from the SKB 3 Menteri calendars that the
``holidays`` package (>= 0.109) carries:
- 2026: 24 Dec (Thu) cuti bersama Natal, 25 Dec (Fri) Natal; 2027: 1 Jan (Fri), 5 Jan (Tue) Isra Mikraj.
- 2027 around Idul Fitri: 8 Mar (Mon) Nyepi, 9 Mar (Tue) cuti bersama, 10-11 Mar (Wed-Thu) Idul Fitri,
  12 Mar (Fri) and 15 Mar (Mon) cuti bersama.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta, timezone

import holidays
import pytest

from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import ConfigError, load_settings
from qris_soundbox.core.finance.calendar import batch_value_date, value_date
from qris_soundbox.core.finance.errors import FinanceInputInvalid
from qris_soundbox.core.finance.settlements import build_batch_for_merchant
from tests.finance.helpers import batch_for, merchant_with_payments
from tests.support import RunningPlatform

WIB = timezone(timedelta(hours=7))
ADMIN = AuditActor(actor_type="admin", actor_id="test-calendar")


def wib(year: int, month: int, day: int, hour: int = 17) -> datetime:
    return datetime(year, month, day, hour, tzinfo=WIB)


@pytest.mark.parametrize(
    ("cutoff", "t_plus", "expected"),
    [
        # Year end: Thu 24 (cuti bersama), Fri 25 (Natal), Sat 26, Sun 27 → Mon 28.
        (wib(2026, 12, 23), 1, date(2026, 12, 28)),
        (wib(2026, 12, 24), 1, date(2026, 12, 28)),
        (wib(2026, 12, 24), 2, date(2026, 12, 29)),
        # Fri 1 Jan, Sat, Sun → Mon 4; T+2 skips Tue 5 (Isra Mikraj) → Wed 6.
        (wib(2026, 12, 31), 1, date(2027, 1, 4)),
        (wib(2026, 12, 31), 2, date(2027, 1, 6)),
        # Idul Fitri 2027: Fri 5 Mar → Sat, Sun, 8 Nyepi, 9 cuti, 10-11 Idul Fitri, 12 cuti, Sat, Sun, 15 cuti → Tue 16.
        (wib(2027, 3, 5), 1, date(2027, 3, 16)),
        (wib(2027, 3, 5), 3, date(2027, 3, 18)),
        # The Jakarta date counts: 17:30 UTC on Thu 4 Mar is 00:30 WIB on Fri 5 Mar.
        (datetime(2027, 3, 4, 17, 30, tzinfo=UTC), 1, date(2027, 3, 16)),
        (datetime(2027, 3, 4, 16, 30, tzinfo=UTC), 1, date(2027, 3, 5)),
        # Weekends: Fri → Mon; a Saturday cutoff → Mon; T+0 on a working day is that day, on Sunday Monday.
        (wib(2026, 12, 4), 1, date(2026, 12, 7)),
        (wib(2026, 12, 5), 1, date(2026, 12, 7)),
        (wib(2026, 12, 8), 0, date(2026, 12, 8)),
        (wib(2026, 12, 6), 0, date(2026, 12, 7)),
        (wib(2026, 12, 24), 0, date(2026, 12, 28)),
    ],
)
def test_value_dates_skip_weekends_holidays_and_cuti_bersama(cutoff: datetime, t_plus: int, expected: date) -> None:
    assert value_date(cutoff, t_plus) == expected


def test_an_admin_added_day_is_skipped_too() -> None:
    assert value_date(wib(2026, 12, 11), 1) == date(2026, 12, 14)
    assert value_date(wib(2026, 12, 11), 1, {date(2026, 12, 14)}) == date(2026, 12, 15)
    assert value_date(wib(2026, 12, 11), 1, {date(2026, 12, 14), date(2026, 12, 15)}) == date(2026, 12, 16)


def test_a_naive_cutoff_is_refused() -> None:
    with pytest.raises(FinanceInputInvalid):
        value_date(datetime(2026, 12, 11, 17), 1)


@pytest.mark.parametrize("value", ["-1", "one", "1.5"])
def test_settlement_t_plus_days_must_be_a_whole_non_negative_number(value: str) -> None:
    with pytest.raises(ConfigError, match="SETTLEMENT_T_PLUS_DAYS"):
        load_settings({"SETTLEMENT_T_PLUS_DAYS": value})
    assert load_settings({"SETTLEMENT_T_PLUS_DAYS": "3"}).settlement_t_plus_days == 3
    assert load_settings({}).settlement_t_plus_days == 1


def next_working_day(day: date, extra: set[date] = set()) -> date:  # noqa: B006 - never mutated
    """Independent of the code under test: the package's data and a plain loop."""
    calendar = holidays.country_holidays("ID", categories=(holidays.PUBLIC, holidays.GOVERNMENT))
    day += timedelta(days=1)
    while day.weekday() >= 5 or day in calendar or day in extra:
        day += timedelta(days=1)
    return day


def jakarta_today() -> date:
    return datetime.now(WIB).date()


async def post_holiday(running: RunningPlatform, body: object):
    return await running.http.post("/admin/settlement-holidays", json=body, headers=running.admin_headers)


async def test_a_batch_carries_its_value_date(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [25_000])
    batch = await batch_for(running, ids["merchant_id"])
    cutoff_day = datetime.fromisoformat(batch["cutoff"]).astimezone(WIB).date()
    assert batch["value_date"] == next_working_day(cutoff_day).isoformat()
    detail = (await running.http.get(f"/admin/settlement-batches/{batch['id']}", headers=running.admin_headers)).json()
    listed = (
        await running.http.get(
            "/admin/settlement-batches", params={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
        )
    ).json()["items"]
    assert detail["value_date"] == listed[0]["value_date"] == batch["value_date"]


async def test_admin_days_are_added_listed_and_used(running: RunningPlatform) -> None:
    # A Tuesday two months out whose Monday..Wednesday are working days by the package.
    day = jakarta_today() + timedelta(days=60)
    while (
        day.weekday() != 1
        or next_working_day(day - timedelta(days=2)) != day - timedelta(days=1)
        or (next_working_day(day - timedelta(days=1)) != day or next_working_day(day) != day + timedelta(days=1))
    ):
        day += timedelta(days=1)
    created = await post_holiday(running, {"day": day.isoformat(), "reason": "bank closure"})
    assert created.status_code == 201, created.text
    assert created.json()["day"] == day.isoformat() and created.json()["reason"] == "bank closure"
    listed = await running.http.get(
        "/admin/settlement-holidays", params={"since": day.isoformat()}, headers=running.admin_headers
    )
    assert listed.status_code == 200, listed.text
    assert [h["day"] for h in listed.json()["items"]] == [day.isoformat()]

    again = await post_holiday(running, {"day": day.isoformat(), "reason": "twice"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "settlement_holiday_exists"

    # A batch made from Monday's cutoff now pays on Wednesday: the calendar reads the added day.
    async with running.platform.db.transaction() as conn:
        monday_noon = datetime.combine(day - timedelta(days=1), datetime.min.time(), WIB) + timedelta(hours=12)
        assert await batch_value_date(conn, monday_noon, 1) == day + timedelta(days=1)


async def test_bad_holidays_are_refused_with_clear_codes(running: RunningPlatform) -> None:
    today = jakarta_today()
    past = await post_holiday(running, {"day": today.isoformat(), "reason": "too late"})
    assert past.status_code == 400 and past.json()["error"]["code"] == "settlement_holiday_in_past"

    # On or before a batch's value date: that batch would have been dated otherwise.
    ids = await merchant_with_payments(running, [10_000])
    batch = await batch_for(running, ids["merchant_id"])
    latest = await running.platform.db.pool.fetchval("SELECT max(value_date) FROM settlement_batches")
    assert latest >= date.fromisoformat(batch["value_date"]) > today
    batched = await post_holiday(running, {"day": latest.isoformat(), "reason": "after the fact"})
    assert batched.status_code == 400 and batched.json()["error"]["code"] == "settlement_holiday_batched"

    for body in (
        {"day": "tomorrow", "reason": "x"},
        {"day": (latest + timedelta(days=400)).isoformat()},
        {"day": (latest + timedelta(days=400)).isoformat(), "reason": "   "},
        {"day": (latest + timedelta(days=400)).isoformat(), "reason": "x", "extra": 1},
    ):
        response = await post_holiday(running, body)
        assert response.status_code in (400, 422), (body, response.text)
        assert "error" in response.json()
    assert not await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM settlement_holidays WHERE day = $1 OR day = $2", latest, latest + timedelta(days=400)
    )


async def test_holidays_need_settlement_write(running: RunningPlatform) -> None:
    from tests.finance.helpers import admin_logins

    viewer = (await admin_logins(running, "viewer"))["viewer"]
    body = {"day": (jakarta_today() + timedelta(days=500)).isoformat(), "reason": "x"}
    refused = await running.http.post("/admin/settlement-holidays", json=body, headers=viewer.headers)
    assert refused.status_code == 403, refused.text
    assert (await running.http.get("/admin/settlement-holidays", headers=viewer.headers)).status_code == 200


async def test_a_day_added_while_a_batch_is_made_waits_and_then_sees_it(running: RunningPlatform) -> None:
    """Last in the module: it leaves a batch paying far in the future."""
    ids = await merchant_with_payments(running, [5_000])
    db = running.platform.db
    async with db.transaction() as conn:
        # A batch being made, T+200, not committed yet: it holds the calendar's shared lock.
        cutoff = await conn.fetchval("SELECT now()")
        made = await build_batch_for_merchant(conn, ids["merchant_id"], cutoff, ADMIN, 200)
        assert made is not None
        adding = asyncio.create_task(post_holiday(running, {"day": made.value_date.isoformat(), "reason": "race"}))
        deadline = asyncio.get_running_loop().time() + 20
        while not await db.pool.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
            assert asyncio.get_running_loop().time() < deadline, "the addition never waited for the calendar lock"
            assert not adding.done(), (await adding).text
            await asyncio.sleep(0.02)
    response = await adding
    assert response.status_code == 400 and response.json()["error"]["code"] == "settlement_holiday_batched", (
        response.text
    )
    assert not await db.pool.fetchval("SELECT count(*) FROM settlement_holidays WHERE day = $1", made.value_date)
