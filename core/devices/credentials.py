"""Device credentials: issue, verify (MQTT and HTTP alike), and announce changes.

A device secret is 32 random bytes (``secrets.token_urlsafe``), shown once.
Only an argon2id hash and a fingerprint are stored. The hash parameters are
deliberately cheap (t=1, m=1 MiB, p=1, ~0.5 ms): the secret's 256 bits of
entropy are what make it unguessable, not the hash cost, and the whole fleet
must be able to reconnect at once after a broker restart (docs/devices.md).

Changes (rotation, disable, enable, retire) are announced with PostgreSQL
``NOTIFY device_credentials`` in the same transaction, so a broker in any
process drops sessions that use a secret which is no longer valid.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import asyncpg
import msgspec
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import Database
from qris_soundbox.core.devices.errors import DeviceNotFound, DeviceStateInvalid
from qris_soundbox.core.devices.schemas import BrokerAddress, IssuedCredential

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)

SECRET_BYTES = 32
MAX_SECRET_LENGTH = 256  # anything longer is not one of ours; never hash it
# Machine-generated 256-bit secrets: the hash only has to be one-way, not slow.
DEVICE_SECRET_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
CHANGE_CHANNEL = "device_credentials"
# Statuses in which a device may authenticate.
USABLE_STATUSES = frozenset({"active"})


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def fingerprint_of(secret: str) -> str:
    """First 16 hex digits of SHA-256: identifies a secret without revealing it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def broker_address(platform: PlatformContext) -> BrokerAddress:
    """Where devices connect: MQTT_PUBLIC_HOST/PORT, else this process's broker listener."""
    settings = platform.settings
    host, port = "127.0.0.1", 1883
    if platform.broker is not None:
        bind = str(platform.broker.listeners_config["default"].get("bind") or "")
        bind_host, _, bind_port = bind.rpartition(":")
        if bind_host and bind_host not in ("0.0.0.0", "::", "[::]"):
            host = bind_host
        if bind_port.isdigit():
            port = int(bind_port)
    return BrokerAddress(host=settings.mqtt_public_host or host, port=settings.mqtt_public_port or port)


class DeviceChange(msgspec.Struct, kw_only=True, frozen=True):
    """What the broker needs to know after a credential or status change."""

    device_id: str
    fingerprint: str | None
    status: str


async def announce_change(db: Database, conn: asyncpg.Connection, change: DeviceChange) -> None:
    """NOTIFY in the caller's transaction: delivered only if the change commits."""
    await conn.execute(db.q["device_notify_change"], msgspec.json.encode(change).decode())


async def rotate(
    db: Database, conn: asyncpg.Connection, actor: AuditActor, device_id: str, broker: BrokerAddress
) -> IssuedCredential:
    """Issue a new secret; the old one stops working when this transaction commits."""
    row = await conn.fetchrow(db.q["device_lock"], device_id)
    if row is None:
        raise DeviceNotFound(device_id)
    if row["status"] == "retired":
        raise DeviceStateInvalid("a retired device gets no credential", details={"status": row["status"]})
    secret = new_secret()
    fingerprint = fingerprint_of(secret)
    secret_hash = await asyncio.to_thread(DEVICE_SECRET_HASHER.hash, secret)
    updated = await conn.fetchrow(db.q["device_set_credential"], device_id, secret_hash, fingerprint)
    await announce_change(db, conn, DeviceChange(device_id=device_id, fingerprint=fingerprint, status=updated["status"]))
    await audit.record(
        db, conn, actor, "device.credential.rotate", entity_type="device", entity_id=device_id,
        payload={"fingerprint": fingerprint, "previous_fingerprint": row["credential_fingerprint"]},
    )
    return IssuedCredential(
        device_id=device_id,
        mqtt_username=device_id,
        mqtt_password=secret,
        mqtt_client_id=device_id,
        fingerprint=fingerprint,
        rotated_at=updated["credential_rotated_at"],
        broker=broker,
    )


class VerifiedDevice(msgspec.Struct, kw_only=True, frozen=True):
    device_id: str
    fingerprint: str | None  # None: authenticated by the legacy DEVICE_TOKEN (legacy_token.py)
    method: str  # "secret" | "legacy_token"


