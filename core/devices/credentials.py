"""Issuing device credentials: the secret, its stored hash and fingerprint, rotation.

A device secret is 32 random bytes (``secrets.token_urlsafe``), shown once.
Only an argon2id hash and a fingerprint are stored. The hash parameters are
deliberately cheap (t=1, m=1 MiB, p=1, ~0.5 ms): the secret's 256 bits of
entropy are what make it unguessable, not the hash cost, and the whole fleet
must be able to reconnect at once after a broker restart (docs/devices.md).
Checking a secret is ``verifier.py``'s job.

A rotation is announced (``changes.py``) in its own transaction, so a broker
in any process drops sessions that use the secret it replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import asyncpg
from argon2 import PasswordHasher, Type

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.devices.changes import DeviceChange, announce_change
from qris_soundbox.core.devices.errors import DeviceNotFound, DeviceStateInvalid
from qris_soundbox.core.devices.schemas import BrokerAddress, IssuedCredential

SECRET_BYTES = 32
# Machine-generated 256-bit secrets: the hash only has to be one-way, not slow.
DEVICE_SECRET_HASHER = PasswordHasher(
    time_cost=1, memory_cost=1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def fingerprint_of(secret: str) -> str:
    """First 16 hex digits of SHA-256: identifies a secret without revealing it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


async def rotate(
    conn: asyncpg.Connection, actor: AuditActor, device_id: str, broker: BrokerAddress
) -> IssuedCredential:
    """Issue a new secret; the old one stops working when this transaction commits.

    ``broker`` is where the device is told to connect: the caller knows it
    (``PlatformContext.device_broker_address``), not this module.
    """
    row = await conn.fetchrow(QUERIES["device_lock"], device_id)
    if row is None:
        raise DeviceNotFound(device_id)
    if row["status"] == "retired":
        raise DeviceStateInvalid("a retired device gets no credential", details={"status": row["status"]})
    secret = new_secret()
    fingerprint = fingerprint_of(secret)
    secret_hash = await asyncio.to_thread(DEVICE_SECRET_HASHER.hash, secret)
    updated = await conn.fetchrow(QUERIES["device_set_credential"], device_id, secret_hash, fingerprint)
    await announce_change(conn, DeviceChange(device_id=device_id, fingerprint=fingerprint, status=updated["status"]))
    await audit.record(
        conn,
        actor,
        "device.credential.rotate",
        entity_type="device",
        entity_id=device_id,
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
