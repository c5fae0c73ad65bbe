"""Payment announcements carry an Ed25519 signature over the documented bytes, by a key kept in a file,
with a per-device counter that only goes up — across a restart and a key rotation (SPEC §17)."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.announcements.signing_helpers import kid, openssl_key, openssl_public, private_key, raw, verifies
from tests.devices.helpers import first_message
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import PlatformFactory, RunningPlatform


@pytest.fixture(scope="module")
def key_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


async def device_keys(running: RunningPlatform, device_id: str, secret: str) -> dict:
    response = await running.http.get("/device/keys", headers={"X-Device-Id": device_id, "X-Device-Secret": secret})
    assert response.status_code == 200, response.text
    return response.json()


async def announced(running: RunningPlatform, device: aiomqtt.Client, terminal_id: str, amount: int) -> dict:
    paid = await post_callback(running, callback_body(amount=amount, terminal_id=terminal_id))
    assert paid.status_code == 200, paid.text
    while True:  # skip what is not this payment's announcement (a resend of an earlier one)
        message = await first_message(device, timeout=10)
        assert message is not None, "no announcement"
        body = msgspec.json.decode(message.payload)
        if body.get("transaction_id") == paid.json()["transaction_id"]:
            return body


async def test_announcements_are_signed_and_counted_across_a_restart_and_a_rotation(
    platform_factory: PlatformFactory, key_dir: Path
) -> None:
    first_key = openssl_key(key_dir / "first.pem")
    public = private_key(first_key).public_key()
    running = await platform_factory.start(announcement_signing_key_file=str(first_key))
    ids, device_id, secret = await bound_soundbox(running)

    keys = await device_keys(running, device_id, secret)
    assert keys["current_kid"] == kid(public)
    assert [(k["kid"], k["algorithm"], k["current"]) for k in keys["keys"]] == [(kid(public), "Ed25519", True)]
    assert keys["keys"][0]["public_key"] == base64.b64encode(raw(public)).decode()
    rotated = await running.http.post(f"/admin/devices/{device_id}/credentials/rotate", headers=running.admin_headers)
    secret = rotated.json()["mqtt_password"]
    assert rotated.json()["announcement_keys"] == keys, "the connection profile carries the same keys"

    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        one = await announced(running, device, ids["terminal_id"], 10_000)
        two = await announced(running, device, ids["terminal_id"], 20_000)
    for body in (one, two):
        assert body["device_id"] == device_id and body["kid"] == kid(public) and body["currency"] == "IDR"
        assert verifies(public, device_id, "payment", body), body
        # The same bytes for another device, or read as another kind, do not verify.
        assert not verifies(public, "dev_someone_else", "payment", body)
        assert not verifies(public, device_id, "refund", body)
    assert 0 < one["counter"] < two["counter"]
    await platform_factory.stop(running)

    # Rotation with overlap: the new key signs, the previous public key is still published.
    second_key = openssl_key(key_dir / "second.pem")
    second_public = private_key(second_key).public_key()
    running = await platform_factory.start(
        announcement_signing_key_file=str(second_key),
        announcement_previous_public_key_file=str(openssl_public(first_key, key_dir / "first.pub.pem")),
    )
    try:
        keys = await device_keys(running, device_id, secret)
        assert keys["current_kid"] == kid(second_public)
        assert {(k["kid"], k["current"]) for k in keys["keys"]} == {(kid(second_public), True), (kid(public), False)}
        async with running.mqtt(device_id, secret) as device:
            await subscribed(device, device_id)
            three = await announced(running, device, ids["terminal_id"], 30_000)
        assert three["kid"] == kid(second_public) and verifies(second_public, device_id, "payment", three)
        assert not verifies(public, device_id, "payment", three)
        assert three["counter"] > two["counter"], "the counter went back after a restart"
    finally:
        await platform_factory.stop(running)


@pytest.mark.parametrize("content", ["rsa", "garbage"])
async def test_a_signing_key_file_that_is_not_ed25519_stops_the_start_naming_it(
    platform_factory: PlatformFactory, key_dir: Path, content: str
) -> None:
    path = key_dir / f"bad-{content}.pem"
    if content == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    else:
        path.write_text("not a key\n")
    with pytest.raises(Exception, match=f"ANNOUNCEMENT_SIGNING_KEY_FILE {path}"):
        await platform_factory.start(announcement_signing_key_file=str(path))
