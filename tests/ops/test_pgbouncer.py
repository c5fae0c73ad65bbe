"""The platform behind Debian's PgBouncer in transaction mode (docs/operations.md "Behind PgBouncer").

``DATABASE_URL`` goes through a real ``pgbouncer`` process (pool_mode = transaction, a server pool
smaller than the platform's, so server connections really are shared between its clients);
``DATABASE_LISTEN_URL`` goes straight to PostgreSQL for what holds a session (LISTEN, the migration
lock). The key flows run on it: a signed callback announced to the bound device over MQTT and acked,
an admin creating a merchant, an idempotent request replayed."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import msgspec
import pytest

from tests.devices.helpers import eventually, first_message
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, notification_status, subscribed
from tests.support import PlatformFactory, RunningPlatform, free_port
from tests.tools.helpers import run_cli

PGBOUNCER = "/usr/sbin/pgbouncer"
VIA_PGBOUNCER = "via-pgbouncer"  # the application_name PgBouncer's server connections carry
SERVER_POOL_SIZE = 4


def _pgbouncer_database(dsn: str) -> str:
    """The ``[databases]`` entry reaching ``dsn``'s database (Unix socket or TCP)."""
    parts = urlsplit(dsn)
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = query.get("host") or parts.hostname or "/tmp"
    port = query.get("port") or str(parts.port or 5432)
    user = unquote(parts.username or "") or query.get("user") or "postgres"
    password = unquote(parts.password or "") or query.get("password", "")
    entry = f"host={host} port={port} user={user} dbname={parts.path.lstrip('/')} application_name={VIA_PGBOUNCER}"
    return entry + (f" password={password}" if password else "")


@pytest.fixture(scope="module")
def pgbouncer(database_url: str) -> Iterator[str]:
    """A running pgbouncer in transaction mode in front of the module's database: its URL."""
    port = free_port()
    name = urlsplit(database_url).path.lstrip("/")
    # Not pytest's tmp_path: as root, pgbouncer runs as the embedded server's user, who must read its config.
    with tempfile.TemporaryDirectory(prefix="qris-pgbouncer-") as tmp:
        base = Path(tmp)
        config = base / "pgbouncer.ini"
        config.write_text(
            f"""[databases]
{name} = {_pgbouncer_database(database_url)}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = {SERVER_POOL_SIZE}
max_client_conn = 500
logfile = {base / "pgbouncer.log"}
"""
        )
        command = [PGBOUNCER, str(config)]
        if os.getuid() == 0:  # pgbouncer refuses to run as root
            user = "embedded_postgres" if _user_exists("embedded_postgres") else "postgres"
            base.chmod(0o755)
            shutil.chown(base, user)
            command = ["runuser", "-u", user, "--", *command]
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            url = f"postgresql://postgres@127.0.0.1:{port}/{name}"
            asyncio.run(_wait_until_it_answers(url, proc))
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


async def _wait_until_it_answers(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"pgbouncer exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            conn = await asyncpg.connect(url, statement_cache_size=0, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        await conn.close()
        return


@pytest.fixture
async def behind_pgbouncer(
    pgbouncer: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningPlatform]:
    factory = PlatformFactory(pgbouncer, tmp_path_factory.mktemp("pgbouncer-platform"))
    try:
        yield await factory.start(database_listen_url=database_url, database_statement_cache_size=0)
    finally:
        await factory.stop_all()


async def test_the_platform_runs_its_key_flows_through_pgbouncer_in_transaction_mode(
    behind_pgbouncer: RunningPlatform, database_url: str
) -> None:
    running = behind_pgbouncer
    # Admin: a merchant is created (and the rest of the onboarding) through the pooler.
    ids, device_id, secret = await bound_soundbox(running)

    # A signed callback; the bound device hears the announcement over MQTT (woken by NOTIFY on the
    # direct connection) and acks it.
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        result = (await post_callback(running, callback_body(amount=12_500, terminal_id=ids["terminal_id"]))).json()
        message = await first_message(device, timeout=10)
        assert message is not None and str(message.topic) == f"devices/{device_id}/downlink/payment"
        payload = msgspec.json.decode(message.payload)
        assert payload["transaction_id"] == result["transaction_id"] and payload["amount"] == 12_500
        await device.publish(
            f"devices/{device_id}/uplink/payment/ack", msgspec.json.encode({"message_id": payload["message_id"]}), qos=1
        )

        async def acked() -> bool:
            return await notification_status(running, result["transaction_id"]) == "acked"

        assert await eventually(acked, timeout=10)

    # Idempotent requests: the same key answers the first response again, concurrently too.
    headers = {**running.admin_headers, "Idempotency-Key": "pgbouncer-probe"}
    answers = await asyncio.gather(
        *(running.http.post("/admin/sample-idempotent", json={"n": 7}, headers=headers) for _ in range(5))
    )
    done = [a for a in answers if a.status_code == 201]
    assert done and all(a.status_code in (201, 409) for a in answers), [a.text for a in answers]
    again = await running.http.post("/admin/sample-idempotent", json={"n": 7}, headers=headers)
    assert again.status_code == 201 and again.json() == done[0].json()
    assert again.headers.get("idempotent-replayed") == "true"

    # The pooled work did go through PgBouncer, and what holds a session did not.
    direct = await asyncpg.connect(database_url)
    try:
        pooled = await direct.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1",
            VIA_PGBOUNCER,
        )
        listening = await direct.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name <> $1 AND query ILIKE 'LISTEN%'",
            VIA_PGBOUNCER,
        )
    finally:
        await direct.close()
    assert 0 < pooled <= SERVER_POOL_SIZE
    assert listening >= 1


async def test_migrate_through_pgbouncer_takes_its_lock_on_the_direct_connection(
    pgbouncer: str, database_url: str
) -> None:
    """The migration lock is a session lock: through a transaction-mode pooler its unlock could land on
    another server connection and leave it held. With DATABASE_LISTEN_URL it is taken directly."""
    env = {"DATABASE_URL": pgbouncer, "DATABASE_LISTEN_URL": database_url, "DATABASE_STATEMENT_CACHE_SIZE": "0"}
    for _ in range(2):
        code, _, err = await run_cli("migrate", env=env, timeout=60)
        assert code == 0, err
    direct = await asyncpg.connect(database_url)
    try:
        assert await direct.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == 0
    finally:
        await direct.close()
