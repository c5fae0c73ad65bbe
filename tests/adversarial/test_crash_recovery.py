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
import uuid
from collections.abc import Iterable
from pathlib import Path

import asyncpg
import httpx
import msgspec

from qris_soundbox.tools.api import AdminApi, callback_body, callback_headers
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually
from tests.serve_process import Device, Serve, assert_books
from tests.support import ADMIN_TOKEN, WEBHOOK_SECRET

CALLBACKS = 300
KILL_AFTER = 100  # 200 answers, then SIGKILL: the rest of the burst is in flight or not yet sent
CONCURRENCY = 16
# Longer than both resend timers (the outbox's first back-off and broker.yaml's retry_interval, 5 s each):
# an acknowledged announcement would have been sent again by then.
QUIET_S = 7.0


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
            await assert_books(db, terminal_id, answered, amounts)
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
        # The broker PUBACKs an ack before it records it, so the device may still be reading the last PUBACKs.
        assert await eventually(lambda: _device_acked(device, outbox.values()), timeout=30), (
            f"acked in the database, no PUBACK at the device: {set(outbox.values()) - device.acked}"
        )
        assert device.sessions >= 2
    finally:
        if device_task is not None:
            device_task.cancel()
        await serve.stop()


async def _heard_all(device: Device, transaction_ids: Iterable[str]) -> bool:
    return set(transaction_ids) <= set(device.heard)


async def _device_acked(device: Device, message_ids: Iterable[str]) -> bool:
    return device.acked == set(message_ids) and not device.unconfirmed


async def _all_acked(db: asyncpg.Pool, device_id: str) -> bool:
    return (
        await db.fetchval(
            "SELECT count(*) FROM device_outbox WHERE device_id = $1 AND kind = 'payment' AND status <> 'acked'",
            device_id,
        )
        == 0
    )
