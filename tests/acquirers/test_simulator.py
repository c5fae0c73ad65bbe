"""The acquirer simulator as a real process over real HTTP: its signed notifications, in each
mode, make the bound soundbox (a real MQTT client) speak; ``--pay`` does the same once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.devices.helpers import first_message
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform

CLIENT_KEY = "simulated-bank"
CLIENT_SECRET = "simulator-hmac-secret-01"


def simulate_args(running: RunningPlatform, key_file: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        "acquirer",
        "simulate",
        "--platform-url",
        running.http_url,
        "--client-key",
        CLIENT_KEY,
        "--client-secret",
        CLIENT_SECRET,
        "--key-file",
        str(key_file),
        *extra,
    ]


@pytest.fixture(scope="module")
async def simulator(running: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict]:
    key_file = tmp_path_factory.mktemp("sim") / "key.pem"
    process = await asyncio.create_subprocess_exec(
        *simulate_args(running, key_file, "--port", "0"),
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"LOG_LEVEL": "WARNING"},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        started = json.loads(line)
        made = await running.http.post(
            "/admin/acquirers",
            json={
                "code": "sim",
                "name": "Simulated Bank",
                "protocol": "snap",
                "settings": {
                    "client_key": started["client_key"],
                    "public_key_pem": started["public_key_pem"],
                    "client_secret": CLIENT_SECRET,
                    "notify_signature": "symmetric",
                },
            },
            headers=running.admin_headers,
        )
        assert made.status_code == 201, made.text
        yield started | {"key_file": key_file}
    finally:
        process.terminate()
        await process.wait()


async def test_each_mode_makes_the_soundbox_speak(running: RunningPlatform, simulator: dict) -> None:
    ids, device_id, secret = await bound_soundbox(running)
    attached = await running.http.put(
        f"/admin/merchants/{ids['merchant_id']}/acquirer", json={"acquirer_code": "sim"}, headers=running.admin_headers
    )
    assert attached.status_code == 200
    terminal_code = (
        await running.http.get(f"/admin/terminals/{ids['terminal_id']}", headers=running.admin_headers)
    ).json()["terminal_code"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{simulator['port']}", timeout=30) as control:
        for mode, amount in (("symmetric", 11_000), ("asymmetric", 22_000)):
            changed = await running.http.patch(
                "/admin/acquirers/sim", json={"settings": {"notify_signature": mode}}, headers=running.admin_headers
            )
            assert changed.status_code == 200, changed.text
            async with running.mqtt(device_id, secret) as device:
                await subscribed(device, device_id)
                # The terminal is known at the acquirer by its terminal_code (the default).
                answer = await control.post(
                    "/simulator/pay", json={"terminal_id": terminal_code, "amount": amount, "mode": mode}
                )
                assert answer.json() == {
                    "status": 200,
                    "platform": {"responseCode": "2005200", "responseMessage": "Successful"},
                }
                message = await first_message(device, timeout=5)
                assert message is not None, mode
                payload = msgspec.json.decode(message.payload)
                assert payload["amount"] == amount
                await device.publish(
                    f"devices/{device_id}/uplink/payment/ack",
                    msgspec.json.encode({"message_id": payload["message_id"]}),
                    qos=1,
                )
        stats = (await control.get("/simulator/stats")).json()
        assert stats["notify"] == 2

    # --pay: one asymmetric notification from a one-shot process, then exit 0.
    once = await asyncio.to_thread(
        subprocess.run,
        simulate_args(running, simulator["key_file"], "--mode", "asymmetric", "--pay", f"{terminal_code}:5000"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert once.returncode == 0, once.stdout + once.stderr
    assert json.loads(once.stdout)["responseCode"] == "2005200"
