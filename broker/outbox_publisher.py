"""Delivers the device outbox from the broker process.

Woken by ``LISTEN device_outbox`` (the NOTIFY is sent in the transaction that
wrote the row, so it arrives on commit), by a device subscribing to its
downlinks (reconnect), and by a one-second tick for retries, for wake-ups missed
while the listening connection was down, and for expiry. Whichever process
wrote the row (``serve --only api`` included), the process running the broker
delivers it.

Devices that subscribed since the last round are woken with one UPDATE for
all of them, not one each: after a broker restart the whole fleet subscribes
within seconds, and those writes would compete with authentication for the
pool (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec

from qris_soundbox.core.db import Database
from qris_soundbox.core.devices import trace

log = logging.getLogger(__name__)

CHANNEL = "device_outbox"
TICK_S = 1.0
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 60.0
OFFLINE_RESCAN_S = 30.0
BATCH = 500


class OutboxPublisher:
    def __init__(
        self,
        db: Database,
        is_online: Callable[[str], bool],
        deliver: Callable[[str, str, bytes], Awaitable[bool]],
    ) -> None:
        self._db = db
        self._is_online = is_online
        self._deliver = deliver
        self._dirty: set[str] = set()
        self._subscribed: set[str] = set()  # to wake (their deferred rows become due), then drain
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[bool]] = set()  # deliveries awaiting PUBACK, cancelled on stop
        self._listener: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-publisher")

    async def stop(self) -> None:
        for task in (self._task, *self._in_flight):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._task, *self._in_flight) if t is not None), return_exceptions=True)
        await self._close_listener()

    def device_ready(self, device_id: str) -> None:
        """The device (re)subscribed to its downlinks: everything unacked is due now."""
        self._subscribed.add(device_id)
        self._wake.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, device_id: str) -> None:
        self._dirty.add(device_id)
        self._wake.set()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        # One pooled connection is held for LISTEN for the publisher's lifetime.
        self._listener = await self._db.pool.acquire()
        await self._listener.add_listener(CHANNEL, self._notified)

    async def _close_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await listener.remove_listener(CHANNEL, self._notified)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass
            await self._db.pool.release(listener)

    async def _run(self) -> None:
        while True:
            try:
                await self._ensure_listener()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=TICK_S)
                    ticked = False
                except TimeoutError:
                    ticked = True
                self._wake.clear()
                if self._subscribed:
                    subscribed, self._subscribed = self._subscribed, set()
                    try:
                        await self._db.execute("wake_downlinks", list(subscribed))
                    except BaseException:
                        self._subscribed |= subscribed  # woken on the next round
                        raise
                    self._dirty |= subscribed
                if self._dirty:
                    devices, self._dirty = self._dirty, set()
                    await self._drain([d for d in devices if self._is_online(d)])
                if ticked:
                    await self._tick()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # Database trouble: keep the broker up and try again shortly.
                log.warning("outbox publisher error", extra={"error": str(exc)})
                await self._close_listener()
                await asyncio.sleep(TICK_S)

    async def _tick(self) -> None:
        for row in await self._db.fetch("expire_downlinks"):
            log.info("downlink expired", extra={"device_id": row["device_id"], "message_id": row["message_id"],
                                                 "status": row["status"]})
        due = [r["device_id"] for r in await self._db.fetch("due_downlink_devices", BATCH)]
        online = [d for d in due if self._is_online(d)]
        offline = [d for d in due if not self._is_online(d)]
        if offline:
            await self._db.execute("defer_downlinks", offline, OFFLINE_RESCAN_S)
        if online:
            await self._drain(online)

    async def _drain(self, devices: list[str]) -> None:
        if not devices:
            return
        async with self._db.transaction() as conn:
            rows = await conn.fetch(self._db.q["open_downlinks_for_devices"], devices, BATCH)
            if not rows:
                return
            for row in rows:
                data = msgspec.json.encode(row["payload"])
                # Not awaited: the PUBACK round trip must not hold the rows' locks or
                # serialise devices. The device's own ack (or a retry) closes the row.
                task = asyncio.create_task(self._deliver(row["device_id"], row["topic"], data))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                await trace.record_downlink(self._db, conn, device_id=row["device_id"], topic=row["topic"],
                                            payload=data, message_id=row["message_id"])
            await conn.execute(self._db.q["mark_downlinks_sent"], [r["id"] for r in rows], FIRST_RETRY_S, MAX_RETRY_S)
        if len(rows) == BATCH:
            self._dirty.update(devices)
            self._wake.set()
