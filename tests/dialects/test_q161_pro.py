"""A real MQTT client speaking exactly the Q161 Pro's protocol (SPEC §17), not the simulator's code: it asks
for a dynamic QR on the shared ``qris/request``, hears ``QR:...`` and its payment on ``topic_{device_id}``,
and cannot ask in another device's name. Real broker, real HTTP, real PostgreSQL."""

from __future__ import annotations

import aiomqtt
import msgspec

from qris_soundbox.core.qris import parse_qris
from tests.devices.helpers import device_detail, eventually, first_message
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox
from tests.support import RunningPlatform


async def _q161(running: RunningPlatform) -> tuple[dict, str, str]:
    return await bound_soundbox(running, "q161-pro")


async def _denials(running: RunningPlatform, device_id: str) -> int:
    return int((await device_detail(running, device_id))["acl_denials"])


async def _qr(device: aiomqtt.Client, device_id: str, amount_sen: str) -> bytes | None:
    await device.publish("qris/request", f"{device_id}|{amount_sen}".encode(), qos=1)
    message = await first_message(device, timeout=5)
    if message is None:
        return None
    assert str(message.topic) == f"topic_{device_id}"
    return bytes(message.payload)  # type: ignore[arg-type]


async def test_a_q161_pro_gets_a_dynamic_qr_and_hears_its_payment(running: RunningPlatform) -> None:
    ids, device_id, secret = await _q161(running)
    async with running.mqtt(device_id, secret) as device:
        await device.subscribe(f"topic_{device_id}", qos=1)
        payload = await _qr(device, device_id, "2500000")  # 25,000 rupiah in sen
        assert payload is not None and payload.startswith(b"QR:")
        qris = parse_qris(payload[3:].decode())
        assert qris.amount == 25_000 and qris.point_of_initiation == "dynamic"
        transactions = (
            await running.http.get(
                f"/admin/transactions?terminal_id={ids['terminal_id']}", headers=running.admin_headers
            )
        ).json()["items"]
        assert [t["amount"] for t in transactions] == [25_000]

        paid = await post_callback(running, callback_body(amount=25_000, transaction_id=transactions[0]["id"]))
        assert paid.status_code == 200, paid.text
        message = await first_message(device, timeout=5)
        assert message is not None and str(message.topic) == f"topic_{device_id}" and message.qos == 1
        assert msgspec.json.decode(message.payload) == {
            "type": "PAYMENT_NOTIFICATION",
            "status": "SUCCESS",
            "amount": 2_500_000,
            "audio_sequence": [
                "pembayaran_qris_diterima.mp3",
                "dua.mp3",
                "puluh.mp3",
                "lima.mp3",
                "ribu.mp3",
                "rupiah.mp3",
            ],
        }

    # Its PUBACK was its ack: the announcement is not resent (the device cannot de-duplicate it).
    async def acked() -> bool:
        txn = (
            await running.http.get(f"/admin/transactions/{transactions[0]['id']}", headers=running.admin_headers)
        ).json()
        return (txn.get("notification") or {}).get("status") == "acked"

    assert await eventually(acked)


async def test_a_q161_pro_cannot_ask_in_another_devices_name(running: RunningPlatform) -> None:
    victim_ids, victim_id, victim_secret = await _q161(running)
    _, attacker_id, attacker_secret = await _q161(running)
    async with running.mqtt(victim_id, victim_secret) as victim, running.mqtt(attacker_id, attacker_secret) as attacker:
        await victim.subscribe(f"topic_{victim_id}", qos=1)
        # Another device's downlink topic is not its to hear: refused by the ACL (SUBACK 0x80).
        await attacker.subscribe(f"topic_{victim_id}", qos=1)
        await attacker.subscribe(f"topic_{attacker_id}", qos=1)
        await attacker.publish("qris/request", f"{victim_id}|100000".encode(), qos=1)
        await attacker.publish(f"topic_{victim_id}", b"QR:forged", qos=1)
        assert await first_message(victim, timeout=1) is None
        assert await first_message(attacker, timeout=0.3) is None

        async def counted() -> bool:
            return await _denials(running, attacker_id) >= 3

        assert await eventually(counted)
    transactions = (
        await running.http.get(
            f"/admin/transactions?terminal_id={victim_ids['terminal_id']}", headers=running.admin_headers
        )
    ).json()
    assert transactions["items"] == []


async def test_bad_q161_pro_input_is_refused_and_the_broker_carries_on(running: RunningPlatform) -> None:
    _, device_id, secret = await _q161(running)
    bad = [
        b"",
        b"|",
        device_id.encode(),
        f"{device_id}|".encode(),
        f"{device_id}|100|1".encode(),
        f"{device_id}|1500.50".encode(),  # a fraction of a sen
        f"{device_id}|150050".encode(),  # a fraction of a rupiah
        f"{device_id}|-500".encode(),
        f"{device_id}|+500".encode(),
        f"{device_id}|1e5".encode(),
        f"{device_id}|0".encode(),
        f"{device_id}|9999999999999999999999".encode(),
        f"{device_id}|1000000000100".encode(),  # 10,000,000,001 rupiah: above the platform's maximum
        f"{device_id}|\u0661\u0660\u0660".encode(),  # Arabic-Indic digits
        b"\xff\xfe|100",
        b"x" * 300,
    ]
    async with running.mqtt(device_id, secret) as device:
        await device.subscribe(f"topic_{device_id}", qos=1)
        for payload in bad:
            await device.publish("qris/request", payload, qos=1)
        # A topic outside the dialect, and the native topics the dialect replaces.
        await device.publish(
            f"devices/{device_id}/uplink/dynamic-qr/request", b'{"request_id":"r","amount":1000}', qos=1
        )
        await device.publish("qris/other", b"x", qos=1)
        assert await first_message(device, timeout=0.5) is None
        # Still served: a good request after all of that gets its QR.
        answer = await _qr(device, device_id, "100000")
        assert answer is not None and parse_qris(answer[3:].decode()).amount == 1_000

        async def counted() -> bool:
            return await _denials(running, device_id) >= len(bad) + 2

        assert await eventually(counted)


async def test_the_model_list_names_each_models_dialect(running: RunningPlatform) -> None:
    models = (await running.http.get("/admin/device-models", headers=running.admin_headers)).json()
    items = models["items"] if isinstance(models, dict) else models
    dialects = {m["id"]: m["dialect"] for m in items}
    assert dialects["q161-pro"] == "q161-pro" and dialects["generic-screen"] == "native"
    q161 = next(m for m in items if m["id"] == "q161-pro")
    assert q161["builtin"] and q161["capabilities"]["screen"] and q161["capabilities"]["dynamic_qr"]


async def test_the_model_list_marks_the_models_that_cannot_carry_a_signature(running: RunningPlatform) -> None:
    items = (await running.http.get("/admin/device-models", headers=running.admin_headers)).json()["items"]
    signed = {m["id"]: m["signs_announcements"] for m in items}
    # The Q161 Pro's PAYMENT_NOTIFICATION has no field for it: a forged one sounds like a real one.
    assert signed["q161-pro"] is False
    assert signed["generic-audio"] is True and signed["generic-screen"] is True
    one = await running.http.get("/admin/device-models/q161-pro", headers=running.admin_headers)
    assert one.json()["signs_announcements"] is False
