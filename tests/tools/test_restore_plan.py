"""The database password never appears on a command line: not in the printed restore plan, not in the
arguments pg_dump / pg_restore run with (any local user can read those); it travels in PGPASSWORD."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

from qris_soundbox.tools.backup import client_target
from tests.tools.helpers import run_cli

PASSWORD = "s3cret-p@ss:word"


def _with_password(dsn: str) -> tuple[str, str]:
    """``dsn`` carrying a password (its own if it has one: an external test server may need it)."""
    parts = urlsplit(dsn)
    if parts.password:
        return dsn, unquote(parts.password)
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0] or "postgres"
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(PASSWORD, safe='')}@{host}")), PASSWORD


@pytest.mark.parametrize(
    ("dsn", "args", "password"),
    [
        (
            "postgresql://qris:s3cret%40pw@db.example:5432/qris?sslmode=require",
            ["--dbname=postgresql://qris@db.example:5432/qris?sslmode=require"],
            "s3cret@pw",
        ),
        (
            "postgresql://qris@db.example/qris?password=s3cret&sslmode=require",
            ["--dbname=postgresql://qris@db.example/qris?sslmode=require"],
            "s3cret",
        ),
        ("postgresql://postgres:@/qris?host=/tmp/pg", ["--dbname=postgresql://postgres@/qris?host=/tmp/pg"], None),
        (None, [], None),
    ],
)
def test_client_target_moves_the_password_to_pgpassword(dsn: str | None, args: list[str], password: str | None) -> None:
    target = client_target(dsn)
    assert target["args"] == args
    assert target["env"] == ({"PGPASSWORD": password} if password else {})


async def test_backup_and_restore_with_a_password_never_show_it(database_url: str, tmp_path: Path) -> None:
    dsn, password = _with_password(database_url)
    secrets = (password, quote(password, safe=""))

    code, out, err = await run_cli("backup", "--out", str(tmp_path), env={"DATABASE_URL": dsn})
    assert code == 0, err
    dump = next(tmp_path.glob("*.dump"))

    code, out, err = await run_cli("restore", "plan", "--backup", str(dump), env={"DATABASE_URL": dsn})
    assert code == 0, err
    assert "pg_restore" in out and "PGPASSWORD" in out
    assert not any(secret in out + err for secret in secrets)

    # --execute prints the very argument list it runs: still no password, and the restore works.
    code, out, err = await run_cli("restore", "plan", "--backup", str(dump), "--execute", env={"DATABASE_URL": dsn})
    assert code == 0, err
    assert "restore done" in out
    assert not any(secret in out + err for secret in secrets)
