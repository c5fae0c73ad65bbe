"""Merchant onboarding through the real HTTP API: states, QRIS identity, outlets, terminals, audit."""

from __future__ import annotations

import pytest

from tests.merchants.conftest import audit_rows, new_merchant, new_outlet, new_terminal, unique
from tests.qris.test_published_samples import BCA_STATIC, DOKU_DYNAMIC_FIXED_FEE
from tests.support import RunningPlatform


async def test_full_onboarding_path_works_and_is_audited(running: RunningPlatform) -> None:
    headers = {**running.admin_headers, "X-Request-Id": "onboard-1"}
    created = await running.http.post(
        "/admin/merchants",
        json={
            "name": "Kopi Kenangan Sore",
            "city": "Jakarta",
            "mcc": "5814",
            "nmid": "id1020021181745",
            "email": "kopi@example.com",
            "fee_bps": 50,
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    merchant = created.json()
    assert merchant["status"] == "pending_review"
    assert merchant["id"].startswith("mer_")
    assert merchant["code"].startswith("M") and len(merchant["code"]) <= 10
    assert merchant["nmid"] == "ID1020021181745"  # normalised to upper case
    assert merchant["fee_bps"] == 50
    assert merchant["created_at"].endswith("Z")

    approved = await running.http.post(f"/admin/merchants/{merchant['id']}/approve", headers=headers)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"
    assert approved.json()["approved_at"] is not None

    outlet = await running.http.post(
        f"/admin/merchants/{merchant['id']}/outlets",
        json={"name": "Cabang Sudirman", "address": "Jl. Sudirman 1", "city": "Jakarta"},
        headers=headers,
    )
    assert outlet.status_code == 201, outlet.text
    outlet_id = outlet.json()["id"]
    assert outlet.json()["merchant_id"] == merchant["id"]

    terminal = await running.http.post(
        f"/admin/outlets/{outlet_id}/terminals", json={"name": "Kasir Depan"}, headers=headers
    )
    assert terminal.status_code == 201, terminal.text
    body = terminal.json()
    assert body["outlet_id"] == outlet_id and body["merchant_id"] == merchant["id"]
    assert 1 <= len(body["terminal_code"]) <= 25
    assert body["bound_device"] is None

    fetched = await running.http.get(f"/admin/terminals/{body['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json() == body

    rows = await audit_rows(running, merchant_id=merchant["id"])
    actions = sorted(r["action"] for r in rows)
    assert actions == ["merchant.approve", "merchant.create", "outlet.create", "terminal.create"]
    for row in rows:
        assert row["actor_type"] == "admin" and row["actor_id"] == "static-admin-token"
        assert row["actor_role"] == "admin"
        assert row["request_id"] == "onboard-1"
        assert row["ip"] == "127.0.0.1"
    by_action = {r["action"]: r for r in rows}
    assert by_action["terminal.create"]["entity_id"] == body["id"]
    assert by_action["merchant.create"]["payload"]["nmid"] == "ID1020021181745"


async def test_mcc_defaults_and_fee_override_can_be_set_and_cleared(running: RunningPlatform) -> None:
    merchant = await new_merchant(running)
    assert merchant["mcc"] == "5499" and merchant["fee_bps"] is None
    url = f"/admin/merchants/{merchant['id']}"
    changed = await running.http.patch(url, json={"fee_bps": 45, "city": "Surabaya"}, headers=running.admin_headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["fee_bps"] == 45 and changed.json()["city"] == "Surabaya"
    assert changed.json()["name"] == merchant["name"]  # untouched
    cleared = await running.http.patch(url, json={"fee_bps": None}, headers=running.admin_headers)
    assert cleared.json()["fee_bps"] is None
    rows = await audit_rows(running, entity_id=merchant["id"], action="merchant.update")
    assert [r["payload"]["changes"] for r in reversed(rows)] == [
        {"city": {"from": "Bandung", "to": "Surabaya"}, "fee_bps": {"from": None, "to": 45}},
        {"fee_bps": {"from": 45, "to": None}},
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 26, "city": "Jakarta"}, "name"),
        ({"name": "   ", "city": "Jakarta"}, "name"),
        ({"name": "Toko Émile", "city": "Jakarta"}, "name"),
        ({"name": "Toko", "city": "Kota Jakarta Pusat"}, "city"),
        ({"name": "Toko", "city": "Jakarta", "mcc": "54"}, "mcc"),
        ({"name": "Toko", "city": "Jakarta", "mcc": "54a9"}, "mcc"),
        ({"name": "Toko", "city": "Jakarta", "nmid": "ID123"}, "nmid"),
        ({"name": "Toko", "city": "Jakarta", "nmid": "XX1020021181745"}, "nmid"),
        ({"name": "Toko", "city": "Jakarta", "email": "not-an-email"}, "email"),
        ({"name": "Toko", "city": "Jakarta", "fee_bps": 10001}, "fee_bps"),
        ({"name": "Toko", "city": "Jakarta", "fee_bps": -1}, "fee_bps"),
        ({"name": "Toko", "city": "Jakarta", "postal_code": "1011"}, "postal_code"),
    ],
)
async def test_qris_identity_is_validated(running: RunningPlatform, body: dict, field: str) -> None:
    response = await running.http.post("/admin/merchants", json=body, headers=running.admin_headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["details"] == {"field": field}


async def test_qris_limits_are_inclusive(running: RunningPlatform) -> None:
    merchant = await new_merchant(running, name="N" * 25, city="C" * 15, mcc="0000")
    assert merchant["name"] == "N" * 25 and merchant["city"] == "C" * 15


async def test_malformed_bodies_are_rejected_not_500(running: RunningPlatform) -> None:
    for body in ({"city": "Jakarta"}, {"name": 5, "city": "Jakarta"}, {"name": "a", "city": "b", "extra": 1}, []):
        response = await running.http.post("/admin/merchants", json=body, headers=running.admin_headers)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["code"] == "validation_error"


async def test_nmid_is_unique(running: RunningPlatform) -> None:
    await new_merchant(running, nmid="ID9990000000001")
    again = await running.http.post(
        "/admin/merchants",
        json={"name": "Other", "city": "Depok", "nmid": "ID9990000000001"},
        headers=running.admin_headers,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "nmid_taken"
    assert again.json()["error"]["details"] == {"field": "nmid"}
    other = await new_merchant(running)
    taken = await running.http.patch(
        f"/admin/merchants/{other['id']}", json={"nmid": "ID9990000000001"}, headers=running.admin_headers
    )
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "nmid_taken"


async def test_rejection_is_final_and_blocks_outlets_and_terminals(running: RunningPlatform) -> None:
    merchant = await new_merchant(running)
    outlet = await new_outlet(running, merchant["id"])  # allowed while pending review
    url = f"/admin/merchants/{merchant['id']}"
    no_reason = await running.http.post(f"{url}/reject", json={"reason": "  "}, headers=running.admin_headers)
    assert no_reason.status_code == 400
    rejected = await running.http.post(
        f"{url}/reject", json={"reason": "KTP tidak terbaca"}, headers=running.admin_headers
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected" and rejected.json()["rejection_reason"] == "KTP tidak terbaca"

    for method, path, body in [
        ("POST", f"{url}/approve", None),
        ("POST", f"{url}/reject", {"reason": "again"}),
        ("PATCH", url, {"name": "Renamed"}),
        ("POST", f"{url}/outlets", {"name": "Late outlet"}),
        ("POST", f"/admin/outlets/{outlet['id']}/terminals", {"name": "Late terminal"}),
    ]:
        response = await running.http.request(method, path, json=body, headers=running.admin_headers)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["error"]["code"] == "invalid_state"
        assert response.json()["error"]["details"] == {"status": "rejected"}


async def test_active_merchant_cannot_be_approved_or_rejected_again(running: RunningPlatform) -> None:
    merchant = await new_merchant(running, approve=True)
    for action, body in (("approve", None), ("reject", {"reason": "late"})):
        response = await running.http.post(
            f"/admin/merchants/{merchant['id']}/{action}", json=body, headers=running.admin_headers
        )
        assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_state"


async def test_unknown_ids_answer_404(running: RunningPlatform) -> None:
    for method, path, body in [
        ("GET", "/admin/merchants/mer_nope", None),
        ("PATCH", "/admin/merchants/mer_nope", {"name": "x"}),
        ("POST", "/admin/merchants/mer_nope/approve", None),
        ("POST", "/admin/merchants/mer_nope/outlets", {"name": "x"}),
        ("GET", "/admin/outlets/out_nope", None),
        ("POST", "/admin/outlets/out_nope/terminals", {"name": "x"}),
        ("GET", "/admin/terminals/ter_nope", None),
    ]:
        response = await running.http.request(method, path, json=body, headers=running.admin_headers)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["code"] == "not_found"


async def test_static_qris_is_checked_on_the_way_in(running: RunningPlatform, active_merchant: dict) -> None:
    outlet = await new_outlet(running, active_merchant["id"])
    qris = BCA_STATIC  # a real published static QRIS
    terminal = await new_terminal(running, outlet["id"], static_qris=qris)
    assert terminal["static_qris"] == qris
    bad_crc = qris[:-4] + ("0000" if not qris.endswith("0000") else "1111")
    for bad in ("", "x" * 513, "line\nbreak", bad_crc, DOKU_DYNAMIC_FIXED_FEE):
        response = await running.http.post(
            f"/admin/outlets/{outlet['id']}/terminals",
            json={"name": "Bad QR", "static_qris": bad},
            headers=running.admin_headers,
        )
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"]["details"] == {"field": "static_qris"}


async def test_terminal_codes_are_unique_and_generated(running: RunningPlatform, active_merchant: dict) -> None:
    outlet = await new_outlet(running, active_merchant["id"])
    codes = {(await new_terminal(running, outlet["id"]))["terminal_code"] for _ in range(3)}
    assert len(codes) == 3


async def test_lists_filter_and_page_with_a_cursor(running: RunningPlatform) -> None:
    merchant = await new_merchant(running, approve=True)
    outlets = [await new_outlet(running, merchant["id"]) for _ in range(3)]
    terminals = [await new_terminal(running, outlets[0]["id"]) for _ in range(3)]

    seen, cursor = [], None
    while True:
        params = {"merchant_id": merchant["id"], "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await running.http.get("/admin/outlets", params=params, headers=running.admin_headers)).json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [o["id"] for o in reversed(outlets)]

    by_outlet = await running.http.get(
        "/admin/terminals", params={"outlet_id": outlets[0]["id"]}, headers=running.admin_headers
    )
    assert [t["id"] for t in by_outlet.json()["items"]] == [t["id"] for t in reversed(terminals)]
    none = await running.http.get(
        "/admin/terminals", params={"outlet_id": outlets[1]["id"]}, headers=running.admin_headers
    )
    assert none.json() == {"items": [], "next_cursor": None}

    pending = await new_merchant(running)
    listed = await running.http.get(
        "/admin/merchants", params={"status": "pending_review", "limit": 200}, headers=running.admin_headers
    )
    ids = [m["id"] for m in listed.json()["items"]]
    assert pending["id"] in ids and merchant["id"] not in ids

    bad = await running.http.get("/admin/merchants", params={"status": "sleeping"}, headers=running.admin_headers)
    assert bad.status_code == 400
    bad_limit = await running.http.get("/admin/outlets", params={"limit": 0}, headers=running.admin_headers)
    assert bad_limit.status_code == 400


async def test_merchant_code_is_generated_unique(running: RunningPlatform) -> None:
    codes = {(await new_merchant(running, name=unique("Kode ")))["code"] for _ in range(3)}
    assert len(codes) == 3
