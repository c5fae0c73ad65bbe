"""The acquirer registry: secrets write-only, masked, encrypted at rest; settings checked per protocol."""

from __future__ import annotations

import json

import asyncpg
import pytest
from cryptography.fernet import Fernet

from tests.acquirers.snap_client import new_key, public_pem
from tests.actors import logged_in
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import register_partner
from tests.support import SECRETS_ENCRYPTION_KEY, RunningPlatform

CLIENT_SECRET = "very-secret-hmac-key-42"


def snap_settings(client_key: str) -> dict[str, str]:
    return {"client_key": client_key, "public_key_pem": public_pem(new_key()), "client_secret": CLIENT_SECRET}


async def test_secrets_are_masked_in_answers_and_encrypted_at_rest(running: RunningPlatform) -> None:
    made = await running.http.post(
        "/admin/acquirers",
        json={"code": "reg-a", "name": "Bank A", "protocol": "snap", "settings": snap_settings("reg-a-key")},
        headers=running.admin_headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["settings"]["client_secret"] == "********"
    assert made.json()["settings"]["notify_signature"] == "symmetric"
    for answer in (
        await running.http.get("/admin/acquirers/reg-a", headers=running.admin_headers),
        await running.http.get("/admin/acquirers", headers=running.admin_headers),
    ):
        assert answer.status_code == 200
        assert CLIENT_SECRET not in answer.text
    row = await running.platform.db.pool.fetchrow("SELECT settings, secrets FROM acquirers WHERE code = 'reg-a'")
    assert CLIENT_SECRET.encode() not in bytes(row["secrets"]) and CLIENT_SECRET not in json.dumps(row["settings"])
    # Decrypted independently with the key from the environment.
    assert json.loads(Fernet(SECRETS_ENCRYPTION_KEY.encode()).decrypt(bytes(row["secrets"]))) == {
        "client_secret": CLIENT_SECRET
    }
    audit = await running.platform.db.pool.fetch(
        "SELECT payload::text AS p FROM audit_logs WHERE action LIKE 'acquirer.%'"
    )
    assert audit and all(CLIENT_SECRET not in r["p"] for r in audit)


async def test_patch_merges_settings_and_keeps_secrets(running: RunningPlatform) -> None:
    await running.http.post(
        "/admin/acquirers",
        json={"code": "reg-b", "name": "Bank B", "protocol": "snap", "settings": snap_settings("reg-b-key")},
        headers=running.admin_headers,
    )
    patched = await running.http.patch(
        "/admin/acquirers/reg-b",
        json={"settings": {"base_url": "http://127.0.0.1:9/api", "status_map": {"08": "expired"}}},
        headers=running.admin_headers,
    )
    assert patched.status_code == 200, patched.text
    settings = patched.json()["settings"]
    assert settings["base_url"] == "http://127.0.0.1:9/api" and settings["client_secret"] == "********"
    removed = await running.http.patch(
        "/admin/acquirers/reg-b", json={"settings": {"client_secret": None}}, headers=running.admin_headers
    )
    # Symmetric notifications need the secret: a PATCH cannot leave the acquirer unusable.
    assert removed.status_code == 400 and removed.json()["error"]["details"]["field"] == "settings.client_secret"


@pytest.mark.parametrize(
    ("protocol", "settings", "field"),
    [
        ("snap", {"client_key": "x-key"}, "settings.public_key_pem"),
        ("snap", {"client_key": "y-key", "public_key_pem": "nope", "client_secret": "s"}, "settings.public_key_pem"),
        ("snap", {"client_key": "z-key", "public_key_pem": "@", "notify_signature": "both"}, "settings.public_key_pem"),
        ("midtrans", {}, "settings.server_key"),
        ("xendit", {"server_key": "abc"}, "settings.server_key"),
        ("doku", {"secret_key": "abc"}, "settings.client_id"),
    ],
)
async def test_settings_checked_per_protocol(
    running: RunningPlatform, protocol: str, settings: dict[str, str], field: str
) -> None:
    answer = await running.http.post(
        "/admin/acquirers",
        json={"code": f"bad-{protocol}", "name": "Bad", "protocol": protocol, "settings": settings},
        headers=running.admin_headers,
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["details"]["field"] == field
    assert (
        await running.platform.db.pool.fetchval("SELECT count(*) FROM acquirers WHERE code = $1", f"bad-{protocol}")
        == 0
    )


async def test_client_key_names_one_acquirer(running: RunningPlatform) -> None:
    first = {"code": "dup-1", "name": "One", "protocol": "snap", "settings": snap_settings("shared-key")}
    assert (await running.http.post("/admin/acquirers", json=first, headers=running.admin_headers)).status_code == 201
    second = first | {"code": "dup-2"}
    answer = await running.http.post("/admin/acquirers", json=second, headers=running.admin_headers)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "acquirer_taken"


async def test_a_partners_client_key_is_refused(running: RunningPlatform) -> None:
    """The token endpoint tells a partner from an acquirer by X-CLIENT-KEY, so one key names one party."""
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    body = {"code": "pk-1", "name": "One", "protocol": "snap", "settings": snap_settings(partner.client_key)}
    answer = await running.http.post("/admin/acquirers", json=body, headers=running.admin_headers)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "acquirer_taken"
    assert answer.json()["error"]["details"] == {"field": "settings.client_key"}
    made = body | {"settings": snap_settings("pk-own-key")}
    assert (await running.http.post("/admin/acquirers", json=made, headers=running.admin_headers)).status_code == 201
    moved = await running.http.patch(
        "/admin/acquirers/pk-1", json={"settings": {"client_key": partner.client_key}}, headers=running.admin_headers
    )
    assert moved.status_code == 409 and moved.json()["error"]["code"] == "acquirer_taken", moved.text
    # And the database holds it past the service's check (two registrations at once).
    async with running.platform.db.transaction() as conn:
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "UPDATE acquirers SET settings = settings || jsonb_build_object('client_key', $1::text)"
                " WHERE code = 'pk-1'",
                partner.client_key,
            )


async def test_only_acquirer_manage_may_see_the_registry(running: RunningPlatform) -> None:
    viewer = await logged_in(running, "admin", "viewer")
    assert (await running.http.get("/admin/acquirers", headers=viewer.headers)).status_code == 403