def _verify_hash(secret_hash: str, secret: str) -> bool:
    try:
        return DEVICE_SECRET_HASHER.verify(secret_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class _CredentialRows:
    """Reads device credential rows, one query for all the lookups waiting at once.

    A lookup joins the next query, never one already sent, so it always sees
    the row as it is after it was asked for. Alone, a lookup is one query as
    before; in a reconnect storm, one query (and one pool round trip) serves
    every CONNECT that arrived while the previous one ran, instead of one each.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._waiting: dict[str, list[asyncio.Future[asyncpg.Record | None]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, device_id: str) -> asyncpg.Record | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[asyncpg.Record | None] = loop.create_future()
        self._waiting.setdefault(device_id, []).append(future)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._read_while_waiting())
        return await future

    async def _read_while_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                rows = {row["id"]: row for row in await self._db.fetch("device_credentials", list(batch))}
            except Exception as exc:  # each CONNECT fails as its own query would have
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for device_id, futures in batch.items():
                for future in futures:
                    if not future.done():  # a CONNECT given up (connection closed) cancels its wait
                        future.set_result(rows.get(device_id))

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()


class CredentialVerifier:
    """Checks a device id + secret against PostgreSQL, argon2 off the event loop.

    Every check reads the device row (status, hash, fingerprint: one indexed
    query, shared by the checks waiting at the same moment), so a disabled,
    retired or rotated device is refused at once. Only the argon2
    verification is cached, keyed by (device id, current fingerprint, SHA-256
    of the presented secret): a rotation changes the fingerprint and so
    invalidates the entry by construction; a reconnect storm costs one query
    per device and no hashing. A check arriving while the same key is being
    hashed (a device that gave up waiting and tried again) waits for that
    hash instead of starting another.

    ``hashed`` counts successful verifications that ran argon2, ``cached``
    those served without (cache, or a hash already running): after a broker
    restart the cache is empty, so every device of the storm costs one hash
    (bench/broker_scale.py reports both).
    """

    def __init__(self, db: Database, *, workers: int | None = None) -> None:
        self._db = db
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._rows = _CredentialRows(db)
        self._hashing: dict[tuple[str, str, bytes], asyncio.Future[bool]] = {}
        self.hashed = 0
        self.cached = 0
        self._executor = ThreadPoolExecutor(
            max_workers=workers or max(2, min(4, os.cpu_count() or 2)), thread_name_prefix="device-argon2"
        )

    async def verify(self, device_id: str, secret: str) -> VerifiedDevice | None:
        if not device_id or not secret or len(secret) > MAX_SECRET_LENGTH:
            return None
        row = await self._rows.get(device_id)
        if row is None or row["status"] not in USABLE_STATUSES or not row["credential_hash"]:
            return None
        fingerprint = row["credential_fingerprint"]
        digest = hashlib.sha256(secret.encode()).digest()
        cached = self._verified.get(device_id)
        if cached is not None and cached[0] == fingerprint and hmac.compare_digest(cached[1], digest):
            self.cached += 1
            return VerifiedDevice(device_id=device_id, fingerprint=fingerprint, method="secret")
        key = (device_id, fingerprint, digest)
        running = self._hashing.get(key)
        joined = running is not None
        if running is None:
            running = self._hashing[key] = asyncio.get_running_loop().run_in_executor(
                self._executor, _verify_hash, row["credential_hash"], secret)
            running.add_done_callback(lambda _: self._hashing.pop(key, None))
        # Shielded: a CONNECT given up must not cancel a hash another one waits for.
        if not await asyncio.shield(running):
            return None
        if joined:
            self.cached += 1
        else:
            self._verified[device_id] = (fingerprint, digest)
            self.hashed += 1
        return VerifiedDevice(device_id=device_id, fingerprint=fingerprint, method="secret")

    def forget(self, device_id: str | None = None) -> None:
        if device_id is None:
            self._verified.clear()
        else:
            self._verified.pop(device_id, None)

    def close(self) -> None:
        self._rows.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


_verifiers: weakref.WeakKeyDictionary[PlatformContext, CredentialVerifier] = weakref.WeakKeyDictionary()


def verifier_for(platform: PlatformContext) -> CredentialVerifier:
    """One verifier (cache + thread pool) per running platform, shared by broker and HTTP."""
    verifier = _verifiers.get(platform)
    if verifier is None:
        verifier = _verifiers[platform] = CredentialVerifier(platform.db)
    return verifier


class DeviceChangeListener:
    """LISTEN on a dedicated connection for ``device_credentials`` notifications.

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
    ) -> None:
        self._db = db
        self._on_change = on_change
        self._on_resync = on_resync
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

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            change = msgspec.json.decode(payload, type=DeviceChange)
        except msgspec.DecodeError:
            log.warning("ignored malformed device change notification")
            return
        task = asyncio.get_running_loop().create_task(self._handle(change))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _handle(self, change: DeviceChange) -> None:
        try:
            await self._on_change(change)
        except Exception:
            log.exception("device change handling failed", extra={"device_id": change.device_id})

    async def _run(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._db.pool.acquire()
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c: lost.set())
                await conn.add_listener(CHANGE_CHANNEL, self._notified)
                if not first:
                    await self._on_resync()
                first = False
                self.listening.set()
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self.KEEPALIVE_S)
                    except asyncio.TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("device change listener lost its connection", extra={"error": repr(exc)})
            finally:
                if conn is not None:
                    try:
                        await conn.remove_listener(CHANGE_CHANNEL, self._notified)
                    except Exception:
                        pass
                    try:
                        await self._db.pool.release(conn, timeout=5)
                    except Exception:
                        conn.terminate()
            await asyncio.sleep(1)
