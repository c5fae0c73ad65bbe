"""Two broker nodes and an API node as separate ``serve`` processes on one PostgreSQL, behind HAProxy
with deploy/haproxy.cfg: devices spread over both broker nodes; one node is SIGKILLed under a steady
stream of payments; its devices reconnect through HAProxy to the other node, and every payment the
acquirer was told about (200) is announced, none heard again after its ack, the ledger balanced."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest

from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually
from tests.serve_process import Device, Serve, assert_books
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, free_port

HAPROXY_CFG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"
DEVICES = 8
RATE_PER_S = 50
BEFORE_KILL_S = 3.0
AFTER_KILL_S = 5.0
QUIET_S = 7.0  # longer than the first resend back-off: a resend of an acked payment would show by then


class HAProxy:
    def __init__(self, directory: Path, brokers: list[Serve], api: Serve) -> None:
        self.mqtt_port, self.http_port = free_port(), free_port()
        self.log = directory / "haproxy.log"
        self.env = {
            "MQTT_LB_BIND": f"127.0.0.1:{self.mqtt_port}",
            "HTTP_LB_BIND": f"127.0.0.1:{self.http_port}",
            "BROKER_1": f"127.0.0.1:{brokers[0].mqtt_port}",
            "BROKER_2": f"127.0.0.1:{brokers[1].mqtt_port}",
            "API_1": f"127.0.0.1:{api.http_port}",
        }
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                haproxy, "-db", "-f", str(HAPROXY_CFG), env=self.env, stdout=log, stderr=asyncio.subprocess.STDOUT
            )

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()


@pytest.fixture
async def cluster(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    quick = {"INSTANCE_HEARTBEAT_INTERVAL_MS": "1000"}
    brokers = [Serve(database_url, tmp_path, roles=("broker",), env=quick) for _ in range(2)]
    api = Serve(database_url, tmp_path, roles=("api", "worker"), env=quick | {"RATE_LIMIT_ENABLED": "false"})
    proxy = HAProxy(tmp_path, brokers, api)
    try:
        for serve in (*brokers, api):
            await serve.start()
        await proxy.start()
        yield brokers, api, proxy
    finally:
        await proxy.stop()
        for serve in (api, *brokers):
            await serve.stop()


async def test_sigkill_of_a_broker_node_under_load_loses_nothing_and_announces_nothing_twice(
    cluster: tuple[list[Serve], Serve, HAProxy], database_url: str
) -> None:
    brokers, api, proxy = cluster
    lb_url = f"http://127.0.0.1:{proxy.http_port}"
    assert await eventually(lambda: _answers(lb_url), timeout=WAIT_S), f"HAProxy did not start:\n{_read(proxy.log)}"
    async with AdminApi(lb_url, ADMIN_TOKEN) as admin:
        onboarded = await admin.onboard_terminal(f"Warung Cluster {uuid.uuid4().hex[:6]}")
        terminals = [onboarded["terminal"]["id"]]
        credentials = []
        for index in range(DEVICES):
            if index:
                terminal = await admin.create_terminal(onboarded["outlet"]["id"], {"name": f"Kasir {index}"})
                terminals.append(terminal["id"])
            credentials.append(
                await admin.provision_device(f"SN-CL-{uuid.uuid4().hex[:10]}", "generic-audio", terminals[index])
            )
    devices = [Device(credential, proxy.mqtt_port) for credential in credentials]
    tasks = [asyncio.create_task(device.run()) for device in devices]
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as db:
        try:
            await asyncio.wait_for(asyncio.gather(*(d.subscribed.wait() for d in devices)), WAIT_S)
            ids = [c.device_id for c in credentials]
            assert await eventually(lambda: _all_online(db, ids), WAIT_S), "devices not recorded online"
            holders = await _holders(db, ids)
            assert len(set(holders.values())) == 2, f"HAProxy did not spread the devices: {holders}"
            victim_instance = await db.fetchval(
                "SELECT id FROM runtime_instances WHERE pid = $1", brokers[0].proc.pid if brokers[0].proc else 0
            )
            moved = [device_id for device_id, instance in holders.items() if instance == victim_instance]
            assert moved, "no device on the node to kill"

            answered, amounts = await _steady_payments(lb_url, terminals, brokers[0])

            for device, terminal_id in zip(devices, terminals, strict=True):
                own = {txn for event, txn in answered.items() if amounts[event][1] == terminal_id}
                assert await eventually(lambda d=device, o=own: _heard_all(d, o), timeout=30), (
                    f"{len(own - set(device.heard))} payment(s) answered 200 never announced"
                )
            assert await eventually(lambda: _all_acked(db), timeout=30), "announcements left unacknowledged"
            await asyncio.sleep(QUIET_S)
            now_holders = await _holders(db, moved)
            assert set(now_holders.values()) == {await _instance_of(db, brokers[1])}, now_holders
            for terminal_id in terminals:
                mine = {e: t for e, t in answered.items() if amounts[e][1] == terminal_id}
                await assert_books(db, terminal_id, mine, {e: amounts[e][0] for e in mine})
            repeats = [message_id for device in devices for message_id in device.heard_after_ack]
            assert repeats == [], f"heard again after their ack: {repeats}"
            assert all(len(ids) == 1 for device in devices for ids in device.heard.values())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _steady_payments(
    url: str, terminals: list[str], victim: Serve
) -> tuple[dict[str, str], dict[str, tuple[int, str]]]:
    """``RATE_PER_S`` signed callbacks a second over the terminals; the victim is SIGKILLed on the way.
    Returns event id → transaction id for every 200, and event id → (amount, terminal)."""
    answered: dict[str, str] = {}
    amounts: dict[str, tuple[int, str]] = {}
    sending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:

        async def send(body: dict) -> None:
            raw = msgspec.json.encode(body)
            response = await http.post(
                "/integrations/qris/callback", content=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
            )
            assert response.status_code == 200, response.text
            answered[body["event_id"]] = response.json()["transaction_id"]

        total = int((BEFORE_KILL_S + AFTER_KILL_S) * RATE_PER_S)
        for index in range(total):
            if index == int(BEFORE_KILL_S * RATE_PER_S):
                await victim.kill()
            terminal_id = terminals[index % len(terminals)]
            body = callback_body(amount=10_000 + index, terminal_id=terminal_id)
            amounts[body["event_id"]] = (body["amount"], terminal_id)
            task = asyncio.create_task(send(body))
            sending.add(task)
            task.add_done_callback(sending.discard)
            await asyncio.sleep(1 / RATE_PER_S)
        await asyncio.gather(*sending)
    assert len(answered) == total
    return answered, amounts


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def _holders(db: asyncpg.Pool, device_ids: list[str]) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT id, broker_instance_id FROM devices WHERE id = ANY($1::text[]) AND online", device_ids
    )
    return {row["id"]: row["broker_instance_id"] for row in rows}


async def _all_online(db: asyncpg.Pool, device_ids: list[str]) -> bool:
    return len(await _holders(db, device_ids)) == len(device_ids)


async def _instance_of(db: asyncpg.Pool, serve: Serve) -> str:
    return str(
        await db.fetchval("SELECT id FROM runtime_instances WHERE pid = $1", serve.proc.pid if serve.proc else 0)
    )


async def _heard_all(device: Device, transaction_ids: set[str]) -> bool:
    return transaction_ids <= set(device.heard)


async def _all_acked(db: asyncpg.Pool) -> bool:
    return await db.fetchval("SELECT count(*) FROM device_outbox WHERE kind = 'payment' AND status <> 'acked'") == 0


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
