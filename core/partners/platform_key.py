"""The platform's own RSA key, which signs its SNAP notifications to partners (SHA256withRSA).

It lives outside the database: ``SNAP_PRIVATE_KEY_FILE`` (default
``snap/platform-key.pem`` in the data dir, ``var/``), generated on first start when the file is
missing (owner-only permissions), so a dev platform needs no setup. Partners
fetch the public half at ``GET /snap/public-key.pem``; every notification names
the key that signed it in ``X-KEY-ID`` (the first 16 hex digits of the SHA-256
of its DER public key). Rotation with overlap: put the old public key at
``SNAP_PREVIOUS_PUBLIC_KEY_FILE`` and the new private key in place; both public
keys are published (``GET /snap/keys/{key_id}``) until the old one is
dropped (docs/partners.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from qris_soundbox.core.config import Settings
from qris_soundbox.core.key_files import read_or_create
from qris_soundbox.core.snap import wire


def key_id(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


@dataclass(frozen=True)
class PlatformKey:
    private_key: rsa.RSAPrivateKey
    key_id: str
    # key id -> public PEM: the current key and, during a rotation, the previous one.
    published: dict[str, str]

    def sign(self, message: bytes) -> str:
        return wire.rsa_sign(self.private_key, message)


def load_platform_key(settings: Settings, data_dir: Path) -> PlatformKey:
    """The signing key, created when missing; ``ValueError`` (naming the file) when it is not an RSA key.
    ``serve`` reads it once at start (a bad file stops it there) and keeps it on the platform context."""
    path = (
        Path(settings.snap_private_key_file)
        if settings.snap_private_key_file
        else data_dir / "snap" / "platform-key.pem"
    )
    try:
        private_key = wire.load_private_key(read_or_create(path, wire.generate_private_key_pem))
    except ValueError as exc:
        raise ValueError(f"SNAP_PRIVATE_KEY_FILE {path}: {exc}") from None
    current = wire.public_key_pem(private_key)
    published = {key_id(private_key.public_key()): current}
    if settings.snap_previous_public_key_file:
        previous_path = Path(settings.snap_previous_public_key_file)
        try:
            previous = wire.load_public_key(previous_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"SNAP_PREVIOUS_PUBLIC_KEY_FILE {previous_path}: {exc}") from None
        published[key_id(previous)] = previous.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    return PlatformKey(private_key=private_key, key_id=key_id(private_key.public_key()), published=published)
