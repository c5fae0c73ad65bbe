"""The device tools as an operator runs them: real subprocesses against a running platform."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.devices.helpers import device_detail, provisioned_device, register_device
from tests.support import ADMIN_TOKEN, RunningPlatform


async def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qris_soundbox.tools.cli",
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, stdout.decode(), stderr.decode()


async def test_acl_template_is_printed_and_passes_its_own_check(tmp_path: Path) -> None:
    code, out, _ = await _cli("acl", "check", "--print-template")
    assert code == 0
    assert "pattern write devices/%u/uplink/#" in out and "pattern read devices/%u/downlink/#" in out
    template = tmp_path / "acl"
    template.write_text(out)
    code, out, _ = await _cli("acl", "check", "--file", str(template))
    assert code == 0 and "OK" in out


async def test_acl_check_refuses_rules_that_reach_other_devices(tmp_path: Path) -> None:
    cases = {
        "wildcard.yaml": "rules:\n  - {action: subscribe, topic: 'devices/+/downlink/#'}\n  - {action: publish, topic: 'devices/%u/uplink/#'}\n",
        "shared.acl": "pattern readwrite devices/#\n",
        "partial.yaml": "rules:\n  - {action: subscribe, topic: 'devices/x%u/downlink/#'}\n  - {action: publish, topic: 'devices/%u/uplink/#'}\n",
        "nopublish.yaml": "rules:\n  - {action: subscribe, topic: 'devices/%u/downlink/#'}\n",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        code, _, err = await _cli("acl", "check", "--file", str(path))
        assert code == 1, (name, err)
        assert "problem" in err and "Traceback" not in err
    code, _, err = await _cli("acl", "check", "--file", str(tmp_path / "missing.yaml"))
    assert code != 0 and "Traceback" not in err


async def test_device_provision_prints_a_working_profile(running: RunningPlatform) -> None:
    device = await register_device(running)
    code, out, err = await _cli(
        "device",
        "provision",
        "--device-id",
        device["id"],
        "--base-url",
        running.http_url,
        "--json",
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0, err
    profile = json.loads(out)
    assert profile["username"] == profile["client_id"] == device["id"]
    assert (profile["host"], profile["port"]) == (running.mqtt_host, running.mqtt_port)
    assert profile["subscribe"] == f"devices/{device['id']}/downlink/#"
    async with running.mqtt(profile["username"], profile["password"], client_id=profile["client_id"]):
        pass
    assert (await device_detail(running, device["id"]))["credential"]["fingerprint"] == profile["fingerprint"]

    code, out, err = await _cli(
        "device",
        "provision",
        "--device-id",
        device["id"],
        "--base-url",
        running.http_url,
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0 and "client id" in out and device["id"] in out
    code, _, err = await _cli(
        "device",
        "provision",
        "--device-id",
        "dev_missing",
        "--base-url",
        running.http_url,
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code != 0 and "not_found" in err and "Traceback" not in err


async def test_acl_smoke_proves_a_cannot_reach_b(running: RunningPlatform) -> None:
    device_a, secret_a = await provisioned_device(running)
    device_b, _ = await provisioned_device(running)
    code, out, err = await _cli(
        "acl",
        "smoke",
        "--broker-url",
        f"mqtt://{running.mqtt_host}:{running.mqtt_port}",
        "--base-url",
        running.http_url,
        env={
            "MQTT_TEST_DEVICE_A_USERNAME": device_a,
            "MQTT_TEST_DEVICE_A_PASSWORD": secret_a,
            "MQTT_TEST_DEVICE_B_USERNAME": device_b,
            "ADMIN_TOKEN": ADMIN_TOKEN,
        },
    )
    assert code == 0, out + err
    assert "FAIL" not in out and out.count("PASS") == 8
    assert (await device_detail(running, device_b))["acl_denials"] == 0


async def test_acl_smoke_fails_with_a_wrong_password(running: RunningPlatform) -> None:
    device_a, _ = await provisioned_device(running)
    code, out, _ = await _cli(
        "acl",
        "smoke",
        "--broker-url",
        f"mqtt://{running.mqtt_host}:{running.mqtt_port}",
        env={
            "MQTT_TEST_DEVICE_A_USERNAME": device_a,
            "MQTT_TEST_DEVICE_A_PASSWORD": "wrong",
            "MQTT_TEST_DEVICE_B_USERNAME": "dev_b",
        },
    )
    assert code == 1 and "FAIL" in out
