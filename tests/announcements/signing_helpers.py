"""What the signing tests share, written from docs/announcement-signing.md and not from the code under test:
keys made by ``openssl``, the canonical bytes spelled out again, verification with ``cryptography`` directly."""

from __future__ import annotations

import base64
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def openssl_key(path: Path) -> Path:
    """A new Ed25519 private key (PKCS#8 PEM) made by openssl, as an operator would make one."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True)
    return path


def openssl_public(private: Path, path: Path) -> Path:
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(path)], check=True)
    return path


def private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def kid(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(raw(key)).hexdigest()[:16]


def signed_bytes(device_id: str, kind: str, body: dict[str, Any], counter: int) -> bytes:
    """docs/announcement-signing.md, "The bytes": nine lines joined by one LF, no trailing LF."""
    lines = [
        "qris-soundbox/announcement/v1",
        device_id,
        body["message_id"],
        kind,
        str(body["amount"]),
        body["currency"],
        body["transaction_id"],
        body["paid_at"],
        str(counter),
    ]
    return "\n".join(lines).encode()


def verifies(public: Ed25519PublicKey, device_id: str, kind: str, body: dict[str, Any]) -> bool:
    try:
        public.verify(base64.b64decode(body["sig"]), signed_bytes(device_id, kind, body, body["counter"]))
    except Exception:
        return False
    return True


def sign_as(key: Ed25519PrivateKey, device_id: str, body: dict[str, Any], counter: int) -> dict[str, Any]:
    """``body`` signed with ``key`` for ``device_id``, as the platform (or a forger with another key) would."""
    sig = key.sign(signed_bytes(device_id, "payment", body, counter))
    return body | {
        "device_id": device_id,
        "counter": counter,
        "kid": kid(key.public_key()),
        "sig": base64.b64encode(sig).decode(),
    }
