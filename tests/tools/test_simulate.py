"""The soundbox simulator as a vendor runs it: a real subprocess, provisioned through
the admin API, on a real MQTT session against the running platform."""

from __future__ import annotations

import json

from qris_soundbox.tools.simulate import spoken
from tests.devices.helpers import eventually
from tests.onboarding import onboarded_terminal
from tests.payments.helpers import callback_body, post_callback
from tests.support import ADMIN_TOKEN, RunningPlatform
from tests.tools.helpers import LiveCli, run_cli


async def notification_status(running: RunningPlatform, transaction_id: str) -> str | None:
    txn = (await running.http.get(f"/admin/transactions/{transaction_id}", headers=running.admin_headers)).json()
    return (txn.get("notification") or {}).get("status")


async def test_simulated_soundbox_announces_acks_and_ignores_a_resend(running: RunningPlatform) -> None:
    terminal_id = (await onboarded_terminal(running))["terminal_id"]
    sim = await LiveCli.start(
        "simulate",
        "--provision",
        "1",
        "--bind-terminal",
        terminal_id,
        "--base-url",
        running.http_url,
        "--heartbeat-s",
        "0",
        "--json",
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    try:
        provisioned = await sim.wait_for(lambda line: line.startswith("provisioned "))
        device_id = provisioned.split()[1]
        assert f"bound to {terminal_id}" in provisioned
        await sim.wait_for(lambda line: "listening on" in line)

        paid = await post_callback(running, callback_body(amount=25_000, terminal_id=terminal_id))
        transaction_id = paid.json()["transaction_id"]
        said = await sim.wait_for(lambda line: transaction_id in line)
        assert said.startswith(f'[{device_id}] "Pembayaran QRIS diterima, dua puluh lima ribu rupiah"')
        assert await eventually(lambda: _is(running, transaction_id, "acked")), "the simulator's ack never landed"

        # What a lost ack leaves behind: the platform still thinks the message is unacknowledged
        # and due, so the outbox sends it again with the same message_id.
        message_id = await running.platform.db.pool.fetchval(
            "UPDATE device_outbox SET status = 'sent', acked_at = NULL, next_attempt_at = now()"
            " WHERE transaction_id = $1 AND kind = 'payment' RETURNING message_id",
            transaction_id,
        )
        await sim.wait_for(lambda line: f"duplicate payment {message_id}" in line)
        assert await eventually(lambda: _is(running, transaction_id, "acked")), "the resend was not acked again"

        # Config is acked applied and a command succeeded: the platform's own status says so.
        pushed = await running.http.patch(
            f"/admin/devices/{device_id}/config", json={"volume": 55}, headers=running.admin_headers
        )
        assert pushed.status_code == 200, pushed.text
        await sim.wait_for(lambda line: "applied" in line and '"volume": 55' in line)
        assert await eventually(lambda: _config_in_sync(running, device_id)), "the config ack was not applied"
        command = (
            await running.http.post(
                f"/admin/devices/{device_id}/commands", json={"type": "play_test_sound"}, headers=running.admin_headers
            )
        ).json()
        await sim.wait_for(lambda line: command["id"] in line)
        assert await eventually(lambda: _command_status(running, device_id, command["id"], "acked"))
    finally:
        code, lines = await sim.interrupt()
    summary = json.loads(lines[-1])
    assert code == 0
    assert summary["connected"] == 1 and summary["announced"] == 1 and summary["duplicates"] == 1
    assert summary["acks"] == 4 and summary["payment_latency"]["count"] == 1
    assert sum(transaction_id in line for line in lines) == 1, "the payment was announced more than once"


async def _is(running: RunningPlatform, transaction_id: str, status: str) -> bool:
    return await notification_status(running, transaction_id) == status


async def _config_in_sync(running: RunningPlatform, device_id: str) -> bool:
    status = (await running.http.get(f"/admin/devices/{device_id}/config/status", headers=running.admin_headers)).json()
    return status["drift"] is False and status["reported_version"] == status["desired_version"]


async def _command_status(running: RunningPlatform, device_id: str, command_id: str, status: str) -> bool:
    command = (
        await running.http.get(f"/admin/devices/{device_id}/commands/{command_id}", headers=running.admin_headers)
    ).json()
    return command["status"] == status


async def test_simulator_refused_with_a_wrong_secret_exits_non_zero(running: RunningPlatform) -> None:
    code, out, _ = await run_cli(
        "simulate",
        "--device-id",
        "dev_does_not_exist",
        "--secret",
        "wrong",
        "--mqtt-host",
        running.mqtt_host,
        "--mqtt-port",
        str(running.mqtt_port),
        "--duration",
        "10",
        "--json",
    )
    assert code == 1
    assert "CONNECT refused" in out and json.loads(out.splitlines()[-1])["refused"] == 1


def test_what_the_merchant_hears_follows_the_announcement_format() -> None:
    assert (
        spoken({"format": "text", "text": "QRIS payment received, ten rupiah"}, 10)
        == "QRIS payment received, ten rupiah"
    )
    assert (
        spoken({"format": "clips", "clips": ["pembayaran_qris_diterima", "sepuluh", "rupiah"]}, 10)
        == "pembayaran_qris_diterima sepuluh rupiah"
    )
    assert spoken({"format": "amount_only", "amount": 1500000}, 1_500_000) == "Rp 1.500.000"


async def test_fleet_mode_connects_every_session_and_heartbeats(running: RunningPlatform, tmp_path) -> None:
    saved = tmp_path / "fleet.csv"
    code, out, err = await run_cli(
        "simulate",
        "--provision",
        "3",
        "--save-devices",
        str(saved),
        "--base-url",
        running.http_url,
        "--fleet",
        "3",
        "--heartbeat-s",
        "1",
        "--duration",
        "3",
        "--json",
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0, err
    assert "fleet: 3 of 3 sessions connected" in out
    summary = json.loads(out.splitlines()[-1])
    assert summary["connected"] == 3 and summary["refused"] == 0 and summary["heartbeats"] >= 6
    assert saved.stat().st_mode & 0o077 == 0, "the credentials file is readable by others"
    rows = [line.split(",") for line in saved.read_text().splitlines()[1:]]
    device_ids = [device_id for device_id, _ in rows]
    assert len(rows) == 3 and not any(secret in out for _, secret in rows), "a secret was printed"
    detail = (await running.http.get(f"/admin/devices/{device_ids[0]}", headers=running.admin_headers)).json()
    assert detail["last_heartbeat_at"] is not None


async def test_screen_device_shows_a_dynamic_qr_it_requested_over_mqtt(running: RunningPlatform) -> None:
    terminal = await onboarded_terminal(running, qris_ready=True, merchant_name="Warung Sim")
    code, out, err = await run_cli(
        "simulate",
        "--provision",
        "1",
        "--model",
        "generic-screen",
        "--bind-terminal",
        terminal["terminal_id"],
        "--base-url",
        running.http_url,
        "--dynamic-qr",
        "12345",
        "--duration",
        "4",
        "--heartbeat-s",
        "0",
        "--json",
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0, err
    assert "dynamic QR txn_" in out and "(Rp 12345 to Warung Sim, Jakarta;" in out
    assert json.loads(out.splitlines()[-1])["dynamic_qr"] == 1


async def test_simulate_dialect_q161_pro_gets_its_qr_the_vendors_way(running: RunningPlatform) -> None:
    terminal = await onboarded_terminal(running, qris_ready=True, merchant_name="Warung Q161")
    code, out, err = await run_cli(
        "simulate",
        "--provision",
        "1",
        "--model",
        "q161-pro",
        "--dialect",
        "q161-pro",
        "--bind-terminal",
        terminal["terminal_id"],
        "--base-url",
        running.http_url,
        "--dynamic-qr",
        "12345",
        "--duration",
        "4",
        "--json",
        env={"ADMIN_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0, err
    assert "listening on topic_dev_" in out and "(Rp 12345 to Warung Q161, Jakarta;" in out
    summary = json.loads(out.splitlines()[-1])
    assert summary["dynamic_qr"] == 1 and summary["heartbeats"] == 0
