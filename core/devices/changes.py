"""Changes of devices told to every broker process: credentials, status, and where the session is.

A change (rotation, disable, enable, retire) is announced with PostgreSQL
``NOTIFY device_credentials`` in the transaction that makes it, so it is heard
only if it commits. A device whose session moved to another broker node
(a reconnect through the load balancer while the old TCP connection is
half-open) is announced on ``device_sessions`` by the node it moved to, from
its presence write (sql/queries/devices.sql ``device_presence``).
``DeviceChangeListener`` hears both on one dedicated connection, in this
process or any other sharing the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg.pool
import msgspec

from qris_soundbox.core.db import QUERIES, Connection, Database

log = logging.getLogger(__name__)

CHANGE_CHANNEL = "device_credentials"
SESSION_CHANNEL = "device_sessions"


class DeviceChange(msgspec.Struct, kw_only=True, frozen=True):
    """What the broker needs to know after a credential or status change."""

    device_id: str
    fingerprint: str | None
    status: str


class SessionMoved(msgspec.Struct, kw_only=True, frozen=True):
    """A device connected on broker node ``instance_id`` at ``connected_at`` while online on another node."""

    device_id: str
    instance_id: str
    connected_at: datetime


async def announce_change(conn: Connection, change: DeviceChange) -> None:
    """NOTIFY in the caller's transaction: delivered only if the change commits."""
    await conn.execute(QUERIES["device_notify_change"], msgspec.json.encode(change).decode())


class DeviceChangeListener:
    """LISTEN on a dedicated connection for ``device_credentials`` and ``device_sessions`` notifications.

    If the connection is lost, notifications may have been missed: after
    reconnecting, ``on_resync`` runs so the owner can re-check every live
    session against the database.
    """

    KEEPALIVE_S = 15

    def __init__(
        self,
        db: Database,
        on_change: Callable[[DeviceChange], Awaitable[None]],
        on_resync: Callable[[], Awaitable[None]],
        on_session_moved: Callable[[SessionMoved], Awaitable[None]],
    ) -> None:
        self._db = db
        self._on_change = on_change
        self._on_resync = on_resync
        self._on_session_moved = on_session_moved
        self._task: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.listening = asyncio.Event()

    async def start(self, timeout: float = 10) -> None:
        self._task = asyncio.create_task(self._run(), name="device-change-listener")
        await asyncio.wait_for(self.listening.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def _notified(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        handling: Awaitable[None]
        try:
            if not isinstance(payload, str):
                raise msgspec.DecodeError("a notification payload is text")
            if channel == SESSION_CHANNEL:
                moved = msgspec.json.decode(payload, type=SessionMoved)
                handling, device_id = self._on_session_moved(moved), moved.device_id
            else:
                change = msgspec.json.decode(payload, type=DeviceChange)
                handling, device_id = self._on_change(change), change.device_id
        except msgspec.DecodeError:
            log.warning("ignored malformed device notification", extra={"channel": channel})
            return
        task = asyncio.get_running_loop().create_task(self._handle(handling, device_id))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, handling: Awaitable[None], device_id: str) -> None:
        try:
            await handling
        except Exception:
            log.exception("device change handling failed", extra={"device_id": device_id})

    async def _run(self) -> None:
        first = True
        while True:
            conn: asyncpg.pool.PoolConnectionProxy | None = None
            try:
                conn = await self._db.acquire_listening()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                for channel in (CHANGE_CHANNEL, SESSION_CHANNEL):
                    await conn.add_listener(channel, self._notified)
                if not first:
                    await self._on_resync()
                first = False
                self.listening.set()
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self.KEEPALIVE_S)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("device change listener lost its connection", extra={"error": repr(exc)})
            finally:
                if conn is not None:
                    await self._db.release_listening(conn, self._notified, CHANGE_CHANNEL, SESSION_CHANNEL)
            await asyncio.sleep(1)
