"""Logins, tokens, logout and the merchant profile through the real HTTP API."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from tests.merchants.conftest import (
    PASSWORD,
    audit_rows,
    bearer,
    create_user,
    logged_in,
    login,
    new_merchant,
    unique,
)
from tests.support import PlatformFactory, RunningPlatform


async def test_admin_login_returns_an_expiring_token_that_authorizes(running: RunningPlatform) -> None:
    email, user_id = await create_user(running, "admin", "ops")
    response = await login(running, "admin", email.upper())  # emails are case-insensitive
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"token", "expires_at", "user"}
    assert body["token"].startswith("qsa_") and len(body["token"]) >= 40
    assert body["expires_at"].endswith("Z")
    assert body["user"] | {"last_login_at": None, "created_at": None} == {
        "id": user_id,
        "kind": "admin",
        "email": email,
        "name": "ops user",
        "role": "ops",
        "merchant_id": None,
        "status": "active",
        "last_login_at": None,
        "created_at": None,
        "merchant_name": None,
    }
    assert "password" not in response.text and "argon2" not in response.text
    listed = await running.http.get("/admin/merchants", headers=bearer(body["token"]))
    assert listed.status_code == 200


async def test_only_the_token_hash_and_an_argon2id_hash_are_stored(running: RunningPlatform) -> None:
    client = await logged_in(running, "admin", "viewer")
    db = running.platform.db
    stored = await db.pool.fetchrow("SELECT * FROM auth_tokens WHERE user_id = $1", client.user_id)
    assert bytes(stored["token_sha256"]) == hashlib.sha256(client.token.encode()).digest()
    assert client.token not in str(dict(stored))
    user = await db.pool.fetchrow("SELECT password_hash FROM admin_users WHERE id = $1", client.user_id)
    assert user["password_hash"].startswith("$argon2id$")
    dump = await db.pool.fetchval("SELECT string_agg(payload::text, ' ') FROM audit_logs")
    assert PASSWORD not in dump and client.token not in dump


async def test_logins_are_audited_success_and_failure(running: RunningPlatform) -> None:
    email, user_id = await create_user(running, "admin", "finance")
    assert (await login(running, "admin", email, "wrong password!")).status_code == 401
    assert (await login(running, "admin", "nobody@admin.test", PASSWORD)).status_code == 401
    assert (await login(running, "admin", email)).status_code == 200

    failed = await audit_rows(running, action="admin.login.failed")
    mine = [r for r in failed if r["payload"]["email"] in (email, "nobody@admin.test")]
    assert sorted(r["payload"]["reason"] for r in mine) == ["unknown_email", "wrong_password"]
    assert all(r["ip"] == "127.0.0.1" and r["request_id"] for r in mine)
    assert all("password" not in r["payload"] for r in mine)
    success = [r for r in await audit_rows(running, action="admin.login.success") if r["entity_id"] == user_id]
    assert len(success) == 1
    assert success[0]["actor_id"] == user_id and success[0]["actor_role"] == "finance"


async def test_wrong_password_and_unknown_email_look_the_same(running: RunningPlatform) -> None:
    email, _ = await create_user(running, "admin", "viewer")
    wrong = await login(running, "admin", email, "wrong password!")
    unknown = await login(running, "admin", "ghost@admin.test", "wrong password!")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]
    assert wrong.json()["error"]["code"] == "unauthorized"


async def test_merchant_login_and_profile(running: RunningPlatform) -> None:
    merchant = await new_merchant(running, approve=True)
    client = await logged_in(running, "merchant", "owner", merchant["id"])
    assert client.token.startswith("qsm_")
    profile = await running.http.get("/merchant/profile", headers=client.headers)
    assert profile.status_code == 200, profile.text
    assert profile.json()["merchant"]["id"] == merchant["id"]
    assert profile.json()["user"]["merchant_id"] == merchant["id"]
    assert profile.json()["user"]["role"] == "owner"
    rows = await audit_rows(running, action="merchant.login.success", merchant_id=merchant["id"])
    assert len(rows) == 1 and rows[0]["actor_type"] == "merchant"
    # An admin login is not a merchant login, and the other way round.
    assert (await login(running, "admin", client.email)).status_code == 401
    failed = await audit_rows(running, action="admin.login.failed")
    assert any(r["payload"]["email"] == client.email for r in failed)


async def test_logout_revokes_the_token(running: RunningPlatform) -> None:
    admin = await logged_in(running, "admin", "support")
    other = await login(running, "admin", admin.email)  # a second session of the same user
    assert (await running.http.get("/admin/merchants", headers=admin.headers)).status_code == 200
    out = await running.http.post("/admin/logout", headers=admin.headers)
    assert out.status_code == 200 and out.json() == {"revoked": True}
    after = await running.http.get("/admin/merchants", headers=admin.headers)
    assert after.status_code == 401 and after.json()["error"]["code"] == "unauthorized"
    assert (await running.http.post("/admin/logout", headers=admin.headers)).status_code == 401
    # Only that session ends.
    assert (await running.http.get("/admin/merchants", headers=bearer(other.json()["token"]))).status_code == 200
    rows = await audit_rows(running, action="admin.logout", actor_id=admin.user_id)
    assert len(rows) == 1

    merchant = await new_merchant(running)
    owner = await logged_in(running, "merchant", "viewer", merchant["id"])
    assert (await running.http.post("/merchant/logout", headers=owner.headers)).json() == {"revoked": True}
    assert (await running.http.get("/merchant/profile", headers=owner.headers)).status_code == 401


async def test_static_admin_token_logout_revokes_nothing(running: RunningPlatform) -> None:
    out = await running.http.post("/admin/logout", headers=running.admin_headers)
    assert out.status_code == 200 and out.json() == {"revoked": False}
    assert (await running.http.get("/admin/merchants", headers=running.admin_headers)).status_code == 200


async def test_tokens_expire(platform_factory: PlatformFactory) -> None:
    # The TTL is applied, then time is moved in the table: a real 1 s TTL raced a loaded machine's first request.
    short = await platform_factory.start(auth_token_ttl_seconds=600)
    try:
        email, _ = await create_user(short, "admin", "viewer")
        answer = (await login(short, "admin", email)).json()
        token = answer["token"]
        lifetime = datetime.fromisoformat(answer["expires_at"]) - datetime.now(UTC)
        assert timedelta(seconds=500) < lifetime <= timedelta(seconds=600)
        assert (await short.http.get("/admin/merchants", headers=bearer(token))).status_code == 200
        await short.platform.db.pool.execute(
            "UPDATE auth_tokens SET expires_at = now() - interval '1 second' WHERE token_sha256 = $1",
            hashlib.sha256(token.encode()).digest(),
        )
        expired = await short.http.get("/admin/merchants", headers=bearer(token))
        assert expired.status_code == 401 and expired.json()["error"]["code"] == "unauthorized"
    finally:
        await platform_factory.stop(short)


async def test_disabled_user_can_neither_log_in_nor_use_a_token(running: RunningPlatform) -> None:
    client = await logged_in(running, "admin", "viewer")
    await running.platform.db.pool.execute("UPDATE admin_users SET status = 'disabled' WHERE id = $1", client.user_id)
    assert (await running.http.get("/admin/merchants", headers=client.headers)).status_code == 401
    refused = await login(running, "admin", client.email)
    assert refused.status_code == 401
    rows = await audit_rows(running, action="admin.login.failed", entity_id=client.user_id)
    assert rows[0]["payload"]["reason"] == "user_disabled"


async def test_bad_bearer_tokens_are_unauthorized(running: RunningPlatform) -> None:
    for header in ("Bearer qsa_not-a-token", "Bearer qsm_", "Bearer " + "x" * 500, "Basic abc", "Bearer"):
        response = await running.http.get("/admin/merchants", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_login_bodies_are_validated(running: RunningPlatform) -> None:
    for body in ({"email": "a@b.c"}, {"email": 1, "password": "x"}, {"email": "a@b.c", "password": "x", "otp": 1}):
        response = await running.http.post("/admin/login", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "validation_error"


async def test_wrong_password_logins_are_rate_limited_per_ip_and_email(platform_factory: PlatformFactory) -> None:
    limited = await platform_factory.start(rate_limit_login_max=3)
    try:
        email, _ = await create_user(limited, "admin", "viewer")
        statuses = [(await login(limited, "admin", email, "wrong password!")).status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        blocked = await login(limited, "admin", email)  # even the right password, once over the limit
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(blocked.headers["retry-after"]) <= 60
        # Another email from the same address has its own budget.
        other, _ = await create_user(limited, "admin", "viewer")
        assert (await login(limited, "admin", other)).status_code == 200
        # Every attempt that reached the password check was audited; the blocked one did not reach it.
        failed = [r for r in await audit_rows(limited, action="admin.login.failed") if r["payload"]["email"] == email]
        assert len(failed) == 3
        assert (await login(limited, "merchant", unique("m") + "@x.test", "whatever!!")).status_code == 401
    finally:
        await platform_factory.stop(limited)
