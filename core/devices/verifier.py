"""Checking a device's secret (MQTT and HTTP alike): the device row, the argon2
verification on a thread pool, and the cache that spares a reconnect storm the hashing.

One ``CredentialVerifier`` per process, held on the platform context
(``PlatformContext.device_verifier``): the broker's auth plugin and the
``/device/*`` routes share its cache and its pool.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor

import msgspec
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from qris_soundbox.core.batching import CoalescedReads
from qris_soundbox.core.db import Database
from qris_soundbox.core.devices.credentials import DEVICE_SECRET_HASHER

MAX_SECRET_LENGTH = 256  # anything longer is not one of ours; never hash it
# Statuses in which a device may authenticate.
USABLE_STATUSES = frozenset({"active"})


class VerifiedDevice(msgspec.Struct, kw_only=True, frozen=True):
    device_id: str
    fingerprint: str | None  # None: authenticated by the legacy DEVICE_TOKEN (legacy_token.py)
    method: str  # "secret" | "legacy_token"
    dialect: str = "native"  # the wire dialect of the device's model (a name the broker resolves)


def _verify_hash(secret_hash: str, secret: str) -> bool:
    try:
        return DEVICE_SECRET_HASHER.verify(secret_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


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
        self._rows = CoalescedReads(db, "device_credentials")  # every CONNECT of a storm in one query
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
            return VerifiedDevice(device_id=device_id, fingerprint=fingerprint, method="secret", dialect=row["dialect"])
        key = (device_id, fingerprint, digest)
        running = self._hashing.get(key)
        joined = running is not None
        if running is None:
            running = self._hashing[key] = asyncio.get_running_loop().run_in_executor(
                self._executor, _verify_hash, row["credential_hash"], secret
            )
            running.add_done_callback(lambda _: self._hashing.pop(key, None))
        # Shielded: a CONNECT given up must not cancel a hash another one waits for.
        if not await asyncio.shield(running):
            return None
        if joined:
            self.cached += 1
        else:
            self._verified[device_id] = (fingerprint, digest)
            self.hashed += 1
        return VerifiedDevice(device_id=device_id, fingerprint=fingerprint, method="secret", dialect=row["dialect"])

    def forget(self, device_id: str | None = None) -> None:
        if device_id is None:
            self._verified.clear()
        else:
            self._verified.pop(device_id, None)

    def close(self) -> None:
        self._rows.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
