"""An ``Idempotency-Key`` whose holder is killed (SIGKILL) between the claim and the response.

Two ``serve`` processes share the test database. The first takes a keyed
``POST /admin/merchants`` and is held between claim and write deterministically:
the test locks the ``merchants`` table against inserts and waits until the
request has claimed its key (its write cannot happen while the lock is held). Then the holder is
SIGKILLed. The retry, on the other node, must go through within seconds (the
claim is a lease that nobody renews any more), write the merchant once, and
the stored answer must be replayed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from litestar import post

from qris_soundbox.control_plane.app import create_app
from tests.devices.helpers import eventually
from tests.serve_process import Serve
from tests.support import ADMIN_TOKEN, RunningPlatform, serve_app

LEASE_S = 2
# The lease plus generous room for a loaded machine; the TTL (24 h) and the old wait (10 s, then 409) are far off.
RETRY_WITHIN_S = 9.0


async def test_a_retry_takes_over_the_key_of_a_killed_holder_within_seconds(database_url: str, tmp_path: Path) -> None:
    env = {"IDEMPOTENCY_LEASE_SECONDS": str(LEASE_S)}
    holder, survivor = Serve(database_url, tmp_path, env=env), Serve(database_url, tmp_path, env=env)
    await holder.start()
    await survivor.start()
    key = f"crash-{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Idempotency-Key": key}
    name = f"Toko Lease {uuid.uuid4().hex[:8]}"
    body = {"name": name, "city": "Bogor"}
    lock = await asyncpg.connect(database_url)
    try:
        blocker = lock.transaction()
        await blocker.start()
        await lock.execute("LOCK TABLE merchants IN SHARE ROW EXCLUSIVE MODE")  # reads go on, inserts wait
        async with httpx.AsyncClient(base_url=holder.url, timeout=60) as first:
            in_flight = asyncio.create_task(first.post("/admin/merchants", json=body, headers=headers))

            async def claimed() -> bool:
                # Claimed (committed on its own), and the write cannot have happened: inserts wait for our lock.
                return await lock.fetchval("SELECT count(*) FROM idempotency_keys WHERE key = $1", key) == 1

            assert await eventually(claimed, timeout=30, interval=0.05)
            await holder.kill()
            with contextlib.suppress(httpx.HTTPError):
                await in_flight
        await blocker.rollback()

        started = time.monotonic()
        async with httpx.AsyncClient(base_url=survivor.url, timeout=60) as retry_client:
            retry = await retry_client.post("/admin/merchants", json=body, headers=headers)
            took = time.monotonic() - started
            assert retry.status_code == 201, retry.text
            assert "idempotent-replayed" not in retry.headers
            assert took < RETRY_WITHIN_S, f"the retry waited {took:.1f} s"
            again = await retry_client.post("/admin/merchants", json=body, headers=headers)
            assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
            assert again.content == retry.content
        assert await lock.fetchval("SELECT count(*) FROM merchants WHERE name = $1", name) == 1
        # The stored answer is kept for the TTL, not for the lease.
        left = await lock.fetchval(
            "SELECT extract(epoch FROM expires_at - now()) FROM idempotency_keys WHERE key = $1",
            key,
        )
        assert left > 23 * 3600
    finally:
        await lock.close()
        await survivor.stop()


# A keyed write held open until the test lets it answer.
_let_answer = asyncio.Event()


@post("/_test/held-write", opt={"public": True, "idempotent": True})
async def _held_write() -> dict:
    await _let_answer.wait()
    return {"answered": True}


RETRIES = 200
RENEWALS = 4


async def test_concurrent_retries_on_a_key_in_progress_wait_without_polling_the_database(
    running: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The adversarial run: 200 retries of one key in progress made 75,514 transactions in 11 s (each polled
    every 50 ms). Now they wait on one poller of the key, so the database sees a few statements per retry."""
    keys = running.platform.idempotency_keys
    monkeypatch.setattr(keys, "lease_s", 1.5)  # renewed every 0.5 s: the test's clock
    app = create_app(running.platform)
    app.register(_held_write)
    key = f"held-{uuid.uuid4().hex}"
    headers = {"Idempotency-Key": key, "X-Device-Id": "dev-held"}
    db = running.platform.db.pool

    async def committed() -> int:
        return await db.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")

    async def lease_ends() -> object:
        return await db.fetchval("SELECT lease_expires_at FROM idempotency_keys WHERE key = $1", key)

    _let_answer.clear()
    async with serve_app(app) as client:
        first = asyncio.create_task(client.post("/_test/held-write", headers=headers))
        assert await eventually(lambda: _is_set(lease_ends), timeout=30, interval=0.05)
        before = await committed()
        retries = [
            asyncio.create_task(client.post("/_test/held-write", headers=headers, timeout=60)) for _ in range(RETRIES)
        ]
        # Hold the first request for a few renewals of its lease (a condition the server moves, not a sleep).
        seen = [await lease_ends()]

        async def renewed_enough() -> bool:
            now = await lease_ends()
            if now != seen[-1]:
                seen.append(now)
            return len(seen) > RENEWALS

        assert await eventually(renewed_enough, timeout=60, interval=0.1)
        _let_answer.set()
        answered = await first
        replies = await asyncio.gather(*retries)
        spent = await committed() - before
    assert answered.status_code == 201
    assert all(r.status_code == 201 and r.headers["idempotent-replayed"] == "true" for r in replies)
    # Two statements each on arrival and two on waking, one poller, the renewals, the test's own reads and the
    # platform's jobs: well under 10 per retry. Each polling on its own every 50 ms: about 3,000 here.
    assert spent < 5 * RETRIES, f"{spent} transactions for {RETRIES} retries"


async def _is_set(read: Callable[[], Awaitable[object]]) -> bool:
    return await read() is not None
