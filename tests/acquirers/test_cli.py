"""``qris-soundbox acquirer add|list|set|rotate-secrets`` as a real process on a real database."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
from cryptography.fernet import Fernet

from tests.support import SECRETS_ENCRYPTION_KEY


def cli(
    database_url: str, *args: str, key: str = SECRETS_ENCRYPTION_KEY, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": database_url, "SECRETS_ENCRYPTION_KEY": key, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "qris_soundbox.tools.cli", "acquirer", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


async def test_add_list_set_and_rotate(database_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "server_key"
    secret.write_text("SB-Mid-server-abcdef")
    made = cli(
        database_url,
        "add",
        "--code",
        "mid-cli",
        "--name",
        "Midtrans",
        "--protocol",
        "midtrans",
        "--secret-file",
        f"server_key={secret}",
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["settings"] == {"server_key": "********"}
    assert "SB-Mid-server-abcdef" not in made.stdout + made.stderr
    listed = cli(database_url, "list")
    assert listed.returncode == 0 and "mid-cli\tmidtrans\tMidtrans" in listed.stdout
    renamed = cli(database_url, "set", "mid-cli", "--name", "Midtrans ID")
    assert renamed.returncode == 0 and json.loads(renamed.stdout)["name"] == "Midtrans ID"
    refused = cli(database_url, "add", "--code", "x", "--name", "X", "--protocol", "xendit")
    assert refused.returncode != 0 and "callback_token" in refused.stderr

    # A partner's secrets share the key: the same command must re-encrypt them, or dropping the old key breaks it.
    old = Fernet(SECRETS_ENCRYPTION_KEY.encode())
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO partners (id, name, client_key, public_key_pem, client_secret_enc, previous_secret_enc,"
            " previous_secret_until, notify_url)"
            " VALUES ('ptn_cli', 'POS', 'pos-cli', 'unused', $1, $2, now() + interval '1 hour', 'http://pos.test')",
            old.encrypt(b'{"client_secret":"now"}'),
            old.encrypt(b'{"client_secret":"before"}'),
        )
    finally:
        await conn.close()
    new_key = Fernet.generate_key().decode()
    rotated = cli(database_url, "rotate-secrets", key=f"{new_key},{SECRETS_ENCRYPTION_KEY}")
    assert rotated.returncode == 0, rotated.stderr
    conn = await asyncpg.connect(database_url)
    try:
        sealed = await conn.fetchval("SELECT secrets FROM acquirers WHERE code = 'mid-cli'")
        partner = await conn.fetchrow(
            "SELECT client_secret_enc, previous_secret_enc FROM partners WHERE id = 'ptn_cli'"
        )
    finally:
        await conn.close()
    # Only the new key opens them now; the old one can be dropped.
    new = Fernet(new_key.encode())
    assert json.loads(new.decrypt(bytes(sealed))) == {"server_key": "SB-Mid-server-abcdef"}
    assert json.loads(new.decrypt(bytes(partner["client_secret_enc"]))) == {"client_secret": "now"}
    assert json.loads(new.decrypt(bytes(partner["previous_secret_enc"]))) == {"client_secret": "before"}
    assert "1 partner(s)" in rotated.stdout
    after = cli(database_url, "set", "mid-cli", "--name", "Midtrans", key=new_key)
    assert after.returncode == 0, after.stderr


async def test_demo_registers_with_the_key_serve_demo_reads(database_url: str) -> None:
    """make run's platform encrypts with a public development key; `--demo` makes the CLI use the same one."""
    args = ("add", "--code", "xen-demo", "--name", "Xendit", "--protocol", "xendit", "--secret", "callback_token")
    without = cli(database_url, *args, key="", stdin="xnd-token-123\n")
    assert without.returncode != 0 and "SECRETS_ENCRYPTION_KEY" in without.stderr
    assert "Traceback" not in without.stderr
    made = cli(database_url, *args, "--demo", key="", stdin="xnd-token-123\n")
    assert made.returncode == 0, made.stderr
    conn = await asyncpg.connect(database_url)
    try:
        sealed = await conn.fetchval("SELECT secrets FROM acquirers WHERE code = 'xen-demo'")
    finally:
        await conn.close()
    # The development key, derived here from its documented bytes (core/demo.py says which).
    demo_key = base64.urlsafe_b64encode(b"qris-soundbox-dev-secrets-key-32")
    assert json.loads(Fernet(demo_key).decrypt(bytes(sealed))) == {"callback_token": "xnd-token-123"}
