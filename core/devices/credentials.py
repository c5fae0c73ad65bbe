"""Issuing device credentials: the secret, its stored hash and fingerprint, rotation.

A device secret is 32 random bytes (``secrets.token_urlsafe``), shown once.
Only an argon2id hash and a fingerprint are stored. The hash parameters are
deliberately cheap (t=1, m=1 MiB, p=1, ~0.5 ms): the secret's 256 bits of
entropy are what make it unguessable, not the hash cost, and the whole fleet
must be able to reconnect at once after a broker restart (docs/devices.md).
Checking a secret is ``verifier.py``'s job.

``broker_profile`` is the broker part of the profile a rotation hands out:
scheme, host, port and how to trust the server (docs/devices.md).

A rotation is announced (``changes.py``) in its own transaction, so a broker
in any process drops sessions that use the secret it replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import ssl
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher, Type

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection, fetch_one
from qris_soundbox.core.devices.changes import DeviceChange, announce_change
from qris_soundbox.core.devices.errors import DeviceNotFound, DeviceStateInvalid
from qris_soundbox.core.devices.schemas import AnnouncementKeys, BrokerAddress, IssuedCredential

SECRET_BYTES = 32
# Machine-generated 256-bit secrets: the hash only has to be one-way, not slow.
DEVICE_SECRET_HASHER = PasswordHasher(
    time_cost=1, memory_cost=1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def new_secret() -> str:
    """A device secret; never starting with ``-``, so that it can follow an option on a command line
    (``simulate --secret ...``) without being read as one."""
    while (secret := secrets.token_urlsafe(SECRET_BYTES)).startswith("-"):
        pass
    return secret


# Where devices connect when neither MQTT_PUBLIC_HOST nor a broker in this process says (``--only api``).
LOOPBACK = "127.0.0.1"
DEFAULT_MQTT_PORT, DEFAULT_MQTTS_PORT = 1883, 8883
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def broker_profile(settings: Settings, plain: tuple[str, int] | None, tls: tuple[str, int] | None) -> BrokerAddress:
    """Where a device is told to connect, given this process's listeners (None: not served here).

    MQTT over TLS when it is served here or configured (MQTT_TLS_CERT_FILE and
    KEY_FILE: an ``--only api`` process shares the broker's environment),
    plain MQTT otherwise. MQTT_PUBLIC_HOST/PORT name the address devices
    reach (a load balancer, a DNS name); without MQTT_PUBLIC_HOST the
    listener's own address is handed out, with a warning saying so.
    """
    tls_configured = bool(settings.mqtt_tls_cert_file and settings.mqtt_tls_key_file)
    if tls is None and tls_configured:
        tls = ("", settings.mqtt_tls_port or DEFAULT_MQTTS_PORT)
    scheme: Literal["mqtt", "mqtts"] = "mqtts" if tls is not None else "mqtt"
    host, port = tls or plain or (LOOPBACK, DEFAULT_MQTT_PORT)
    if host in WILDCARD_HOSTS:
        host = LOOPBACK
    warnings = []
    if not settings.mqtt_public_host:
        where = (
            "this machine's loopback address: only a client on this machine can reach it"
            if host == LOOPBACK
            else "the broker's listen address"
        )
        warnings.append(
            f"MQTT_PUBLIC_HOST is not set: {host} is {where}; set MQTT_PUBLIC_HOST to the name devices reach"
        )
    host, port = settings.mqtt_public_host or host, settings.mqtt_public_port or port
    profile = BrokerAddress(
        host=host,
        port=port,
        scheme=scheme,
        url=f"{scheme}://{host}:{port}",
        client_certificate_required=scheme == "mqtts" and settings.mqtt_tls_client_ca_file is not None,
        warnings=warnings,
    )
    if scheme == "mqtts" and settings.mqtt_tls_server_ca_file:
        try:
            profile.ca_pem, profile.ca_sha256 = server_ca(Path(settings.mqtt_tls_server_ca_file))
        except (OSError, ValueError) as exc:
            warnings.append(f"MQTT_TLS_SERVER_CA_FILE cannot be read ({exc}): no CA in this profile")
    return profile


def server_ca(path: Path) -> tuple[str, str]:
    """The first certificate of a PEM file and its SHA-256 fingerprint (``AB:CD:...``, as openssl prints it)."""
    text = path.read_text()
    begin, end = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    start = text.find(begin)
    stop = text.find(end, start)
    if start < 0 or stop < 0:
        raise ValueError(f"{path} holds no PEM certificate")
    pem = text[start : stop + len(end)] + "\n"
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    return pem, ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def fingerprint_of(secret: str) -> str:
    """First 16 hex digits of SHA-256: identifies a secret without revealing it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


async def rotate(
    conn: Connection,
    actor: AuditActor,
    device_id: str,
    broker: BrokerAddress,
    announcement_keys: AnnouncementKeys,
) -> IssuedCredential:
    """Issue a new secret; the old one stops working when this transaction commits.

    ``broker`` is where the device is told to connect and ``announcement_keys`` what it verifies
    announcements with: the caller knows them (``PlatformContext``), not this module.
    """
    row = await conn.fetchrow(QUERIES["device_lock"], device_id)
    if row is None:
        raise DeviceNotFound(device_id)
    if row["status"] == "retired":
        raise DeviceStateInvalid("a retired device gets no credential", details={"status": row["status"]})
    secret = new_secret()
    fingerprint = fingerprint_of(secret)
    secret_hash = await asyncio.to_thread(DEVICE_SECRET_HASHER.hash, secret)
    updated = await fetch_one(conn, "device_set_credential", device_id, secret_hash, fingerprint)
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
        announcement_keys=announcement_keys,
    )
