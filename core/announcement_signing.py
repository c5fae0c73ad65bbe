"""Signed announcements (SPEC §17): what a payment, refund or summary downlink's ``sig`` covers, and the key.

Every downlink of a kind in ``SIGNED_KINDS`` is signed when the broker hands it to
the device (``broker/outbox_publisher.py``), with Ed25519 over ``canonical_bytes``:

    qris-soundbox/announcement/v1 LF device_id LF message_id LF kind LF amount LF
    currency LF transaction_id LF time LF counter

(``LF`` one 0x0A byte, no trailing one; docs/announcement-signing.md has the
vectors). ``counter`` is the device's announcement counter, allocated by
``enqueue_downlink`` (sql/migrations/220) in the statement that queues the row,
so it strictly increases per device across restarts and nodes without a round
trip of its own. Signing happens at delivery, not at enqueue, because the
counter and the currency are only known once that statement has run.

The key lives outside the database: ``ANNOUNCEMENT_SIGNING_KEY_FILE`` (default
``signing/announcement-key.pem`` in the data dir, created on first start).
Rotation with overlap: ``ANNOUNCEMENT_PREVIOUS_PUBLIC_KEY_FILE`` names the old
public key, still published (``GET /device/keys``, the connection profile) so a
device that has not fetched the new one yet is told about it before it is needed.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from qris_soundbox.core.config import Settings
from qris_soundbox.core.devices.schemas import AnnouncementKey, AnnouncementKeys
from qris_soundbox.core.key_files import read_or_create

DOMAIN = b"qris-soundbox/announcement/v1"


@dataclass(frozen=True)
class SignedFields:
    """Where a kind's payload carries what is signed (the names of its JSON fields)."""

    amount: str
    time: str
    transaction_id: str | None = "transaction_id"  # None: the kind names no transaction (signed as "")
    currency: str = "currency"


# The kinds that are announcements a merchant acts on. A new kind (a refund, a day's summary) is one
# entry here: enqueue_downlink gives its rows a counter and the publisher signs them.
SIGNED_KINDS: dict[str, SignedFields] = {
    "payment": SignedFields(amount="amount", time="paid_at"),
}


def _field(value: object, name: str) -> bytes:
    text = str(value)
    if any(ord(c) < 0x20 or c == "\x7f" for c in text):
        raise ValueError(f"{name} cannot be signed: it holds a control character")
    return text.encode()


def canonical_bytes(
    *,
    device_id: str,
    message_id: str,
    kind: str,
    amount: int,
    currency: str,
    transaction_id: str,
    time: str,
    counter: int,
) -> bytes:
    """The bytes ``sig`` covers; every text as it appears in the message, integers in decimal."""
    if type(amount) is not int or type(counter) is not int or counter < 1:
        raise ValueError("amount and counter must be integers (counter ≥ 1)")
    parts = (device_id, message_id, kind, amount, currency, transaction_id, time, counter)
    names = ("device_id", "message_id", "kind", "amount", "currency", "transaction_id", "time", "counter")
    return b"\n".join([DOMAIN, *(_field(v, n) for v, n in zip(parts, names, strict=True))])


def announcement_bytes(kind: str, device_id: str, payload: dict[str, Any], counter: int) -> bytes:
    """``canonical_bytes`` of a message of a signed ``kind``, its fields read where that kind carries them;
    ``ValueError`` when one is missing or cannot be signed. A verifier passes its own id and the kind it is
    about to act on, never the message's word for them."""
    fields = SIGNED_KINDS[kind]
    try:
        return canonical_bytes(
            device_id=device_id,
            message_id=payload["message_id"],
            kind=kind,
            amount=payload[fields.amount],
            currency=payload[fields.currency],
            transaction_id=payload[fields.transaction_id] if fields.transaction_id else "",
            time=payload[fields.time],
            counter=counter,
        )
    except KeyError as exc:
        raise ValueError(f"a {kind} message without {exc.args[0]} cannot be signed") from None


def raw_public_key(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: ed25519.Ed25519PublicKey) -> str:
    return hashlib.sha256(raw_public_key(key)).hexdigest()[:16]


@dataclass(frozen=True)
class AnnouncementSigner:
    private_key: ed25519.Ed25519PrivateKey
    kid: str
    published: AnnouncementKeys

    def sign_downlink(self, kind: str, device_id: str, payload: dict[str, Any], counter: int | None) -> dict[str, Any]:
        """``payload`` as the device receives it: for a signed kind, with ``device_id``, ``counter``, ``kid``
        and ``sig`` added; any other kind unchanged. ``ValueError`` when a signed kind's field is missing
        or cannot be signed (the row is then not delivered: an unsigned announcement would be refused)."""
        if kind not in SIGNED_KINDS:
            return payload
        if counter is None:
            raise ValueError(f"a {kind} downlink without its counter cannot be signed")
        message = announcement_bytes(kind, device_id, payload, counter)
        signature = base64.b64encode(self.private_key.sign(message)).decode()
        return payload | {"device_id": device_id, "counter": counter, "kid": self.kid, "sig": signature}


def _generate_pem() -> str:
    return (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def _load(pem: str, private: bool) -> Any:
    try:
        key = (
            serialization.load_pem_private_key(pem.encode(), password=None)
            if private
            else serialization.load_pem_public_key(pem.encode())
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not an unencrypted PEM {'private' if private else 'public'} key: {exc}") from None
    wanted = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, wanted):
        raise ValueError("announcements are signed with Ed25519; this key is not Ed25519")
    return key


def _published(key: ed25519.Ed25519PublicKey, current: bool) -> AnnouncementKey:
    return AnnouncementKey(kid=key_id(key), public_key=base64.b64encode(raw_public_key(key)).decode(), current=current)


def load_announcement_signer(settings: Settings, data_dir: Path) -> AnnouncementSigner:
    """The signing key, created when missing; ``ValueError`` naming the file when it is no Ed25519 key.
    ``serve`` reads it once at start and keeps it on the platform context."""
    path = (
        Path(settings.announcement_signing_key_file)
        if settings.announcement_signing_key_file
        else data_dir / "signing" / "announcement-key.pem"
    )
    try:
        private_key: ed25519.Ed25519PrivateKey = _load(read_or_create(path, _generate_pem), private=True)
    except (OSError, ValueError) as exc:
        raise ValueError(f"ANNOUNCEMENT_SIGNING_KEY_FILE {path}: {exc}") from None
    keys = [_published(private_key.public_key(), current=True)]
    if settings.announcement_previous_public_key_file:
        previous_path = Path(settings.announcement_previous_public_key_file)
        try:
            previous = _load(previous_path.read_text(), private=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"ANNOUNCEMENT_PREVIOUS_PUBLIC_KEY_FILE {previous_path}: {exc}") from None
        if key_id(previous) != keys[0].kid:
            keys.append(_published(previous, current=False))
    return AnnouncementSigner(
        private_key=private_key, kid=keys[0].kid, published=AnnouncementKeys(current_kid=keys[0].kid, keys=keys)
    )
