"""What the console shows people comes from the API: list answers carry names and codes (the merchant's
name, the terminal's code, the acting user's email), every list takes the search box's ``q``, and a
soundbox binds by the code printed on the terminal's QRIS as well as by the terminal's id."""

from __future__ import annotations

from typing import Any

from tests.actors import logged_in
from tests.devices.helpers import register_device
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import RunningPlatform


async def admin_get(running: RunningPlatform, path: str, **params: Any) -> Any:
    response = await running.http.get(path, params=params, headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def terminal_of(running: RunningPlatform, terminal_id: str) -> dict[str, Any]:
    return await admin_get(running, f"/admin/terminals/{terminal_id}")


async def test_a_soundbox_binds_by_the_terminal_code_on_its_qris(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, merchant_name="Warung Kode")
    code = (await terminal_of(running, ids["terminal_id"]))["terminal_code"]
    device = await register_device(running)
    bound = await running.http.post(
        f"/admin/devices/{device['id']}/bind", json={"terminal_code": code.lower()}, headers=running.admin_headers
    )
    # The console sends the code upper-cased; the API matches it whole.
    assert bound.status_code == 404 and bound.json()["error"]["code"] == "terminal_not_found"
    bound = await running.http.post(
        f"/admin/devices/{device['id']}/bind", json={"terminal_code": code}, headers=running.admin_headers
    )
    assert bound.status_code == 200, bound.text
    answer = bound.json()
    assert answer["terminal_id"] == ids["terminal_id"]
    assert (answer["terminal_code"], answer["merchant_name"]) == (code, "Warung Kode")


async def test_a_bind_names_its_terminal_exactly_once(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    device = await register_device(running)
    for body in ({}, {"terminal_id": ids["terminal_id"], "terminal_code": "T000001"}):
        refused = await running.http.post(
            f"/admin/devices/{device['id']}/bind", json=body, headers=running.admin_headers
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "validation_error", body
    unknown = await running.http.post(
        f"/admin/devices/{device['id']}/bind", json={"terminal_code": "T999999999"}, headers=running.admin_headers
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["details"] == {"terminal_code": "T999999999"}


async def test_lists_carry_names_and_the_search_finds_by_them(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, merchant_name="Kopi Cari Nama")
    terminal = await terminal_of(running, ids["terminal_id"])
    device = await register_device(running)
    bound = await running.http.post(
        f"/admin/devices/{device['id']}/bind", json={"terminal_id": ids["terminal_id"]}, headers=running.admin_headers
    )
    assert bound.status_code == 200, bound.text
    body = callback_body(amount=31_337, terminal_id=ids["terminal_id"])
    paid = (await post_callback(running, body)).json()["transaction_id"]

    transactions = await admin_get(running, "/admin/transactions", q=body["provider_reference"])
    assert [x["id"] for x in transactions["items"]] == [paid]
    listed = transactions["items"][0]
    assert (listed["merchant_name"], listed["terminal_code"], listed["terminal_name"]) == (
        "Kopi Cari Nama",
        terminal["terminal_code"],
        terminal["name"],
    )
    assert paid in [x["id"] for x in (await admin_get(running, "/admin/transactions", q="31337"))["items"]]
    detail = await admin_get(running, f"/admin/transactions/{paid}")
    assert detail["merchant_name"] == "Kopi Cari Nama" and detail["terminal_code"] == terminal["terminal_code"]

    merchants = await admin_get(running, "/admin/merchants", q="cari nam")  # part of the name, any case
    assert [m["id"] for m in merchants["items"]] == [ids["merchant_id"]]
    code = merchants["items"][0]["code"]
    assert [m["id"] for m in (await admin_get(running, "/admin/merchants", q=code))["items"]] == [ids["merchant_id"]]
    # A search box's text is never a pattern: "%" matches a "%" only.
    assert (await admin_get(running, "/admin/merchants", q="%"))["items"] == []

    serial = device["serial_number"]
    devices = await admin_get(running, "/admin/devices", q=serial[3:9].lower())
    assert device["id"] in [d["id"] for d in devices["items"]]
    found = next(d for d in devices["items"] if d["id"] == device["id"])
    assert (found["merchant_name"], found["terminal_code"]) == ("Kopi Cari Nama", terminal["terminal_code"])

    terminals = await admin_get(running, "/admin/terminals", q=terminal["terminal_code"])
    assert [x["id"] for x in terminals["items"]] == [ids["terminal_id"]]


async def test_batches_carry_the_merchant_name_and_audit_entries_the_users_email(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, merchant_name="Toko Batch Nama")
    await post_callback(running, callback_body(amount=10_000, terminal_id=ids["terminal_id"]))
    made = await running.http.post(
        "/admin/settlement-batches", json={"merchant_id": ids["merchant_id"]}, headers=running.admin_headers
    )
    assert made.status_code == 201, made.text
    batches = await admin_get(running, "/admin/settlement-batches", merchant_id=ids["merchant_id"])
    assert [b["merchant_name"] for b in batches["items"]] == ["Toko Batch Nama"]
    dashboard = await admin_get(running, "/admin/dashboard/summary")
    assert "Toko Batch Nama" in [b["merchant_name"] for b in dashboard["latest_batches"]]

    finance = await logged_in(running, "admin", "finance")
    merchant_user = await logged_in(running, "merchant", "owner", ids["merchant_id"])
    for client in (finance, merchant_user):
        response = await running.http.post(f"/{client.kind}/logout", headers=client.headers)
        assert response.status_code < 300, response.text
    for client in (finance, merchant_user):
        logs = await admin_get(running, "/admin/audit-logs", actor_id=client.user_id)
        assert logs["items"] and {entry["actor_email"] for entry in logs["items"]} == {client.email}


async def test_a_search_is_bounded_like_every_filter(running: RunningPlatform) -> None:
    for path in ("/admin/merchants", "/admin/devices", "/admin/transactions", "/admin/terminals"):
        for q in ("", "x" * 101):
            response = await running.http.get(path, params={"q": q}, headers=running.admin_headers)
            assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error", (path, q)
