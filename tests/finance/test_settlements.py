"""Settlement batches through the real HTTP API and PostgreSQL: building, the
one-live-batch guarantee, the lifecycle, reprocessing, adjustments and roles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.finance.helpers import (
    admin_logins,
    batch_for,
    create_batches,
    ledger_sums,
    merchant_with_payments,
    pay,
    payee_terminal,
)
from tests.support import PlatformFactory, RunningPlatform

SIGNS = {"bank_fee": -1, "chargeback": -1, "bonus": 1, "correction": 0}


@pytest.fixture(scope="module")
async def running(platform_factory: PlatformFactory) -> RunningPlatform:
    """The platform with room for the property test's admin writes: each of its days onboards three
    merchants over the API and adjusts and pays their batches, up to ~375 writes in a minute."""
    return await platform_factory.start(rate_limit_admin_write_max=10_000)


async def post(running: RunningPlatform, path: str, body: dict | None = None, headers: dict | None = None):
    return await running.http.post(path, json=body, headers=headers or running.admin_headers)


async def detail(running: RunningPlatform, batch_id: str) -> dict:
    response = await running.http.get(f"/admin/settlement-batches/{batch_id}", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_batch_totals_are_its_payable_entries(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [25_000, 10_000, 1_234], fee_bps=70)
    batch = await batch_for(running, ids["merchant_id"])
    sums = await ledger_sums(running, ids["merchant_id"])
    assert batch["status"] == "pending" and batch["entry_count"] == 3
    assert batch["gross_amount"] == sums["gross_income"] == 36_234
    assert batch["fee_amount"] == sums["platform_fee"]
    assert batch["payable_amount"] == sums["merchant_payable"]
    assert batch["adjustment_amount"] == 0 and batch["adjusted_payable_amount"] == batch["payable_amount"]
    body = await detail(running, batch["id"])
    assert sorted(e["transaction_id"] for e in body["entries"]) == sorted(ids["transaction_ids"])
    assert [e["event_type"] for e in body["events"]] == ["created"]
    # Nothing left: a second run makes no batch.
    assert await create_batches(running, {"merchant_id": ids["merchant_id"]}) == []


async def test_cutoff_leaves_later_payables_for_the_next_batch(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [5_000])
    cutoff = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await pay(running, ids["terminal_id"], 7_000)
    first = await create_batches(running, {"merchant_id": ids["merchant_id"], "cutoff": cutoff.isoformat()})
    assert [b["gross_amount"] for b in first] == [5_000]
    second = await create_batches(running, {"merchant_id": ids["merchant_id"]})
    assert [b["gross_amount"] for b in second] == [7_000]


async def test_create_without_a_body_settles_every_merchant(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [2_500])
    response = await running.http.post("/admin/settlement-batches", headers=running.admin_headers)
    assert response.status_code == 201, response.text
    assert ids["merchant_id"] in {b["merchant_id"] for b in response.json()["items"]}
    again = await running.http.post("/admin/settlement-batches", headers=running.admin_headers)
    assert again.status_code == 201 and again.json() == {"items": [], "held": []}


async def test_finance_routes_are_in_the_openapi_schema(running: RunningPlatform) -> None:
    paths = (await running.http.get("/schema/openapi.json")).json()["paths"]
    for path in (
        "/admin/settlement-batches",
        "/admin/settlement-batches/{batch_id}/export.csv",
        "/admin/exports/settlement-adjustments",
        "/admin/reconciliation/settlement-batches",
        "/merchant/settlement-batches/{batch_id}",
    ):
        assert path in paths, path


async def test_create_validates_its_input(running: RunningPlatform) -> None:
    missing = await post(running, "/admin/settlement-batches", {"merchant_id": "mer_nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "merchant_not_found"
    naive = await post(running, "/admin/settlement-batches", {"cutoff": "2026-01-01T00:00:00"})
    assert naive.status_code == 400 and naive.json()["error"]["code"] == "validation_error"
    unknown = await post(running, "/admin/settlement-batches", {"merchant": "x"})
    assert unknown.status_code == 400
    garbage = await running.http.post(
        "/admin/settlement-batches",
        content=b"{not json",
        headers=running.admin_headers | {"Content-Type": "application/json"},
    )
    assert garbage.status_code == 400


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    day=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=70),  # a fee_bps contract, at most the uke schedule
            st.lists(st.integers(min_value=1, max_value=5_000_000), min_size=1, max_size=6),
            st.lists(
                st.tuples(st.sampled_from(sorted(SIGNS)), st.integers(min_value=1, max_value=2_000_000)), max_size=3
            ),
        ),
        min_size=3,
        max_size=3,
    )
)
async def test_a_day_of_payments_settles_to_the_rupiah(running: RunningPlatform, day: list) -> None:
    merchants = []
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for fee_bps, amounts, _ in day:
        ids = await payee_terminal(running, fee_bps=fee_bps)
        for index, amount in enumerate(amounts):
            # Spread over the day; the ledger is written when the callback arrives.
            await pay(running, ids["terminal_id"], amount, paid_at=(start + timedelta(minutes=137 * index)).isoformat())
        merchants.append(ids)

    batches = {b["merchant_id"]: b for b in await create_batches(running)}
    for ids, (_fee_bps, amounts, wanted_adjustments) in zip(merchants, day, strict=True):
        batch = batches[ids["merchant_id"]]
        sums = await ledger_sums(running, ids["merchant_id"])
        assert batch["entry_count"] == len(amounts)
        assert batch["gross_amount"] == sums["gross_income"] == sum(amounts)
        assert batch["fee_amount"] == sums["platform_fee"]
        assert batch["payable_amount"] == sums["merchant_payable"]
        assert batch["fee_amount"] + batch["payable_amount"] == batch["gross_amount"]

        accepted = 0
        for adjustment_type, magnitude in wanted_adjustments:
            amount = magnitude * (SIGNS[adjustment_type] or -1)
            response = await post(
                running,
                f"/admin/settlement-batches/{batch['id']}/adjustments",
                {"adjustment_type": adjustment_type, "amount": amount, "reason": "test"},
            )
            if sums["merchant_payable"] + accepted + amount < 0:
                assert response.status_code == 422, response.text
                assert response.json()["error"]["code"] == "adjusted_payable_negative"
            else:
                assert response.status_code == 201, response.text
                accepted += amount
                assert response.json()["batch"]["adjusted_payable_amount"] == sums["merchant_payable"] + accepted

        paid = await post(running, f"/admin/settlement-batches/{batch['id']}/mark-paid", {"payout_reference": "TRF-1"})
        assert paid.status_code == 200, paid.text
        final = paid.json()
        assert final["status"] == "paid"
        assert final["adjustment_amount"] == accepted
        assert final["adjusted_payable_amount"] == sums["merchant_payable"] + accepted >= 0


async def test_concurrent_batch_creation_never_puts_an_entry_in_two_batches(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [1_000 + i for i in range(25)])
    results = await asyncio.gather(
        *(
            post(running, "/admin/settlement-batches", {"merchant_id": ids["merchant_id"]} if i % 2 else {})
            for i in range(8)
        )
    )
    assert all(r.status_code == 201 for r in results), [r.text for r in results]
    mine = [b for r in results for b in r.json()["items"] if b["merchant_id"] == ids["merchant_id"]]
    assert len(mine) == 1 and mine[0]["entry_count"] == 25
    db = running.platform.db
    doubled = await db.pool.fetchval(
        "SELECT count(*) FROM (SELECT ledger_entry_id FROM settlement_batch_entries WHERE live "
        "GROUP BY ledger_entry_id HAVING count(*) > 1) d"
    )
    assert doubled == 0


async def test_database_refuses_an_entry_in_two_live_batches(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [3_000])
    batch = await batch_for(running, ids["merchant_id"])
    db = running.platform.db
    entry = await db.pool.fetchrow("SELECT * FROM settlement_batch_entries WHERE batch_id = $1", batch["id"])
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO settlement_batches (id, merchant_id, cutoff, entry_count, gross_amount, fee_amount, "
            "payable_amount, value_date) VALUES ('stb_rogue', $1, now(), 0, 0, 0, 0, current_date + 1)",
            ids["merchant_id"],
        )
    with pytest.raises(asyncpg.UniqueViolationError):
        await db.pool.execute(
            "INSERT INTO settlement_batch_entries (batch_id, ledger_entry_id, transaction_id, merchant_id, "
            "gross_amount, fee_amount, payable_amount) VALUES ('stb_rogue', $1, $2, $3, $4, $5, $6)",
            entry["ledger_entry_id"],
            entry["transaction_id"],
            ids["merchant_id"],
            entry["gross_amount"],
            entry["fee_amount"],
            entry["payable_amount"],
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.pool.execute("UPDATE settlement_batch_entries SET payable_amount = 1 WHERE batch_id = $1", batch["id"])
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await db.pool.execute("DELETE FROM settlement_batch_entries WHERE batch_id = $1", batch["id"])


async def test_fail_then_reprocess_then_pay_keeps_totals(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [50_000, 20_000])
    batch = await batch_for(running, ids["merchant_id"])
    adjusted = await post(
        running,
        f"/admin/settlement-batches/{batch['id']}/adjustments",
        {"adjustment_type": "bank_fee", "amount": -2_500, "reason": "transfer fee"},
    )
    assert adjusted.status_code == 201
    failed = await post(running, f"/admin/settlement-batches/{batch['id']}/mark-failed", {"reason": "account closed"})
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert failed.json()["failure_reason"] == "account closed"

    new = await post(running, f"/admin/settlement-batches/{batch['id']}/reprocess")
    assert new.status_code == 201, new.text
    new_batch = new.json()
    assert new_batch["id"] != batch["id"] and new_batch["status"] == "pending"
    assert new_batch["reprocessed_from_batch_id"] == batch["id"]
    for field in ("entry_count", "gross_amount", "fee_amount", "payable_amount"):
        assert new_batch[field] == batch[field]
    assert new_batch["adjustment_amount"] == -2_500
    assert new_batch["adjusted_payable_amount"] == batch["payable_amount"] - 2_500

    again = await post(running, f"/admin/settlement-batches/{batch['id']}/reprocess")
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_state"

    paid = await post(
        running,
        f"/admin/settlement-batches/{new_batch['id']}/mark-paid",
        {"payout_reference": "BCA-778899", "note": "retried"},
    )
    assert paid.status_code == 200 and paid.json()["adjusted_payable_amount"] == new_batch["adjusted_payable_amount"]
    old = await detail(running, batch["id"])
    assert old["reprocessed_into_batch_id"] == new_batch["id"]
    assert all(not e["live"] for e in old["entries"])
    assert [e["event_type"] for e in old["events"]] == ["created", "adjusted", "failed", "reprocessed"]
    fresh = await detail(running, new_batch["id"])
    assert all(e["live"] for e in fresh["entries"])
    assert [a["carried_from_adjustment_id"] for a in fresh["adjustments"]] == [adjusted.json()["id"]]
    assert [e["event_type"] for e in fresh["events"]] == ["created", "paid"]


async def test_cancelled_entries_go_back_to_the_pool(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [8_000])
    batch = await batch_for(running, ids["merchant_id"])
    cancelled = await post(running, f"/admin/settlement-batches/{batch['id']}/cancel", {"reason": "wrong cutoff"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # Released entries are unbatched again: a normal run takes them...
    rebatched = await batch_for(running, ids["merchant_id"])
    assert rebatched["payable_amount"] == batch["payable_amount"]
    # ...so reprocessing the cancelled batch has nothing left to take.
    response = await post(running, f"/admin/settlement-batches/{batch['id']}/reprocess")
    assert response.status_code == 409 and response.json()["error"]["code"] == "nothing_to_reprocess"


async def test_invalid_transitions_are_409_invalid_state(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [9_000])
    batch = await batch_for(running, ids["merchant_id"])
    path = f"/admin/settlement-batches/{batch['id']}"
    pending_reprocess = await post(running, f"{path}/reprocess")
    assert pending_reprocess.status_code == 409 and pending_reprocess.json()["error"]["code"] == "invalid_state"
    assert (await post(running, f"{path}/mark-paid", {"payout_reference": "REF-1"})).status_code == 200
    for action, body in (
        ("mark-paid", {"payout_reference": "REF-2"}),
        ("mark-failed", {"reason": "x"}),
        ("cancel", {"reason": "x"}),
        ("reprocess", None),
        ("adjustments", {"adjustment_type": "bonus", "amount": 1, "reason": "x"}),
    ):
        response = await post(running, f"{path}/{action}", body)
        assert response.status_code == 409, (action, response.text)
        assert response.json()["error"]["code"] == "invalid_state"
    missing = await post(running, "/admin/settlement-batches/stb_missing/mark-paid", {"payout_reference": "R"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "settlement_batch_not_found"


async def test_payout_reference_can_be_corrected_on_a_paid_batch(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [4_000])
    batch = await batch_for(running, ids["merchant_id"])
    path = f"/admin/settlement-batches/{batch['id']}"
    await post(running, f"{path}/mark-paid", {"payout_reference": "TYPO"})
    response = await running.http.patch(
        f"{path}/reference", json={"payout_reference": "BNI-001"}, headers=running.admin_headers
    )
    assert response.status_code == 200 and response.json()["payout_reference"] == "BNI-001"
    events = (await detail(running, batch["id"]))["events"]
    assert events[-1]["event_type"] == "reference_updated"
    assert events[-1]["payload"] == {"old": "TYPO", "new": "BNI-001"}
    blank = await running.http.patch(
        f"{path}/reference", json={"payout_reference": "   "}, headers=running.admin_headers
    )
    assert blank.status_code == 400


async def test_adjustment_rules(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [10_000], fee_bps=0)
    batch = await batch_for(running, ids["merchant_id"])
    path = f"/admin/settlement-batches/{batch['id']}/adjustments"
    for body in (
        {"adjustment_type": "bank_fee", "amount": 500, "reason": "fee must be negative"},
        {"adjustment_type": "bonus", "amount": -1, "reason": "bonus must be positive"},
        {"adjustment_type": "correction", "amount": 0, "reason": "zero"},
        {"adjustment_type": "gift", "amount": 5, "reason": "unknown type"},
        {"adjustment_type": "correction", "amount": 5, "reason": ""},
        {"adjustment_type": "correction", "amount": 1.5, "reason": "float"},
    ):
        response = await post(running, path, body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"
    too_much = await post(running, path, {"adjustment_type": "chargeback", "amount": -10_001, "reason": "x"})
    assert too_much.status_code == 422 and too_much.json()["error"]["code"] == "adjusted_payable_negative"
    exact = await post(running, path, {"adjustment_type": "chargeback", "amount": -10_000, "reason": "disputed"})
    assert exact.status_code == 201 and exact.json()["batch"]["adjusted_payable_amount"] == 0
    listed = await running.http.get(
        "/admin/settlement-adjustments", params={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
    )
    assert [a["amount"] for a in listed.json()["items"]] == [-10_000]
    audit = await running.platform.db.pool.fetchval(
        "SELECT count(*) FROM audit_logs WHERE action = 'settlement_batch.adjust' AND entity_id = $1", batch["id"]
    )
    assert audit == 1


async def test_lists_filter_and_page(running: RunningPlatform) -> None:
    ids = await payee_terminal(running)
    for amount in (1_000, 2_000, 3_000):
        await pay(running, ids["terminal_id"], amount)
        await create_batches(running, {"merchant_id": ids["merchant_id"]})
    seen, cursor = [], None
    while True:
        params = {"merchant_id": ids["merchant_id"], "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (
            await running.http.get("/admin/settlement-batches", params=params, headers=running.admin_headers)
        ).json()
        seen += [b["gross_amount"] for b in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [3_000, 2_000, 1_000]
    paid_only = await running.http.get(
        "/admin/settlement-batches",
        params={"merchant_id": ids["merchant_id"], "status": "paid"},
        headers=running.admin_headers,
    )
    assert paid_only.json()["items"] == []
    bad = await running.http.get("/admin/settlement-batches", params={"status": "weird"}, headers=running.admin_headers)
    assert bad.status_code == 400


async def test_roles(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [6_000])
    users = await admin_logins(running, "viewer", "ops", "finance")
    viewer, ops, finance = users["viewer"].headers, users["ops"].headers, users["finance"].headers
    refused = await post(running, "/admin/settlement-batches", {"merchant_id": ids["merchant_id"]}, headers=viewer)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert (await running.http.get("/admin/settlement-batches", headers=viewer)).status_code == 200
    assert (await post(running, "/admin/settlement-batches", {}, headers=ops)).status_code == 403
    batch = (await create_batches(running, {"merchant_id": ids["merchant_id"]}, headers=finance))[0]
    assert batch["created_by"] == users["finance"].user_id
    viewer_pay = await post(
        running, f"/admin/settlement-batches/{batch['id']}/mark-paid", {"payout_reference": "R"}, headers=viewer
    )
    assert viewer_pay.status_code == 403
    viewer_csv = await running.http.get(f"/admin/settlement-batches/{batch['id']}/export.csv", headers=viewer)
    assert viewer_csv.status_code == 403
    paid = await post(
        running, f"/admin/settlement-batches/{batch['id']}/mark-paid", {"payout_reference": "R"}, headers=finance
    )
    assert paid.status_code == 200
    anonymous = await running.http.get("/admin/settlement-batches")
    assert anonymous.status_code == 401


async def test_malformed_requests_never_answer_500(running: RunningPlatform) -> None:
    ids = await merchant_with_payments(running, [1_500])
    batch = await batch_for(running, ids["merchant_id"])
    base = f"/admin/settlement-batches/{batch['id']}"
    attempts = [
        ("GET", "/admin/settlement-batches", {"params": {"limit": "0"}}),
        ("GET", "/admin/settlement-batches", {"params": {"limit": "abc"}}),
        ("GET", "/admin/settlement-batches", {"params": {"from": "2026-13-45"}}),
        ("GET", "/admin/settlement-batches", {"params": {"to": "2026-01-01"}}),
        ("GET", "/admin/settlement-adjustments", {"params": {"adjustment_type": "x" * 300}}),
        ("GET", "/admin/reconciliation/settlement-batches", {"params": {"status": "nope"}}),
        ("GET", f"/admin/settlement-batches/{'x' * 5000}", {}),
        ("POST", "/admin/settlement-batches", {"json": {"cutoff": "yesterday"}}),
        ("POST", "/admin/settlement-batches", {"json": [1, 2]}),
        ("POST", "/admin/settlement-batches", {"json": {"merchant_id": 5}}),
        ("POST", f"{base}/mark-paid", {"json": {}}),
        ("POST", f"{base}/mark-paid", {"json": {"payout_reference": "R" * 129}}),
        ("POST", f"{base}/mark-failed", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
        ("POST", f"{base}/adjustments", {"json": {"adjustment_type": "bonus", "amount": 10**30, "reason": "x"}}),
        ("PATCH", f"{base}/reference", {"json": {"payout_reference": None}}),
        ("POST", "/admin/exports/settlement-adjustments", {"json": {"to": "soon"}}),
    ]
    for method, path, kwargs in attempts:
        headers = running.admin_headers | kwargs.pop("headers", {})
        response = await running.http.request(method, path, headers=headers, **kwargs)
        assert 400 <= response.status_code < 500, (method, path, response.status_code, response.text)
        assert "error" in response.json(), response.text
