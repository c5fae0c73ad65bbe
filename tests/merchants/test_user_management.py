"""User management over the API (the console's users page): invite, role, disable, reset password, for
admin users and merchant users; admins only, audited, the temporary password only in the answer."""

from __future__ import annotations

from tests.actors import logged_in, login, unique
from tests.onboarding import onboarded_terminal
from tests.support import RunningPlatform


async def test_an_invited_admin_logs_in_changes_role_is_disabled_and_reset(running: RunningPlatform) -> None:
    admin = await logged_in(running, "admin", "admin")
    email = f"{unique('invited')}@admin.test"
    invited = await running.http.post(
        "/admin/admin-users", json={"email": email, "name": "Sari Ops", "role": "ops"}, headers=admin.headers
    )
    assert invited.status_code == 201, invited.text
    body = invited.json()
    user_id, temporary = body["user"]["id"], body["temporary_password"]
    assert len(temporary) >= 20 and body["user"]["role"] == "ops"
    async with running.platform.db.transaction() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM admin_users WHERE id = $1", user_id)
    assert stored.startswith("$argon2id$") and temporary not in stored

    first = await login(running, "admin", email, temporary)
    assert first.status_code == 200, first.text
    their_token = {"Authorization": f"Bearer {first.json()['token']}"}
    listed = await running.http.get("/admin/admin-users", params={"q": email[:8]}, headers=admin.headers)
    assert [user["email"] for user in listed.json()["items"]] == [email]

    promoted = await running.http.patch(
        f"/admin/admin-users/{user_id}", json={"role": "finance"}, headers=admin.headers
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "finance"
    disabled = await running.http.patch(
        f"/admin/admin-users/{user_id}", json={"status": "disabled"}, headers=admin.headers
    )
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    # Disabling ends the session at once, and the password no longer logs in.
    assert (await running.http.get("/admin/merchants", headers=their_token)).status_code == 401
    assert (await login(running, "admin", email, temporary)).status_code == 401

    await running.http.patch(f"/admin/admin-users/{user_id}", json={"status": "active"}, headers=admin.headers)
    reset = await running.http.post(f"/admin/admin-users/{user_id}/reset-password", headers=admin.headers)
    assert reset.status_code == 200, reset.text
    assert (await login(running, "admin", email, temporary)).status_code == 401
    assert (await login(running, "admin", email, reset.json()["temporary_password"])).status_code == 200

    audit = await running.http.get("/admin/audit-logs", params={"entity_id": user_id}, headers=admin.headers)
    actions = [entry["action"] for entry in audit.json()["items"]]
    assert {"admin_user.create", "admin_user.update", "admin_user.password_rotate"} <= set(actions), actions
    # The audit keeps what changed, never the password.
    assert all(reset.json()["temporary_password"] not in str(entry) for entry in audit.json()["items"])


async def test_no_one_locks_themselves_out_and_only_admins_manage_users(running: RunningPlatform) -> None:
    admin = await logged_in(running, "admin", "admin")
    for change in ({"status": "disabled"}, {"role": "viewer"}):
        refused = await running.http.patch(f"/admin/admin-users/{admin.user_id}", json=change, headers=admin.headers)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "own_account", change
    finance = await logged_in(running, "admin", "finance")
    assert (await running.http.get("/admin/admin-users", headers=finance.headers)).status_code == 403
    assert (
        await running.http.post(f"/admin/admin-users/{admin.user_id}/reset-password", headers=finance.headers)
    ).status_code == 403
    bad_role = await running.http.post(
        "/admin/admin-users", json={"email": "x@admin.test", "name": "X", "role": "owner"}, headers=admin.headers
    )
    assert bad_role.status_code == 400 and bad_role.json()["error"]["details"] == {"field": "role"}
    unknown = await running.http.patch(
        "/admin/admin-users/usr_01M98HKHF45QJ9T4ME6ZNZTXT2", json={"role": "ops"}, headers=admin.headers
    )
    assert unknown.status_code == 404


async def test_merchant_users_are_invited_for_a_merchant_and_listed_with_its_name(running: RunningPlatform) -> None:
    admin = await logged_in(running, "admin", "admin")
    ids = await onboarded_terminal(running, merchant_name="Warung Pengguna")
    email = f"{unique('kasir')}@merchant.test"
    missing = await running.http.post(
        "/admin/merchant-users", json={"email": email, "name": "Kasir", "role": "ops"}, headers=admin.headers
    )
    assert missing.status_code == 400 and missing.json()["error"]["details"] == {"field": "merchant_id"}
    nowhere = await running.http.post(
        "/admin/merchant-users",
        json={"email": email, "name": "Kasir", "role": "ops", "merchant_id": "mer_01M98HKHF45QJ9T4ME6ZNZTXT2"},
        headers=admin.headers,
    )
    assert nowhere.status_code == 404
    invited = await running.http.post(
        "/admin/merchant-users",
        json={"email": email, "name": "Kasir", "role": "ops", "merchant_id": ids["merchant_id"]},
        headers=admin.headers,
    )
    assert invited.status_code == 201, invited.text
    again = await running.http.post(
        "/admin/merchant-users",
        json={"email": email.upper(), "name": "Kasir", "role": "ops", "merchant_id": ids["merchant_id"]},
        headers=admin.headers,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "user_exists"
    listed = await running.http.get(
        "/admin/merchant-users", params={"merchant_id": ids["merchant_id"]}, headers=admin.headers
    )
    assert [(u["email"], u["merchant_name"]) for u in listed.json()["items"]] == [(email, "Warung Pengguna")]
    merchant_login = await login(running, "merchant", email, invited.json()["temporary_password"])
    assert merchant_login.status_code == 200
    owner_role = await running.http.patch(
        f"/admin/merchant-users/{invited.json()['user']['id']}", json={"role": "viewer"}, headers=admin.headers
    )
    assert owner_role.status_code == 200 and owner_role.json()["role"] == "viewer"
