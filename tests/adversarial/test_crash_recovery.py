"""``serve`` killed (SIGKILL) in the middle of a burst of paid callbacks, then started again on the same database.

The platform is a real subprocess (``qris-soundbox serve``) on the test
PostgreSQL; the merchant, terminal and device are onboarded through its HTTP
API as an operator would (``tools/api.py``); the soundbox is a real MQTT client
that acknowledges every payment it hears and reconnects when the broker goes
away. What the acquirer was told (200) must hold after the crash: the
transaction paid, its three ledger rows balanced, one transaction per event,
and the payment announced to the device, once acknowledged never re-sent as a
new message. Callbacks that got no answer are retried, as an acquirer does,
and each is applied exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import aiomqtt
import asyncpg
import httpx
import msgspec

from qris_soundbox.tools.api import AdminApi, DeviceCredential, callback_body, callback_headers
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET, free_port

CALLBACKS = 300
KILL_AFTER = 100  # 200 answers, then SIGKILL: the rest of the burst is in flight or not yet sent
CONCURRENCY = 16
BANNER = "QRIS Soundbox Platform is running"
# Longer than both resend timers (the outbox's first back-off and broker.yaml's retry_interval, 5 s each):
# an acknowledged announcement would have been sent again by then.
QUIET_S = 7.0


class Serve:
    """``qris-soundbox serve`` as a subprocess on fixed ports (a restart keeps them, as a real host does)."""

    def __init__(self, database_url: str, directory: Path) -> None:
        self.directory = directory
        self.http_port, self.mqtt_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "INTEGRATION_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.directory / f"serve-{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "qris_soundbox.tools.cli",
                "serve",
                "--data-dir",
                str(self.directory),
                "--http-port",
                str(self.http_port),
                "--mqtt-host",
                "127.0.0.1",
                "--mqtt-port",
                str(self.mqtt_port),
                env=self.env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

        async def ready() -> bool:
            assert self.proc is not None and self.proc.returncode is None, self.log.read_text()
            return BANNER in self.log.read_text()

        assert await eventually(ready, timeout=60, interval=0.1), f"serve did not start:\n{self.log.read_text()}"

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: no shutdown handler runs
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), 30)
        except TimeoutError:
            await self.kill()
            raise AssertionError(f"serve did not stop on SIGTERM:\n{self.log.read_text()}") from None


class Device:
    """A soundbox: subscribes to its downlinks, acks every payment, reconnects whenever the broker goes away.
    Records the message ids heard per transaction and the ones whose ack the broker took (PUBACK)."""

    def __init__(self, credential: DeviceCredential, port: int) -> None:
        self.credential, self.port = credential, port
        self.heard: dict[str, set[str]] = defaultdict(set)
        self.acked: set[str] = set()
        self.sessions = 0
        self.subscribed = asyncio.Event()

    async def run(self) -> None:
        device_id = self.credential.device_id
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    username=device_id,
                    password=self.credential.secret,
                    identifier=device_id,
                    timeout=5,
                ) as client:
                    await client.subscribe(f"devices/{device_id}/downlink/#", qos=1)
                    self.sessions += 1
                    self.subscribed.set()
                    async for message in client.messages:
                        if not message.topic.matches(f"devices/{device_id}/downlink/payment"):
                            continue
                        body = msgspec.json.decode(message.payload)
                        self.heard[body["transaction_id"]].add(body["message_id"])
                        await client.publish(
                            f"devices/{device_id}/uplink/payment/ack",
                            msgspec.json.encode({"message_id": body["message_id"]}),
                            qos=1,
                        )
                        self.acked.add(body["message_id"])
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.2)


async def burst(url: str, bodies: list[dict], kill: asyncio.Event) -> dict[str, httpx.Response | None]:
    """Signed callbacks, ``CONCURRENCY`` in flight; ``kill`` is set at the ``KILL_AFTER``-th 200.
    Each event id maps to its answer, or None when the server never answered."""
    answers: dict[str, httpx.Response | None] = {}
    queue = list(reversed(bodies))

    async def worker(http: httpx.AsyncClient) -> None:
        while queue:
            body = queue.pop()
            raw = msgspec.json.encode(body)
            try:
                answers[body["event_id"]] = response = await http.post(
                    "/integrations/qris/callback", content=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
                )
            except httpx.HTTPError:
                answers[body["event_id"]] = None
                continue
            if sum(a is not None and a.status_code == 200 for a in answers.values()) >= KILL_AFTER:
                kill.set()
            assert response.status_code == 200, response.text

    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        await asyncio.gather(*(worker(http) for _ in range(CONCURRENCY)))
    return answers


async def test_sigkill_mid_burst_loses_nothing_and_announces_every_answered_payment(
    database_url: str, tmp_path: Path
) -> None:
    serve = Serve(database_url, tmp_path)
    await serve.start()
    device_task: asyncio.Task[None] | None = None
    try:
        async with AdminApi(serve.url, ADMIN_TOKEN) as api:
            onboarded = await api.onboard_terminal("Warung Crash")
            terminal_id = onboarded["terminal"]["id"]
            credential = await api.provision_device(f"SN-CRASH-{uuid.uuid4().hex[:10]}", "generic-audio", terminal_id)
        device = Device(credential, serve.mqtt_port)
        device_task = asyncio.create_task(device.run())
        await asyncio.wait_for(device.subscribed.wait(), WAIT_S)

        bodies = [callback_body(amount=10_000 + index, terminal_id=terminal_id) for index in range(CALLBACKS)]
        amounts = {body["event_id"]: body["amount"] for body in bodies}
        kill = asyncio.Event()

        async def killer() -> None:
            await kill.wait()
            await serve.kill()

        killing = asyncio.create_task(killer())
        answers = await burst(serve.url, bodies, kill)
        await asyncio.wait_for(killing, WAIT_S)
        answered = {event_id: a.json()["transaction_id"] for event_id, a in answers.items() if a is not None}
        unanswered = [body for body in bodies if answers[body["event_id"]] is None]
        assert len(answered) >= KILL_AFTER and unanswered, "the kill did not land mid-burst"

        await serve.start()
        # What the acquirer was told before the crash holds after it: each of those payments is announced.
        assert await eventually(lambda: _heard_all(device, answered.values()), timeout=30), (
            f"{len(set(answered.values()) - set(device.heard))} payment(s) answered 200 were never announced"
        )

        # The acquirer retries what got no answer: applied once, whether or not it had landed before the kill.
        async with httpx.AsyncClient(base_url=serve.url, timeout=10) as http:
            for body in unanswered:
                raw = msgspec.json.encode(body)
                retried = await http.post(
                    "/integrations/qris/callback", content=raw, headers=callback_headers(WEBHOOK_SECRET, raw)
                )
                assert retried.status_code == 200, retried.text
                answered[body["event_id"]] = retried.json()["transaction_id"]
        assert len(set(answered.values())) == CALLBACKS, "two callbacks share a transaction"

        async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as db:
            assert await eventually(lambda: _all_acked(db, credential.device_id), timeout=30), (
                "announcements left unacknowledged"
            )
            await asyncio.sleep(QUIET_S)  # time for any resend of an acknowledged announcement to show up
            await _assert_books(db, terminal_id, answered, amounts)
            outbox = {
                row["transaction_id"]: row["message_id"]
                for row in await db.fetch(
                    "SELECT transaction_id, message_id FROM device_outbox WHERE device_id = $1 AND kind = 'payment'",
                    credential.device_id,
                )
            }
        assert len(outbox) == CALLBACKS
        assert set(outbox) == set(answered.values())
        # Each payment heard under one message id (its outbox row's), and every one acknowledged.
        assert {txn: ids for txn, ids in device.heard.items() if ids != {outbox[txn]}} == {}
        assert device.acked == set(outbox.values())
        assert device.sessions >= 2
    finally:
        if device_task is not None:
            device_task.cancel()
        await serve.stop()


async def _heard_all(device: Device, transaction_ids: Iterable[str]) -> bool:
    return set(transaction_ids) <= set(device.heard)


async def _all_acked(db: asyncpg.Pool, device_id: str) -> bool:
    return (
        await db.fetchval(
            "SELECT count(*) FROM device_outbox WHERE device_id = $1 AND kind = 'payment' AND status <> 'acked'",
            device_id,
        )
        == 0
    )


async def _assert_books(db: asyncpg.Pool, terminal_id: str, answered: dict[str, str], amounts: dict[str, int]) -> None:
    """One paid transaction per event id, with exactly three balanced ledger rows of the callback's amount."""
    callbacks = {
        row["event_id"]: row["transaction_id"]
        for row in await db.fetch(
            "SELECT event_id, transaction_id FROM acquirer_callbacks WHERE event_id = ANY($1::text[])", list(answered)
        )
    }
    assert callbacks == answered
    transactions = {
        row["id"]: row
        for row in await db.fetch("SELECT id, status, amount FROM transactions WHERE terminal_id = $1", terminal_id)
    }
    assert set(transactions) == set(answered.values()), "a transaction exists that no callback was answered with"
    ledger: dict[str, dict[str, int]] = defaultdict(dict)
    rows = await db.fetch(
        "SELECT transaction_id, entry_type, amount FROM ledger_entries WHERE transaction_id = ANY($1::text[])",
        list(transactions),
    )
    for row in rows:
        ledger[row["transaction_id"]][row["entry_type"]] = row["amount"]
    assert len(rows) == 3 * len(transactions), "a transaction without exactly three ledger rows"
    for event_id, transaction_id in answered.items():
        transaction, entries = transactions[transaction_id], ledger[transaction_id]
        assert transaction["status"] == "paid"
        assert transaction["amount"] == entries["gross_income"] == amounts[event_id]
        assert entries["platform_fee"] + entries["merchant_payable"] == entries["gross_income"]
