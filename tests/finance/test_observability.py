"""``GET /admin/observability/summary`` reads bounded sets only: open outbox rows all, closed ones and
transactions of the last hour, through indexes; its database part is read at most once a second per
process (``core.batching.Snapshot``), ``generated_at`` saying when."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime, timedelta
from typing import Any

from qris_soundbox.core.batching import Snapshot
from qris_soundbox.core.ids import id_floor, new_id
from tests.onboarding import onboarded_terminal
from tests.support import PlatformFactory, RunningPlatform


def _id_at(prefix: str, at: datetime, serial: int) -> str:
    """An id as new_id would have made it at ``at`` (unique by ``serial``)."""
    return id_floor(prefix, at)[:-6] + f"{serial:06d}"


async def _transaction(running: RunningPlatform, ids: dict[str, str], at: datetime, status: str, serial: int) -> str:
    transaction_id = _id_at("txn", at, serial)
    await running.platform.db.pool.execute(
        "INSERT INTO transactions (id, merchant_id, outlet_id, terminal_id, kind, status, amount, reference, fee_bps,"
        " paid_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'static', $5, 1000, $6, 0,"
        " CASE WHEN $5 = 'paid' THEN $7::timestamptz END, $7, $7)",
        transaction_id,
        ids["merchant_id"],
        ids["outlet_id"],
        ids["terminal_id"],
        status,
        new_id("ref"),
        at,
    )
    return transaction_id


async def _downlink(running: RunningPlatform, at: datetime, status: str, serial: int) -> None:
    await running.platform.db.pool.execute(
        "INSERT INTO device_outbox (id, message_id, device_id, kind, topic, payload, status, expires_at, created_at)"
        " VALUES ($1, $2, 'dev_observability', 'command', 'devices/dev_observability/downlink/command', '{}',"
        " $3, $4::timestamptz + interval '1 day', $4)",
        _id_at("obx", at, serial),
        new_id("msg"),
        status,
        at,
    )


async def test_history_beyond_the_window_is_not_counted_open_downlinks_always_are(
    platform_factory: PlatformFactory,
) -> None:
    running = await platform_factory.start()
    ids = await onboarded_terminal(running)
    now = datetime.now(UTC)
    long_ago, recently = now - timedelta(days=3), now - timedelta(minutes=20)
    before = (await running.http.get("/admin/observability/summary", headers=running.admin_headers)).json()
    for serial in range(3):
        await _transaction(running, ids, long_ago, "paid", serial)
        await _downlink(running, long_ago, "acked", serial)
    await _transaction(running, ids, recently, "paid", 10)
    await _transaction(running, ids, recently, "expired", 11)
    await _downlink(running, recently, "acked", 10)
    await _downlink(running, long_ago, "pending", 20)  # open for three days: still open, still counted
    await _downlink(running, recently, "sent", 21)
    summary = await _fresh_summary(running)

    def grew(path: list[str]) -> int:
        def at(body: Any) -> int:
            for key in path:
                body = body.get(key, {}) if isinstance(body, dict) else {}
            return body if isinstance(body, int) else 0

        return at(summary) - at(before)

    assert grew(["transactions_last_hour", "paid", "count"]) == 1
    assert grew(["transactions_last_hour", "paid", "amount"]) == 1000
    assert grew(["transactions_last_hour", "expired", "count"]) == 1
    assert grew(["outbox", "acked"]) == 1  # the three acked three days ago are history
    assert grew(["outbox", "pending"]) == 1 and grew(["outbox", "sent"]) == 1


async def _fresh_summary(running: RunningPlatform) -> dict[str, Any]:
    """The summary read now, not the snapshot an earlier call of this test left."""
    running.platform.observability = Snapshot(max_age_s=60)
    response = await running.http.get("/admin/observability/summary", headers=running.admin_headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_callers_within_the_age_share_one_read_and_its_generated_at(running: RunningPlatform) -> None:
    running.platform.observability = Snapshot(max_age_s=60)

    async def summary() -> dict[str, Any]:
        response = await running.http.get("/admin/observability/summary", headers=running.admin_headers)
        assert response.status_code == 200, response.text
        return response.json()

    answers = await asyncio.gather(*(summary() for _ in range(8)))
    later = await summary()
    assert len({answer["generated_at"] for answer in [*answers, later]}) == 1


async def test_a_snapshot_reads_once_for_waiting_callers_again_after_its_age_and_after_a_failure() -> None:
    reads: list[int] = []
    fail = [True]

    async def read() -> int:
        reads.append(len(reads))
        await asyncio.sleep(0.01)
        if fail[0]:
            fail[0] = False
            raise OSError("the database is away")
        return len(reads)

    snapshot: Snapshot[int] = Snapshot(max_age_s=60)
    failed = await asyncio.gather(*(snapshot.get(read) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, OSError) for result in failed) and len(reads) == 1
    assert await asyncio.gather(*(snapshot.get(read) for _ in range(5))) == [2] * 5
    assert await snapshot.get(read) == 2 and len(reads) == 2
    expired: Snapshot[int] = Snapshot(max_age_s=0)
    assert [await expired.get(read), await expired.get(read)] == [3, 4]


async def test_a_read_that_fails_after_its_callers_left_is_not_reported_as_never_retrieved() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    started, finish = asyncio.Event(), asyncio.Event()

    async def read() -> int:
        started.set()
        await finish.wait()
        raise OSError("the database is away")

    try:
        snapshot: Snapshot[int] = Snapshot(max_age_s=60)
        caller = asyncio.create_task(snapshot.get(read))
        await started.wait()
        caller.cancel()  # the only caller goes away; the read goes on
        finish.set()
        for _ in range(5):
            await asyncio.sleep(0)
        del caller, snapshot  # the read's task goes with them: unretrieved, it would be reported now
        gc.collect()
        assert reported == []
    finally:
        loop.set_exception_handler(previous)
