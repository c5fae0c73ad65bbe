"""Demo data: ``POST /admin/seed`` and ``seed_demo`` (``serve --demo``) are idempotent and log in."""

from __future__ import annotations

from qris_soundbox.core.demo import DEMO_USERS, seed_demo
from tests.merchants.conftest import login
from tests.support import RunningPlatform

COUNTS = """SELECT (SELECT count(*) FROM merchants), (SELECT count(*) FROM outlets), (SELECT count(*) FROM terminals),
                  (SELECT count(*) FROM admin_users), (SELECT count(*) FROM merchant_users),
                  (SELECT count(*) FROM audit_logs WHERE entity_type IS DISTINCT FROM 'device')"""


async def test_seed_creates_an_active_merchant_terminal_and_users_once(running: RunningPlatform) -> None:
    first = await running.http.post("/admin/seed", headers=running.admin_headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["merchant"]["status"] == "active"
    assert body["terminal"]["merchant_id"] == body["merchant"]["id"]
    assert body["outlet"]["id"] == body["terminal"]["outlet_id"]
    assert {(u["kind"], u["role"]) for u in body["logins"]} == {
        ("admin", "admin"),
        ("admin", "finance"),
        ("merchant", "owner"),
    }
    assert "merchant" in body["created"]

    before = await running.platform.db.pool.fetchrow(COUNTS)
    again = await running.http.post("/admin/seed", headers=running.admin_headers)
    assert again.json()["created"] == []
    assert again.json()["merchant"]["id"] == body["merchant"]["id"]
    lines = await seed_demo(running.platform)
    # Nothing changed, not even audit: only the demo device gets a fresh secret (shown once) per start.
    assert tuple(await running.platform.db.pool.fetchrow(COUNTS)) == tuple(before)

    for kind, email, _name, role, password in DEMO_USERS:
        response = await login(running, kind, email, password)
        assert response.status_code == 200, (email, response.text)
        assert response.json()["user"]["role"] == role
        assert any(email in line and password in line for line in lines)
    assert any(body["terminal"]["id"] in line for line in lines)

    created = await running.platform.db.pool.fetch(
        "SELECT action FROM audit_logs WHERE merchant_id = $1 ORDER BY id", body["merchant"]["id"]
    )
    assert [r["action"] for r in created][:4] == [
        "merchant.create",
        "merchant.approve",
        "outlet.create",
        "terminal.create",
    ]


async def test_demo_owner_sees_the_demo_terminal(running: RunningPlatform) -> None:
    seeded = (await running.http.post("/admin/seed", headers=running.admin_headers)).json()
    owner = next(u for u in seeded["logins"] if u["kind"] == "merchant")
    token = (await login(running, "merchant", owner["email"], owner["password"])).json()["token"]
    terminals = await running.http.get("/merchant/terminals", headers={"Authorization": f"Bearer {token}"})
    assert [t["id"] for t in terminals.json()["items"]] == [seeded["terminal"]["id"]]
