"""MDR by merchant category (SPEC §15): the built-in table, the worked amounts, contracts below the
schedule, and a new schedule from Bank Indonesia applying from its date without touching the past."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from qris_soundbox.core.finance.dashboard import business_day
from tests.actors import logged_in
from tests.finance.helpers import pay
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform

# SPEC §15, in force since 2024-12-01: category -> [(min_amount, max_amount, bps)]
SPEC_TABLE = {
    "umi": [(1, 500_000, 0), (500_001, None, 30)],
    "uke": [(1, None, 70)],
    "ume": [(1, None, 70)],
    "ube": [(1, None, 70)],
    "education": [(1, None, 60)],
    "spbu": [(1, None, 40)],
    "blu": [(1, None, 40)],
    "pso": [(1, None, 40)],
    "g2p": [(1, None, 0)],
    "p2g": [(1, None, 0)],
    "donation": [(1, None, 0)],
    "worship": [(1, None, 0)],
}


def today() -> date:
    return date.fromisoformat(business_day()[0])


async def schedules(running: RunningPlatform, **params: str) -> list[dict]:
    response = await running.http.get("/admin/mdr-schedules", params=params, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def fee_row(running: RunningPlatform, transaction_id: str) -> asyncpg.Record:
    return await running.platform.db.pool.fetchrow(
        "SELECT l.amount, l.mdr_schedule_id, t.fee_bps FROM ledger_entries l JOIN transactions t"
        " ON t.id = l.transaction_id WHERE l.transaction_id = $1 AND l.entry_type = 'platform_fee'",
        transaction_id,
    )


async def test_the_built_in_schedules_are_spec_table(running: RunningPlatform) -> None:
    rows = await schedules(running, on=today().isoformat())
    table: dict[str, list[tuple]] = {}
    for row in rows:
        assert row["effective_from"] == "2024-12-01" and row["effective_to"] is None
        table.setdefault(row["category"], []).append((row["min_amount"], row["max_amount"], row["bps"]))
    assert table == SPEC_TABLE
    assert [r["category"] for r in await schedules(running, category="umi")] == ["umi", "umi"]


@pytest.mark.parametrize(
    ("category", "amount", "fee"),
    [
        ("umi", 500_000, 0),  # at the micro threshold: free
        ("umi", 500_001, 1_500),  # 0.3% of 500,001 = 1,500.003
        ("uke", 12_345, 86),  # 0.7% of 12,345 = 86.415
        ("ube", 10_000_000, 70_000),
        ("education", 12_345, 74),  # 0.6% = 74.07
        ("spbu", 125, 1),  # 0.4% of 125 = 0.5: half up
        ("spbu", 100_000, 400),
        ("donation", 1_000_000, 0),
        ("worship", 250_000, 0),
    ],
)
async def test_worked_amounts_and_the_row_that_priced_them(
    running: RunningPlatform, category: str, amount: int, fee: int
) -> None:
    ids = await onboarded_terminal(running, mdr_category=category)
    transaction_id = await pay(running, ids["terminal_id"], amount)
    row = await fee_row(running, transaction_id)
    assert row["amount"] == fee
    priced_by = next(r for r in await schedules(running, category=category) if r["id"] == row["mdr_schedule_id"])
    assert priced_by["min_amount"] <= amount and (priced_by["max_amount"] is None or amount <= priced_by["max_amount"])
    payable = await running.platform.db.pool.fetchval(
        "SELECT amount FROM ledger_entries WHERE transaction_id = $1 AND entry_type = 'merchant_payable'",
        transaction_id,
    )
    assert payable == amount - fee


async def test_a_contract_is_below_the_schedule_and_never_raises_it(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, fee_bps=50)  # uke, 70 bps
    assert (await fee_row(running, await pay(running, ids["terminal_id"], 12_345)))["amount"] == 62  # 61.725

    micro = await onboarded_terminal(running, fee_bps=20, mdr_category="umi")
    small = await fee_row(running, await pay(running, micro["terminal_id"], 500_000))
    large = await fee_row(running, await pay(running, micro["terminal_id"], 500_001))
    assert (small["amount"], small["fee_bps"]) == (0, 0)  # the law's 0% wins over the contract
    assert (large["amount"], large["fee_bps"]) == (1_000, 20)

    above = await running.http.post(
        "/admin/merchants",
        json={"name": "Toko Mahal", "city": "Jakarta", "fee_bps": 71},
        headers=running.admin_headers,
    )
    assert above.status_code == 400 and above.json()["error"]["code"] == "fee_above_schedule", above.text
    url = f"/admin/merchants/{ids['merchant_id']}"
    # Moving a 50 bps contract to a 40 bps category is refused too, and nothing changes.
    moved = await running.http.patch(url, json={"mdr_category": "spbu"}, headers=running.admin_headers)
    assert moved.status_code == 400 and moved.json()["error"]["code"] == "fee_above_schedule", moved.text
    kept = await running.http.get(url, headers=running.admin_headers)
    assert kept.json()["mdr_category"] == "uke" and kept.json()["fee_bps"] == 50
    both = await running.http.patch(url, json={"mdr_category": "spbu", "fee_bps": 30}, headers=running.admin_headers)
    assert both.status_code == 200 and both.json()["mdr_category"] == "spbu", both.text


async def test_a_merchant_is_uke_unless_told_and_an_unknown_category_is_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    merchant = await running.http.get(f"/admin/merchants/{ids['merchant_id']}", headers=running.admin_headers)
    assert merchant.json()["mdr_category"] == "uke" and merchant.json()["fee_bps"] is None
    for method, path, body in [
        ("POST", "/admin/merchants", {"name": "Toko", "city": "Jakarta", "mdr_category": "casino"}),
        ("PATCH", f"/admin/merchants/{ids['merchant_id']}", {"mdr_category": "casino"}),
        ("PATCH", f"/admin/merchants/{ids['merchant_id']}", {"mdr_category": None}),
    ]:
        response = await running.http.request(method, path, json=body, headers=running.admin_headers)
        assert response.status_code == 400, response.text
    unknown = await running.http.get(
        "/admin/mdr-schedules", params={"category": "casino"}, headers=running.admin_headers
    )
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_mdr_category"


async def test_pricing_a_merchant_needs_merchant_fees(running: RunningPlatform) -> None:
    ops = await logged_in(running, "admin", "ops")
    finance = await logged_in(running, "admin", "finance")
    ids = await onboarded_terminal(running)
    url = f"/admin/merchants/{ids['merchant_id']}"
    refused = await running.http.patch(url, json={"mdr_category": "umi"}, headers=ops.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", refused.text
    created = await running.http.post(
        "/admin/merchants", json={"name": "Toko Ops", "city": "Jakarta", "mdr_category": "umi"}, headers=ops.headers
    )
    assert created.status_code == 403, created.text
    plain = await running.http.post(
        "/admin/merchants", json={"name": "Toko Ops", "city": "Jakarta"}, headers=ops.headers
    )
    assert plain.status_code == 201 and plain.json()["mdr_category"] == "uke", plain.text
    body = {
        "category": "uke",
        "effective_from": (today() + timedelta(days=30)).isoformat(),
        "bands": [{"bps": 60}],
        "source": "test",
    }
    posted = await running.http.post("/admin/mdr-schedules", json=body, headers=ops.headers)
    assert posted.status_code == 403, posted.text
    assert (await running.http.get("/admin/mdr-schedules", headers=finance.headers)).status_code == 200
    # Finance prices merchants through /fees (it has no merchant:write); field staff cannot.
    fees = f"{url}/fees"
    assert (await running.http.patch(fees, json={"mdr_category": "umi"}, headers=ops.headers)).status_code == 403
    priced = await running.http.patch(fees, json={"mdr_category": "umi", "fee_bps": 20}, headers=finance.headers)
    assert priced.status_code == 200 and (priced.json()["mdr_category"], priced.json()["fee_bps"]) == ("umi", 20)
    other = await running.http.patch(fees, json={"city": "Bandung"}, headers=finance.headers)
    assert other.status_code == 400, other.text


async def test_a_new_schedule_applies_from_its_date_and_leaves_the_past(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, mdr_category="ume")
    before = await pay(running, ids["terminal_id"], 12_345)
    start = today() + timedelta(days=2)
    body = {
        "category": "ume",
        "effective_from": start.isoformat(),
        "bands": [{"max_amount": 100_000, "bps": 0}, {"bps": 50}],
        "source": "PADG test",
    }
    created = await running.http.post("/admin/mdr-schedules", json=body, headers=running.admin_headers)
    assert created.status_code == 201, created.text
    bands = created.json()["items"]
    assert [(b["min_amount"], b["max_amount"], b["bps"]) for b in bands] == [(1, 100_000, 0), (100_001, None, 50)]
    rows = await schedules(running, category="ume")
    old = next(r for r in rows if r["effective_from"] == "2024-12-01")
    assert old["effective_to"] == start.isoformat()
    assert [r["bps"] for r in await schedules(running, category="ume", on=start.isoformat())] == [0, 50]

    again = await running.http.post("/admin/mdr-schedules", json=body, headers=running.admin_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "mdr_schedule_overlap", again.text
    earlier = body | {"effective_from": (start - timedelta(days=1)).isoformat()}
    overlapping = await running.http.post("/admin/mdr-schedules", json=earlier, headers=running.admin_headers)
    assert overlapping.status_code == 409 and overlapping.json()["error"]["code"] == "mdr_schedule_overlap"
    assert len(await schedules(running, category="ume")) == 3  # nothing half-written
    assert (await schedules(running, category="ume"))[0]["effective_to"] == start.isoformat()

    # Move time: callbacks refuse a paid_at in the future, so the schedule's first day is moved to today
    # (Jakarta), as if two days had passed. The rows refuse changes (a trigger); replica mode skips it.
    moved = start - timedelta(days=2)
    async with running.platform.db.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE mdr_schedules SET valid = daterange(lower(valid), $1) WHERE category = 'ume' AND upper(valid) = $2",
            moved,
            start,
        )
        await conn.execute(
            "UPDATE mdr_schedules SET valid = daterange($1, upper(valid)) WHERE category = 'ume' AND lower(valid) = $2",
            moved,
            start,
        )
    # Paid in the new schedule's first Jakarta second and in the last second of the day before it.
    first_day = datetime(moved.year, moved.month, moved.day, tzinfo=UTC) - timedelta(hours=7) + timedelta(seconds=1)
    last_old_day = first_day - timedelta(seconds=2)
    new = await fee_row(running, await pay(running, ids["terminal_id"], 200_000, paid_at=first_day.isoformat()))
    last = await fee_row(running, await pay(running, ids["terminal_id"], 200_000, paid_at=last_old_day.isoformat()))
    assert (new["amount"], new["mdr_schedule_id"]) == (1_000, bands[1]["id"])
    assert (last["amount"], last["mdr_schedule_id"]) == (1_400, old["id"])
    unchanged = await fee_row(running, before)
    assert (unchanged["amount"], unchanged["mdr_schedule_id"]) == (86, old["id"])


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"effective_from": "2025-01-01"}, "mdr_schedule_in_past"),
        ({"effective_from": "today"}, "mdr_schedule_in_past"),
        ({"category": "casino"}, "unknown_mdr_category"),
        ({"bands": []}, "validation_error"),
        ({"bands": [{"bps": -1}]}, "validation_error"),
        ({"bands": [{"bps": 10_001}]}, "validation_error"),
        ({"bands": [{"max_amount": 1000, "bps": 0}]}, "validation_error"),  # leaves amounts above unpriced
        ({"bands": [{"bps": 0}, {"bps": 30}]}, "validation_error"),
        ({"bands": [{"max_amount": 1000, "bps": 0}, {"max_amount": 500, "bps": 0}, {"bps": 1}]}, "validation_error"),
        ({"source": "  "}, "validation_error"),
        ({"surprise": 1}, "validation_error"),
    ],
)
async def test_a_bad_schedule_is_refused_and_nothing_is_written(
    running: RunningPlatform, change: dict, code: str
) -> None:
    body = {
        "category": "blu",
        "effective_from": (today() + timedelta(days=40)).isoformat(),
        "bands": [{"bps": 35}],
        "source": "test",
    } | change
    if body["effective_from"] == "today":
        body["effective_from"] = today().isoformat()
    response = await running.http.post("/admin/mdr-schedules", json=body, headers=running.admin_headers)
    assert response.status_code in (400, 409) and response.json()["error"]["code"] == code, response.text
    assert len(await schedules(running, category="blu")) == 1


async def test_priced_schedule_rows_are_history(running: RunningPlatform) -> None:
    pool = running.platform.db.pool
    for statement in (
        "UPDATE mdr_schedules SET bps = 10 WHERE category = 'pso'",
        "DELETE FROM mdr_schedules WHERE category = 'pso'",
    ):
        with pytest.raises(asyncpg.PostgresError) as refused:
            await pool.execute(statement)
        assert refused.value.sqlstate == "QS004"
    with pytest.raises(asyncpg.ExclusionViolationError):
        await pool.execute(
            "INSERT INTO mdr_schedules (id, category, valid, amounts, bps, source)"
            " VALUES ('x', 'pso', daterange('2030-01-01', NULL), int8range(1, NULL), 10, 'x')"
        )


async def test_two_schedules_posted_at_once_one_wins(running: RunningPlatform) -> None:
    body = {
        "category": "p2g",
        "effective_from": (today() + timedelta(days=9)).isoformat(),
        "bands": [{"bps": 5}],
        "source": "race",
    }
    responses = await asyncio.gather(
        *(running.http.post("/admin/mdr-schedules", json=body, headers=running.admin_headers) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409], [r.text for r in responses]
    rows = await schedules(running, category="p2g")
    assert [(r["effective_to"], r["bps"]) for r in rows] == [(body["effective_from"], 0), (None, 5)]
