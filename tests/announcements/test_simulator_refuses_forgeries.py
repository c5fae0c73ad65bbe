"""A native simulated soundbox (``simulate``, a real subprocess) refuses what the platform did not sign
for it — even when it arrives through the broker itself, as an insider or a broken ACL would deliver it —
and plays the genuine announcement (SPEC §17)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qris_soundbox.broker.server import PlatformBroker
from tests.announcements.signing_helpers import kid, openssl_key, private_key, sign_as
from tests.devices.helpers import eventually
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox
from tests.support import PlatformFactory, RunningPlatform
from tests.tools.helpers import LiveCli


@pytest.fixture(scope="module")
def key_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield openssl_key(Path(tmp) / "announcements.pem")


@pytest.fixture(scope="module")
async def signed(platform_factory: PlatformFactory, key_file: Path) -> RunningPlatform:
    return await platform_factory.start(announcement_signing_key_file=str(key_file))


def fake_payment(message_id: str, amount: int = 5_000_000) -> dict:
    return {
        "message_id": message_id,
        "type": "payment",
        "transaction_id": f"txn_{message_id}",
        "amount": amount,
        "currency": "IDR",
        "paid_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "announcement": {"format": "text", "language": "id", "text": f"FAKE {message_id}"},
    }


async def test_the_simulator_refuses_forged_replayed_and_foreign_announcements_and_plays_the_genuine(
    signed: RunningPlatform, key_file: Path
) -> None:
    broker = signed.platform.broker
    assert isinstance(broker, PlatformBroker)
    ids, device_id, secret = await bound_soundbox(signed)
    platform_key = private_key(key_file)
    topic = f"devices/{device_id}/downlink/payment"

    async def inject(body: dict) -> None:
        # The broker's own delivery: past every ACL, exactly as a genuine downlink travels.
        assert await broker.deliver_to_client(device_id, topic, msgspec.json.encode(body))

    sim = await LiveCli.start(
        "simulate",
        "--device-id",
        device_id,
        "--secret",
        secret,
        "--base-url",
        signed.http_url,
        "--mqtt-host",
        signed.mqtt_host,
        "--mqtt-port",
        str(signed.mqtt_port),
        "--heartbeat-s",
        "0",
        "--json",
    )
    try:
        await sim.wait_for(lambda line: "listening on" in line)

        await inject(fake_payment("unsigned"))
        await sim.wait_for(lambda line: "REFUSED payment unsigned: unsigned" in line)
        await inject(sign_as(Ed25519PrivateKey.generate(), device_id, fake_payment("other-key"), 10**9))
        await sim.wait_for(lambda line: "REFUSED payment other-key: unknown_key" in line)
        # A forger who knows the key id but not the key.
        forged = sign_as(Ed25519PrivateKey.generate(), device_id, fake_payment("forged"), 10**9)
        await inject(forged | {"kid": kid(platform_key.public_key())})
        await sim.wait_for(lambda line: "REFUSED payment forged: forged" in line)
        # Genuinely signed, for another soundbox.
        await inject(sign_as(platform_key, "dev_another_soundbox", fake_payment("foreign"), 10**9))
        await sim.wait_for(lambda line: "REFUSED payment foreign: wrong_device" in line)

        paid = await post_callback(signed, callback_body(amount=25_000, terminal_id=ids["terminal_id"]))
        transaction_id = paid.json()["transaction_id"]
        said = await sim.wait_for(lambda line: transaction_id in line)
        assert said.startswith(f'[{device_id}] "Pembayaran QRIS diterima, dua puluh lima ribu rupiah"'), said
        genuine = await _announcement(signed, device_id, transaction_id)

        # The genuine message with its amount raised; then replayed under a new id with its old counter.
        await inject(genuine | {"message_id": "tampered", "amount": 25_000_000})
        await sim.wait_for(lambda line: "REFUSED payment tampered: forged" in line)
        replayed = sign_as(platform_key, device_id, genuine | {"message_id": "replayed"}, genuine["counter"])
        await inject(replayed)
        await sim.wait_for(lambda line: "REFUSED payment replayed: replayed" in line)
    finally:
        code, lines = await sim.interrupt()
    summary = json.loads(lines[-1])
    assert code == 0, lines
    assert summary["announced"] == 1, lines
    assert summary["refused_announcements"] == {
        "unsigned": 1,
        "unknown_key": 1,
        "forged": 2,
        "wrong_device": 1,
        "replayed": 1,
    }
    assert not any("FAKE" in line for line in lines), "a forged announcement was played"


async def _announcement(running: RunningPlatform, device_id: str, transaction_id: str) -> dict:
    """The payment downlink exactly as the device received it (its trace row), once the broker recorded it."""

    async def traced() -> dict | None:
        rows = await running.platform.db.pool.fetch(
            "SELECT payload FROM device_mqtt_messages WHERE device_id = $1 AND direction = 'downlink'"
            " AND topic LIKE '%/downlink/payment' AND NOT truncated",
            device_id,
        )
        return next(
            (b for b in (json.loads(r["payload"]) for r in rows) if b["transaction_id"] == transaction_id), None
        )

    assert await eventually(lambda: _found(traced))
    body = await traced()
    assert body is not None
    return body


async def _found(lookup: Callable[[], Awaitable[dict | None]]) -> bool:
    return await lookup() is not None
