"""``qris-soundbox admin|merchant create-user`` and ``seed``: the real command against the module's database."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.merchants.conftest import login, new_merchant, unique
from tests.support import RunningPlatform

CLI = str(Path(sys.executable).with_name("qris-soundbox"))


async def run_cli(running: RunningPlatform, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env |= {"DATABASE_URL": running.platform.settings.database_url or "", "LOG_LEVEL": "WARNING"}
    proc = await asyncio.create_subprocess_exec(
        CLI,
        *args,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # no terminal: getpass reads stdin
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout=60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_admin_create_user_then_login(running: RunningPlatform) -> None:
    email = f"{unique('cli')}@admin.test"
    code, out, err = await run_cli(
        running,
        "admin",
        "create-user",
        "--email",
        email,
        "--name",
        "Finance Ops",
        "--role",
        "finance",
        "--password",
        "ganti-dengan-password-kuat",
    )
    assert code == 0, err
    assert f"created admin user {email} (finance)" in out
    response = await login(running, "admin", email, "ganti-dengan-password-kuat")
    assert response.status_code == 200 and response.json()["user"]["role"] == "finance"
    audited = await running.platform.db.pool.fetchrow(
        "SELECT * FROM audit_logs WHERE action = 'admin_user.create' AND payload->>'email' = $1", email
    )
    assert audited["actor_type"] == "system" and audited["actor_id"] == "cli"
    assert "ganti-dengan" not in str(dict(audited))


async def test_existing_user_needs_rotate_password_which_ends_sessions(running: RunningPlatform) -> None:
    email = f"{unique('cli')}@admin.test"
    args = ["admin", "create-user", "--email", email, "--name", "Ops", "--role", "ops"]
    assert (await run_cli(running, *args, "--password", "first-password-1"))[0] == 0
    token = (await login(running, "admin", email, "first-password-1")).json()["token"]

    code, _, err = await run_cli(running, *args, "--password", "second-password-2")
    assert code != 0 and "--rotate-password" in err
    code, out, err = await run_cli(running, *args, "--password", "second-password-2", "--rotate-password")
    assert code == 0, err
    assert "password rotated" in out
    assert (await login(running, "admin", email, "first-password-1")).status_code == 401
    assert (await login(running, "admin", email, "second-password-2")).status_code == 200
    old_session = await running.http.get("/admin/merchants", headers={"Authorization": f"Bearer {token}"})
    assert old_session.status_code == 401


async def test_merchant_create_user_by_code_with_prompted_password(running: RunningPlatform) -> None:
    merchant = await new_merchant(running, approve=True)
    email = f"{unique('owner')}@merchant.test"
    code, out, err = await run_cli(
        running,
        "merchant",
        "create-user",
        "--merchant",
        merchant["code"].lower(),
        "--email",
        email,
        "--name",
        "Merchant Owner",
        "--role",
        "owner",
        stdin="prompted-password-9\nprompted-password-9\n",
    )
    assert code == 0, err
    assert merchant["id"] in out
    response = await login(running, "merchant", email, "prompted-password-9")
    assert response.status_code == 200 and response.json()["user"]["merchant_id"] == merchant["id"]


async def test_cli_refuses_bad_input_with_one_line(running: RunningPlatform) -> None:
    cases = [
        (
            [
                "merchant",
                "create-user",
                "--merchant",
                "M999999",
                "--email",
                "a@b.test",
                "--name",
                "X",
                "--role",
                "owner",
                "--password",
                "long-enough-pw",
            ],
            "no merchant",
        ),
        (
            ["admin", "create-user", "--email", "a@b.test", "--name", "X", "--role", "admin", "--password", "short"],
            "at least 10",
        ),
        (
            [
                "admin",
                "create-user",
                "--email",
                "not-an-email",
                "--name",
                "X",
                "--role",
                "admin",
                "--password",
                "long-enough-pw",
            ],
            "email",
        ),
    ]
    for args, expected in cases:
        code, _, err = await run_cli(running, *args)
        assert code != 0 and expected in err, err
        assert "Traceback" not in err
    code, _, err = await run_cli(
        running,
        "admin",
        "create-user",
        "--email",
        "a@b.test",
        "--name",
        "X",
        "--role",
        "owner",
        "--password",
        "long-enough-pw",
    )
    assert code == 2 and "invalid choice" in err  # merchant role for an admin
    code, _, err = await run_cli(
        running,
        "admin",
        "create-user",
        "--email",
        "a@b.test",
        "--name",
        "X",
        "--role",
        "admin",
        stdin="one-password-1\nanother-password\n",
    )
    assert code != 0 and "differ" in err


async def test_seed_command_is_idempotent(running: RunningPlatform) -> None:
    code, first, err = await run_cli(running, "seed")
    assert code == 0, err
    code, second, err = await run_cli(running, "seed")
    assert code == 0, err
    assert "created: nothing" in second
    assert "admin@demo.qris.local" in second and "demo-admin-password" in second
