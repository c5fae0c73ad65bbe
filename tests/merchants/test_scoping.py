"""A merchant token sees only its own merchant: another merchant's ids answer 404."""

from __future__ import annotations

import re

from qris_soundbox.control_plane.app import create_app
from tests.merchants.conftest import logged_in, new_merchant, new_outlet, new_terminal
from tests.qr_images import STATIC_QRIS
from tests.support import RunningPlatform

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


async def _merchant_with_objects(running: RunningPlatform) -> dict[str, str]:
    merchant = await new_merchant(running, approve=True)
    outlet = await new_outlet(running, merchant["id"])
    # A printed QRIS too, so that the terminal's QR image routes answer for it.
    terminal = await new_terminal(running, outlet["id"], static_qris=STATIC_QRIS)
    return {"merchant_id": merchant["id"], "outlet_id": outlet["id"], "terminal_id": terminal["id"]}


async def test_other_merchants_objects_answer_404_on_every_merchant_route(running: RunningPlatform) -> None:
    mine = await _merchant_with_objects(running)
    theirs = await _merchant_with_objects(running)
    me = await logged_in(running, "merchant", "owner", mine["merchant_id"])

    app = create_app(running.platform)
    templates = [
        (method, route.path)
        for route in app.routes
        if route.path.startswith("/merchant/") and _PARAM.search(route.path)
        for handler in getattr(route, "route_handlers", [])
        if not handler.opt.get("public")
        for method in handler.http_methods
        if method != "OPTIONS"
    ]
    checked = []
    for method, template in templates:
        names = _PARAM.findall(template)
        if not set(names) <= set(mine):
            continue  # another domain's object kind; that domain's tests cover it
        own = await running.http.request(method, _PARAM.sub(lambda m: mine[m.group(1)], template), headers=me.headers)
        other = await running.http.request(
            method, _PARAM.sub(lambda m: theirs[m.group(1)], template), headers=me.headers
        )
        assert own.status_code == 200, (template, own.text)
        assert other.status_code == 404, (template, other.text)
        assert other.json()["error"]["code"] == "not_found"
        checked.append(template)
    assert {"/merchant/outlets/{outlet_id:str}", "/merchant/terminals/{terminal_id:str}"} <= set(checked)


async def test_merchant_lists_hold_only_their_own_objects(running: RunningPlatform) -> None:
    mine = await _merchant_with_objects(running)
    theirs = await _merchant_with_objects(running)
    me = await logged_in(running, "merchant", "viewer", mine["merchant_id"])

    outlets = (await running.http.get("/merchant/outlets", headers=me.headers)).json()["items"]
    assert [o["id"] for o in outlets] == [mine["outlet_id"]]
    terminals = (await running.http.get("/merchant/terminals", headers=me.headers)).json()["items"]
    assert [t["id"] for t in terminals] == [mine["terminal_id"]]
    # A filter naming another merchant's outlet finds nothing, rather than leaking it.
    filtered = await running.http.get(
        "/merchant/terminals", params={"outlet_id": theirs["outlet_id"]}, headers=me.headers
    )
    assert filtered.json() == {"items": [], "next_cursor": None}
    profile = (await running.http.get("/merchant/profile", headers=me.headers)).json()
    assert profile["merchant"]["id"] == mine["merchant_id"]


async def test_merchant_tokens_cannot_use_admin_routes(running: RunningPlatform) -> None:
    mine = await _merchant_with_objects(running)
    me = await logged_in(running, "merchant", "owner", mine["merchant_id"])
    # outlet:read is in the merchant role table too; the /admin prefix still refuses merchants.
    for path in ("/admin/outlets", f"/admin/outlets/{mine['outlet_id']}", f"/admin/merchants/{mine['merchant_id']}"):
        response = await running.http.get(path, headers=me.headers)
        assert response.status_code == 403, path
    admin = await logged_in(running, "admin", "admin")
    assert (await running.http.get("/merchant/outlets", headers=admin.headers)).status_code == 403
    assert (await running.http.get("/merchant/profile", headers=running.admin_headers)).status_code == 403
