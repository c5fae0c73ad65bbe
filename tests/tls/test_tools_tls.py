"""The MQTT tools over TLS, run as an operator runs them (real subprocesses against the TLS platform)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from qris_soundbox.tools.api import DeviceCredential
from qris_soundbox.tools.mqtt_tls import TlsOptions, mqtt_target
from tests.devices.helpers import provisioned_device
from tests.onboarding import admin_api, onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import ADMIN_TOKEN
from tests.tls.conftest import TlsPlatform
from tests.tools.helpers import LiveCli, run_cli


async def provision(tls: TlsPlatform, device_id: str, *options: str) -> tuple[str, str]:
    """``device provision`` as a technician runs it: its output and its warnings (stderr)."""
    code, out, err = await run_cli(
        "device",
        "provision",
        "--device-id",
        device_id,
        "--base-url",
        tls.running.http_url,
        *options,
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0, out + err
    return out, err


async def provision_profile(tls: TlsPlatform, device_id: str) -> tuple[dict, str]:
    out, err = await provision(tls, device_id, "--json")
    return json.loads(out), err


async def bound_device_id(tls: TlsPlatform) -> tuple[str, str]:
    """A registered device bound to a fresh terminal (its credential is left to `device provision`)."""
    terminal_id = (await onboarded_terminal(tls.running))["terminal_id"]
    api = admin_api(tls.running)
    device = await api.call(
        "POST", "/admin/devices", json={"serial_number": f"TLS-{terminal_id[-10:]}", "model": "generic-audio"}
    )
    await api.call("POST", f"/admin/devices/{device['id']}/bind", json={"terminal_id": terminal_id})
    return device["id"], terminal_id


async def hears_a_payment(tls: TlsPlatform, sim: LiveCli, terminal_id: str) -> str:
    await sim.wait_for(lambda line: "listening on" in line)
    paid = await post_callback(tls.running, callback_body(amount=25_000, terminal_id=terminal_id))
    transaction_id = paid.json()["transaction_id"]
    return await sim.wait_for(lambda line: transaction_id in line)


async def test_simulate_with_tls_and_the_ca_from_the_provisioned_profile_speaks_a_payment(
    tls: TlsPlatform, tmp_path: Path
) -> None:
    device_id, terminal_id = await bound_device_id(tls)
    profile, err = await provision_profile(tls, device_id)
    assert (profile["scheme"], profile["port"]) == ("mqtts", tls.tls_port)
    assert "WARNING: MQTT_PUBLIC_HOST is not set" in err  # the tests hand out 127.0.0.1
    cafile = tmp_path / "broker-ca.pem"
    cafile.write_text(profile["ca_pem"])
    sim = await LiveCli.start(
        "simulate",
        "--device-id",
        profile["username"],
        "--mqtt-host",
        profile["host"],
        "--mqtt-port",
        str(profile["port"]),
        "--tls",
        "--cafile",
        str(cafile),
        "--base-url",
        tls.running.http_url,
        "--heartbeat-s",
        "0",
        env={"DEVICE_SECRET": profile["password"]},
    )
    try:
        connected = await sim.wait_for(lambda line: "connected to" in line)
        assert f"mqtts://{profile['host']}:{profile['port']}" in connected
        said = await hears_a_payment(tls, sim, terminal_id)
        assert '"Pembayaran QRIS diterima, dua puluh lima ribu rupiah"' in said
    finally:
        await sim.interrupt()


async def test_simulate_takes_the_profile_file_alone(tls: TlsPlatform, tmp_path: Path) -> None:
    device_id, terminal_id = await bound_device_id(tls)
    profile, _ = await provision_profile(tls, device_id)
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    sim = await LiveCli.start("simulate", "--profile", str(path), "--heartbeat-s", "0")
    try:
        said = await hears_a_payment(tls, sim, terminal_id)
        assert "dua puluh lima ribu rupiah" in said
    finally:
        await sim.interrupt()


async def test_device_provision_check_connects_over_tls_and_insecure_says_it_loudly(tls: TlsPlatform) -> None:
    device_id, _ = await bound_device_id(tls)
    out, _ = await provision(tls, device_id, "--check")
    assert f"check: connected to mqtts://127.0.0.1:{tls.tls_port}" in out
    assert "SHA-256 fingerprint" in out and "BEGIN CERTIFICATE" in out

    _, err = await provision(tls, device_id, "--check", "--insecure")
    assert "WARNING: --insecure: the broker's certificate is NOT verified" in err

    code, _, err = await run_cli("device", "provision", "--device-id", device_id, "--tls")
    assert code != 0 and "the TLS options are for --check" in err


async def test_acl_smoke_speaks_tls_to_an_mqtts_url(tls: TlsPlatform) -> None:
    """It used to turn mqtts:// into mqtt:// silently: plain MQTT to the TLS port, refused."""
    device_a, secret_a = await provisioned_device(tls.running)
    device_b, _ = await provisioned_device(tls.running)
    code, out, err = await run_cli(
        "acl",
        "smoke",
        "--broker-url",
        f"mqtts://127.0.0.1:{tls.tls_port}",
        "--cafile",
        str(tls.pki.ca_file),
        env={
            "MQTT_TEST_DEVICE_A_USERNAME": device_a,
            "MQTT_TEST_DEVICE_A_PASSWORD": secret_a,
            "MQTT_TEST_DEVICE_B_USERNAME": device_b,
        },
    )
    assert code == 0, out + err
    assert "FAIL" not in out and out.count("PASS") == 7
    assert f"over mqtts://127.0.0.1:{tls.tls_port}" in out


async def test_smoke_runs_end_to_end_over_tls_from_the_profile(tls: TlsPlatform) -> None:
    from tests.support import WEBHOOK_SECRET

    code, out, err = await run_cli(
        "smoke",
        "--base-url",
        tls.running.http_url,
        env={"ADMIN_TOKEN": ADMIN_TOKEN, "INTEGRATION_WEBHOOK_SECRET": WEBHOOK_SECRET},
    )
    assert code == 0, out + err
    assert f"PASS  device connected over MQTT, subscribed to its downlinks  (mqtts://127.0.0.1:{tls.tls_port})" in out


def options(**given: object) -> TlsOptions:
    args = argparse.Namespace(tls=False, cafile=None, certfile=None, keyfile=None, insecure=False)
    vars(args).update(given)
    return TlsOptions.from_args(args)


def test_tls_asked_for_against_a_plain_profile_goes_to_the_tls_port() -> None:
    plain = DeviceCredential(device_id="dev_x", secret="s", broker_host="mqtt.example.id", broker_port=1883)
    assert mqtt_target(options(), None, None, plain).url == "mqtt://mqtt.example.id:1883"
    assert mqtt_target(options(tls=True), None, None, plain).url == "mqtts://mqtt.example.id:8883"
    assert mqtt_target(options(tls=True), "10.0.0.2", 9883, plain).url == "mqtts://10.0.0.2:9883"


def test_unusable_tls_files_stop_the_tool_with_a_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="cannot use the TLS files"):
        options(cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(SystemExit, match="--keyfile needs --certfile"):
        options(keyfile=str(tmp_path / "device.key"))
