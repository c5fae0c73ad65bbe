"""The partner registry: admin API, secrets shown once and encrypted at rest, rotation with overlap, CLI."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.actors import logged_in
from tests.onboarding import onboarded_terminal
from tests.partners.helpers import GENERATE, new_rsa_key, register_partner
from tests.support import SECRETS_ENCRYPTION_KEY, RunningPlatform


async def test_the_secret_is_shown_once_and_encrypted_at_rest(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    assert len(partner.client_secret) >= 32
    shown = (await running.http.get(f"/admin/partners/{partner.id}", headers=running.admin_headers)).json()
    assert "client_secret" not in shown and shown["merchant_ids"] == [ids["merchant_id"]]
    listed = (await running.http.get("/admin/partners", headers=running.admin_headers)).json()
    assert partner.id in [item["id"] for item in listed["items"]]
    assert partner.client_secret not in str(listed)
    async with running.platform.db.transaction() as conn:
        row = await conn.fetchrow("SELECT * FROM partners WHERE id = $1", partner.id)
    assert partner.client_secret.encode() not in b"".join(
        value if isinstance(value, bytes) else str(value).encode() for value in dict(row).values()
    )


async def test_bad_registrations_are_refused(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    _, pem = new_rsa_key()
    good = {"name": "P", "client_key": "k-new", "public_key_pem": pem, "notify_url": "https://pos.example/n"}
    for change, code in (
        ({"public_key_pem": "not a key"}, "validation_error"),
        ({"merchant_ids": ["mer_unknown"]}, "validation_error"),
        ({"client_key": partner.client_key}, "client_key_taken"),
        ({"notify_url": "ftp://x"}, "validation_error"),
        ({"secret": "x"}, "validation_error"),
    ):
        answer = await running.http.post("/admin/partners", json=good | change, headers=running.admin_headers)
        assert answer.status_code in (400, 409) and answer.json()["error"]["code"] == code, (change, answer.text)


async def test_only_admins_manage_partners(running: RunningPlatform) -> None:
    for role in ("finance", "ops", "viewer"):
        client = await logged_in(running, "admin", role)
        answer = await running.http.get("/admin/partners", headers=client.headers)
        assert answer.status_code == 403, (role, answer.text)


async def test_rotation_keeps_the_old_secret_during_the_overlap_only(running: RunningPlatform) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    partner = await register_partner(running, [ids["merchant_id"]])
    old = partner.client_secret
    rotated = await running.http.post(
        f"/admin/partners/{partner.id}/rotate-secret", json={"overlap_seconds": 3600}, headers=running.admin_headers
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["client_secret"]
    assert new != old and rotated.json()["previous_secret_until"]
    body = {
        "partnerReferenceNo": "ROT",
        "amount": {"value": "1000.00", "currency": "IDR"},
        "merchantId": ids["merchant_id"],
        "terminalId": ids["terminal_id"],
    }
    assert (await partner.call(GENERATE, body, secret=old)).status_code == 200
    assert (await partner.call(GENERATE, body, secret=new)).status_code == 200
    again = await running.http.post(
        f"/admin/partners/{partner.id}/rotate-secret", json={"overlap_seconds": 0}, headers=running.admin_headers
    )
    newest = again.json()["client_secret"]
    refused = await partner.call(GENERATE, body, secret=new)
    assert (refused.status_code, refused.json()["responseCode"]) == (401, "4014700")
    assert (await partner.call(GENERATE, body, secret=newest)).status_code == 200


async def test_the_cli_adds_lists_and_rotates(running: RunningPlatform, tmp_path: Path) -> None:
    ids = await onboarded_terminal(running, qris_ready=True)
    _, pem = new_rsa_key()
    (tmp_path / "partner.pem").write_text(pem)
    env = os.environ | {
        "DATABASE_URL": running.platform.settings.database_url or "",
        "SECRETS_ENCRYPTION_KEY": SECRETS_ENCRYPTION_KEY,
        "LOG_LEVEL": "WARNING",
    }

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "qris_soundbox.tools.cli",
            "partner",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await cli(
        "add",
        "--name",
        "Kasir CLI",
        "--client-key",
        "cli-pos",
        "--public-key",
        str(tmp_path / "partner.pem"),
        "--notify-url",
        "https://pos.example/notify",
        "--merchant",
        ids["merchant_id"],
    )
    assert code == 0, err
    partner_id, secret = out.split()[1], out.strip().splitlines()[-1]
    assert len(secret) >= 32
    code, out, _ = await cli("list")
    assert code == 0 and "cli-pos" in out and secret not in out
    code, out, _ = await cli("rotate-secret", partner_id, "--overlap-seconds", "60")
    assert code == 0 and out.strip().splitlines()[-1] != secret
    code, _, err = await cli(
        "add",
        "--name",
        "x",
        "--client-key",
        "k2",
        "--public-key",
        "/nonexistent",
        "--notify-url",
        "https://x.example/n",
    )
    assert code != 0 and "public-key" in err
