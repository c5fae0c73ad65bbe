"""Every CLI error is one sentence: run as cron or CI runs it (stdin a pipe, no terminal), with bad
input, the command says what is wrong in one line on stderr and exits 1, never a Python traceback."""

from __future__ import annotations

import asyncpg
import pytest

from tests.actors import PASSWORD, unique
from tests.tools.helpers import run_cli

NO_SECRETS = {"ADMIN_TOKEN": "", "INTEGRATION_WEBHOOK_SECRET": "", "DEVICE_SECRET": ""}
UNREACHABLE = "postgresql://qris:not-this-one@127.0.0.1:1/qris"


def one_sentence(code: int, err: str) -> str:
    assert code == 1, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qris-soundbox: "), err
    return lines[0]


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    """``env`` with these variables unset in the child (run_cli merges over os.environ; "" is still set)."""
    import os

    return {k: v for k, v in ({**os.environ, **env}).items() if k not in names}


@pytest.mark.parametrize(
    "args",
    [
        ["merchant", "create-user", "--merchant", "M1", "--email", "o@example.id", "--name", "O", "--role", "owner"],
        ["admin", "create-user", "--email", "a@example.id", "--name", "A", "--role", "ops"],
    ],
)
async def test_a_password_prompt_without_a_terminal_names_the_other_ways(args: list[str]) -> None:
    code, _, err = await run_cli(*args, env={"DATABASE_URL": UNREACHABLE})
    assert "no terminal" in one_sentence(code, err) and "--password-stdin" in err


async def test_password_stdin_creates_the_user(database_url: str) -> None:
    email = f"{unique('ops')}@example.id"
    args = ["admin", "create-user", "--email", email, "--name", "Ops", "--role", "ops", "--password-stdin"]
    code, out, err = await run_cli(*args, env={"DATABASE_URL": database_url}, stdin=f"{PASSWORD}\n".encode())
    assert code == 0, err
    assert f"created admin user {email}" in out and PASSWORD not in out + err
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM admin_users WHERE email = $1", email) == 1
    finally:
        await conn.close()
    # Nothing on standard input is an empty password, said so.
    code, _, err = await run_cli(*args, env={"DATABASE_URL": database_url})
    assert "the password is empty" in one_sentence(code, err)


async def test_smoke_says_the_admin_token_is_empty_and_asks_for_the_webhook_secret_by_flag() -> None:
    code, _, err = await run_cli("smoke", "--base-url", "http://127.0.0.1:1", env={"ADMIN_TOKEN": " "})
    assert one_sentence(code, err) == "qris-soundbox: the admin token is empty"
    code, _, err = await run_cli("smoke", "--base-url", "http://127.0.0.1:1", "--admin-token", "")
    assert one_sentence(code, err) == "qris-soundbox: the admin token is empty"

    env = without({"ADMIN_TOKEN": "t0ken"}, "INTEGRATION_WEBHOOK_SECRET")
    code, _, err = await run_cli("smoke", "--base-url", "http://127.0.0.1:1", env=env)
    line = one_sentence(code, err)
    assert "the webhook secret" in line and "no terminal" in line and "--webhook-secret-stdin" in line
    code, _, err = await run_cli("smoke", "--base-url", "http://127.0.0.1:1", "--webhook-secret-stdin", env=env)
    assert "the webhook secret is empty" in one_sentence(code, err)


async def test_the_other_prompts_without_a_terminal() -> None:
    env = without({}, "ADMIN_TOKEN", "DEVICE_SECRET")
    code, _, err = await run_cli("simulate", "--device-id", "dev_1", "--base-url", "http://127.0.0.1:1", env=env)
    assert "--secret" in one_sentence(code, err) and "DEVICE_SECRET" in err
    code, _, err = await run_cli("loadtest", "--base-url", "http://127.0.0.1:1", env=env)
    assert "--admin-token" in one_sentence(code, err)


@pytest.mark.parametrize(
    "args",
    [
        ["migrate"],
        ["seed"],
        ["backup", "--out", "/nonexistent-dir-qris/b"],
        ["admin", "create-user", "--email", "a@example.id", "--name", "A", "--role", "ops", "--password-stdin"],
    ],
)
async def test_an_unreachable_database_is_a_sentence_with_no_password_in_it(args: list[str]) -> None:
    code, _, err = await run_cli(*args, env={"DATABASE_URL": UNREACHABLE}, stdin=f"{PASSWORD}\n".encode())
    line = one_sentence(code, err)
    assert "cannot connect to PostgreSQL at 127.0.0.1:1/qris" in line and "not-this-one" not in line
