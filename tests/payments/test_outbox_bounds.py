"""A tick's housekeeping is bounded: a large backlog is deferred or closed over several ticks, so the
publisher's loop never stalls on one huge UPDATE while announcements wait behind it."""

from __future__ import annotations

from qris_soundbox.core import outbox
from tests.devices.helpers import register_device
from tests.support import PlatformFactory

BACKLOG = 1_200
LIMIT = 500


async def test_deferring_and_expiring_a_large_backlog_takes_several_ticks(platform_factory: PlatformFactory) -> None:
    # An API-only process: no publisher of its own ticks beside the test.
    running = await platform_factory.start(frozenset({"api"}))
    db = running.platform.db
    device = await register_device(running)

    async def backlog(expires: str) -> None:
        await db.pool.execute(
            "INSERT INTO device_outbox (id, message_id, device_id, kind, topic, payload, expires_at)"
            f" SELECT 'obx_' || $2 || g, 'msg_' || $2 || g, $1, 'payment', 't', '{{}}'::jsonb, now() + interval '{expires}'"
            " FROM generate_series(1, $3) AS g",
            device["id"],
            expires.replace(" ", "_"),
            BACKLOG,
        )

    await backlog("1 day")
    deferred = (
        "SELECT count(*) FROM device_outbox WHERE device_id = $1 AND next_attempt_at > now() + interval '10 seconds'"
    )
    await outbox.defer_for_offline(db, [device["id"]], 30, LIMIT)
    assert await db.pool.fetchval(deferred, device["id"]) == LIMIT
    await outbox.defer_for_offline(db, [device["id"]], 30, LIMIT)
    await outbox.defer_for_offline(db, [device["id"]], 30, LIMIT)
    assert await db.pool.fetchval(deferred, device["id"]) == BACKLOG

    await backlog("-1 minute")
    closed = [len(await outbox.expire_overdue(db, LIMIT)) for _ in range(4)]
    assert closed == [LIMIT, LIMIT, BACKLOG - 2 * LIMIT, 0]
    skipped = await db.pool.fetchval(
        "SELECT count(*) FROM device_outbox WHERE device_id = $1 AND status = 'skipped_late'", device["id"]
    )
    assert skipped == BACKLOG
