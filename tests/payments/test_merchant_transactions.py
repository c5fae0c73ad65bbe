"""``GET /merchant/transactions``: the logged-in merchant's own payments, paged and filtered like
the admin list, and ``GET /admin/transactions/{id}/qris.svg|.png``: a dynamic QR as an image."""

from __future__ import annotations

import pytest

from qris_soundbox.core.qris import parse_qris
from tests.actors import logged_in
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.qr_images import qr_text
from tests.support import RunningPlatform


async def paid(running: RunningPlatform, terminal_id: str, amount: int) -> str:
    response = await post_callback(running, callback_body(amount=amount, terminal_id=terminal_id))
    assert response.status_code == 200, response.text
    return response.json()["transaction_id"]


async def test_a_merchant_lists_only_its_own_payments_newest_first(running: RunningPlatform) -> None:
    mine = await onboarded_terminal(running, merchant_name="Toko A")
    theirs = await onboarded_terminal(running, merchant_name="Toko B")
    own = [await paid(running, mine["terminal_id"], amount) for amount in (1_000, 2_000)]
    await paid(running, theirs["terminal_id"], 9_000)
    owner = await logged_in(running, "merchant", "owner", mine["merchant_id"])
    response = await running.http.get("/merchant/transactions", headers=owner.headers)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == own[::-1]
    assert body["next_cursor"] is None
    assert {item["merchant_id"] for item in body["items"]} == {mine["merchant_id"]}


async def test_the_list_pages_with_the_cursor_and_filters_like_the_admin_list(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    made = [await paid(running, ids["terminal_id"], amount) for amount in (1_000, 2_000, 3_000)]
    viewer = await logged_in(running, "merchant", "viewer", ids["merchant_id"])
    first = (await running.http.get("/merchant/transactions", params={"limit": 2}, headers=viewer.headers)).json()
    assert [item["id"] for item in first["items"]] == made[:0:-1] and first["next_cursor"] == made[1]
    rest = await running.http.get(
        "/merchant/transactions", params={"limit": 2, "cursor": first["next_cursor"]}, headers=viewer.headers
    )
    assert [item["id"] for item in rest.json()["items"]] == made[:1]
    expired = await running.http.get("/merchant/transactions", params={"status": "expired"}, headers=viewer.headers)
    assert expired.json() == {"items": [], "next_cursor": None}
    other = await onboarded_terminal(running)
    foreign = await running.http.get(
        "/merchant/transactions", params={"terminal_id": other["terminal_id"]}, headers=viewer.headers
    )
    assert foreign.json()["items"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"cursor": "nope"}, "cursor"), ({"from": "2026-01-01T00:00:00"}, "from")],
)
async def test_bad_paging_is_the_usual_validation_error(running: RunningPlatform, params: dict, field: str) -> None:
    ids = await onboarded_terminal(running)
    owner = await logged_in(running, "merchant", "owner", ids["merchant_id"])
    response = await running.http.get("/merchant/transactions", params=params, headers=owner.headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


async def test_only_merchant_users_reach_it(running: RunningPlatform) -> None:
    assert (await running.http.get("/merchant/transactions")).status_code == 401
    assert (await running.http.get("/merchant/transactions", headers=running.admin_headers)).status_code == 403


async def test_a_dynamic_qr_is_drawn_as_a_qr_image_of_its_payload(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    created = await running.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 25_000}, headers=running.admin_headers
    )
    assert created.status_code == 201, created.text
    transaction = created.json()
    png = await running.http.get(f"/admin/transactions/{transaction['id']}/qris.png", headers=running.admin_headers)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert qr_text(png.content) == transaction["qr_payload"]
    assert parse_qris(qr_text(png.content)).amount == 25_000
    svg = await running.http.get(f"/admin/transactions/{transaction['id']}/qris.svg", headers=running.admin_headers)
    assert svg.status_code == 200 and b"<svg" in svg.content[:200]


async def test_a_static_payment_has_no_qr_image(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running)
    transaction_id = await paid(running, ids["terminal_id"], 5_000)
    response = await running.http.get(f"/admin/transactions/{transaction_id}/qris.svg", headers=running.admin_headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "qr_payload_missing"
