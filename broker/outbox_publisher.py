"""Delivers the device outbox from the broker process.

Woken by ``LISTEN device_outbox`` (the NOTIFY is sent in the transaction that
wrote the row, so it arrives on commit), by a device subscribing to its
downlinks (reconnect), and by a one-second tick for retries, for wake-ups missed
while the listening connection was down, and for expiry. Whichever process
wrote the row (``serve --only api`` included), the process running the broker
delivers it.

Several broker nodes share one database: every node hears every NOTIFY but
delivers only to the sessions it holds, and its tick neither defers nor
claims the rows of a device online on another node (``devices.broker_instance_id``
says which); the devices of a dead node are marked offline by the live
nodes' heartbeats (core/runtime.py) and get their rows wherever they reconnect.

Devices that subscribed since the last round are woken with one UPDATE for
all of them, not one each: after a broker restart the whole fleet subscribes
within seconds, and those writes would compete with authentication for the
pool (docs/performance.md).

One copy of a message per device session at a time: a row whose message the
session still holds (awaiting PUBACK, or queued behind the in-flight window)
is not handed over again — the broker resends it with DUP=1 under the same
packet id — and a device gets no more rows than its session has room for, so
a slow reader's backlog waits in PostgreSQL, not in broker memory. The SQL
is in ``core/outbox.py``; this module is only the delivery loop. A signed kind
(a payment announcement) is signed here, as it is handed over, with the
counter its row was queued with (core/announcement_signing.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

import asyncpg
import asyncpg.pool
import msgspec

from qris_soundbox.core import outbox
from qris_soundbox.core.announcement_signing import AnnouncementSigner
from qris_soundbox.core.db import Database, error_for_database_failure
from qris_soundbox.core.devices import trace
from qris_soundbox.core.metrics import Metrics

log = logging.getLogger(__name__)

TICK_S = 1.0
FIRST_RETRY_S = 5.0
# Once the device's MQTT stack has acknowledged (PUBACK) a message, its application's own ack is on the
# way: a resend before this long would cross it (a busy broker may take seconds to handle the ack).
WITH_DEVICE_RETRY_S = 30.0
MAX_RETRY_S = 60.0
OFFLINE_RESCAN_S = 30.0
BATCH = 500


class DeviceSessions(Protocol):
    """What the publisher needs of the broker (``PlatformBroker``)."""

    def is_device_online(self, client_id: str) -> bool: ...

    def downlink_room(self, client_id: str) -> int: ...

    def holds_downlink(self, client_id: str, key: str) -> bool: ...

    def on_downlink_taken(self, callback: Callable[[str, str], None] | None) -> None: ...

    async def deliver_to_client(
        self, client_id: str, topic: str, payload: bytes, qos: int = ..., key: str | None = None
    ) -> bool: ...


class OutboxPublisher:
    def __init__(
        self,
        db: Database,
        sessions: DeviceSessions,
        instance_id: str,
        metrics: Metrics,
        signer: AnnouncementSigner,
    ) -> None:
        self._db = db
        self._signer = signer
        self._instance_id = instance_id
        self._sessions = sessions
        self._announcements = metrics.announcements
        self._dirty: set[str] = set()
        self._subscribed: set[str] = set()  # to wake (their deferred rows become due), then drain
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[bool]] = set()  # deliveries awaiting PUBACK, cancelled on stop
        self._with_device: set[str] = set()  # message ids PUBACKed since the last round
        self._listener: asyncpg.pool.PoolConnectionProxy | None = None

    async def start(self) -> None:
        self._sessions.on_downlink_taken(self.device_took)
        self._task = asyncio.create_task(self._run(), name="outbox-publisher")

    async def stop(self) -> None:
        self._sessions.on_downlink_taken(None)
        for task in (self._task, *self._in_flight):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._task, *self._in_flight) if t is not None), return_exceptions=True)
        await self._close_listener()

    def device_took(self, _device_id: str, message_id: str) -> None:
        """The device PUBACKed a message (``PlatformBroker.on_downlink_taken``): its retry moves out next round."""
        self._with_device.add(message_id)
        self._wake.set()

    def device_ready(self, device_id: str) -> None:
        """The device (re)subscribed to its downlinks: everything unacked is due now."""
        self._subscribed.add(device_id)
        self._wake.set()

    def _notified(self, _conn: object, _pid: int, _channel: str, device_id: object) -> None:
        self._dirty.add(str(device_id))
        self._wake.set()

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        # One pooled connection is held for LISTEN for the publisher's lifetime.
        self._listener = await self._db.acquire_listening()
        await self._listener.add_listener(outbox.CHANNEL, self._notified)

    async def _close_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await self._db.release_listening(listener, self._notified, outbox.CHANNEL)

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
                if self._with_device:
                    with_device, self._with_device = self._with_device, set()
                    async with self._db.transaction() as conn:
                        await outbox.postpone(conn, list(with_device), WITH_DEVICE_RETRY_S)
                if self._subscribed:
                    subscribed, self._subscribed = self._subscribed, set()
                    try:
                        await outbox.make_due(self._db, list(subscribed))
                    except BaseException:
                        self._subscribed |= subscribed  # woken on the next round
                        raise
                    self._dirty |= subscribed
                if self._dirty:
                    devices, self._dirty = self._dirty, set()
                    await self._drain([d for d in devices if self._sessions.is_device_online(d)])
                if ticked:
                    await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Whatever went wrong, delivery must not stop until a restart: log, and try again shortly.
                if error_for_database_failure(exc) is not None or isinstance(exc, (OSError, asyncpg.InterfaceError)):
                    log.warning("outbox publisher: database unavailable", extra={"error": type(exc).__name__})
                else:
                    log.exception("outbox publisher error")
                await self._close_listener()
                await asyncio.sleep(TICK_S)

    async def _tick(self) -> None:
        for row in await outbox.expire_overdue(self._db, BATCH):
            if row["kind"] == "payment":
                self._announcements.labels(row["status"]).inc()
            log.info(
                "downlink expired",
                extra={"device_id": row["device_id"], "message_id": row["message_id"], "status": row["status"]},
            )
        due = await outbox.devices_with_due_downlinks(self._db, self._instance_id, BATCH)
        online = [d for d in due if self._sessions.is_device_online(d)]
        offline = [d for d in due if not self._sessions.is_device_online(d)]
        if offline:
            await outbox.defer_for_offline(self._db, offline, OFFLINE_RESCAN_S, BATCH)
        if online:
            await self._drain(online)

    async def _drain(self, devices: list[str]) -> None:
        if not devices:
            return
        sessions = self._sessions
        room = {device: sessions.downlink_room(device) for device in devices}
        async with self._db.transaction() as conn:
            due = await outbox.claim_due(conn, devices, BATCH)
            if not due:
                return
            sent, held, no_room = [], [], []
            traced: list[trace.TraceRow] = []
            announcements = 0
            for row in due:
                if sessions.holds_downlink(row.device_id, row.message_id):
                    held.append(row.message_id)  # the broker resends it; due again after the first back-off
                    continue
                if room[row.device_id] <= 0:
                    no_room.append(row.message_id)  # looked at again on the next tick
                    continue
                try:
                    signed = self._signer.sign_downlink(row.kind, row.device_id, row.payload, row.counter)
                except ValueError as exc:
                    # Unsigned it would be refused as a forgery: it waits (and expires) instead, loudly.
                    log.error(
                        "downlink cannot be signed",
                        extra={"device_id": row.device_id, "message_id": row.message_id, "error": str(exc)},
                    )
                    no_room.append(row.message_id)
                    continue
                room[row.device_id] -= 1
                data = msgspec.json.encode(signed)
                # Not awaited: the PUBACK round trip must not hold the rows' locks or
                # serialise devices. The device's own ack (or a retry) closes the row.
                task = asyncio.create_task(
                    sessions.deliver_to_client(row.device_id, row.topic, data, key=row.message_id)
                )
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                traced.append(
                    trace.downlink_row(
                        device_id=row.device_id, topic=row.topic, payload=data, message_id=row.message_id
                    )
                )
                sent.append(row.id)
                announcements += row.topic == outbox.downlink_topic(row.device_id, "payment")
            await trace.record_downlinks(conn, traced)
            await outbox.mark_sent(conn, sent, FIRST_RETRY_S, MAX_RETRY_S)
            await outbox.postpone(conn, held, FIRST_RETRY_S)
            await outbox.postpone(conn, no_room, TICK_S)
        self._announcements.labels("sent").inc(announcements)
        if len(due) == BATCH:
            self._dirty.update(devices)
            self._wake.set()
