"""The platform's notification key: created on first start, published by id, rotated with overlap."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.partners.helpers import new_rsa_key
from tests.support import PlatformFactory


def key_id(public_pem: str) -> str:
    der = serialization.load_pem_public_key(public_pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:16]


async def test_a_rotation_publishes_both_keys(platform_factory: PlatformFactory, tmp_path: Path) -> None:
    new_private, new_public = new_rsa_key()
    _, old_public = new_rsa_key()
    (tmp_path / "new.pem").write_bytes(
        new_private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "old.pub").write_text(old_public)
    running = await platform_factory.start(
        snap_private_key_file=str(tmp_path / "new.pem"), snap_previous_public_key_file=str(tmp_path / "old.pub")
    )
    current = await running.http.get("/snap/public-key.pem")
    assert current.text.strip() == new_public.strip() and current.headers["x-key-id"] == key_id(new_public)
    previous = await running.http.get(f"/snap/keys/{key_id(old_public)}")
    assert previous.status_code == 200 and previous.text.strip() == old_public.strip()
    assert (await running.http.get("/snap/keys/0000000000000000")).status_code == 404
    await platform_factory.stop(running)


async def test_a_file_that_is_not_a_key_stops_start_up(platform_factory: PlatformFactory, tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(Exception, match="SNAP_PRIVATE_KEY_FILE"):
        await platform_factory.start(snap_private_key_file=str(tmp_path / "bad.pem"))
