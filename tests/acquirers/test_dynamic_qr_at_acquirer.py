"""SNAP out wired into the dynamic QR, against the simulator as a real process: a screen soundbox's
QR (over MQTT) and the admin's come from the acquirer's qr-mpm-generate; with notifications switched
off the payment is still announced, through qr-mpm-query polling; an ended QR is cancelled there;
an acquirer that is down, slow, failing or signing wrongly writes nothing and opens the circuit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiomqtt
import msgspec
import pytest

from qris_soundbox.core.qris import parse_qris
from qris_soundbox.core.snap import wire
from tests.acquirers.simulator import Simulator, simulator_process
from tests.devices.helpers import eventually
from tests.ops.helpers import scrape
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import PlatformFactory, RunningPlatform

CLIENT_KEY = "polled-bank"
CLIENT_SECRET = "polled-bank-hmac-secret"


@pytest.fixture(scope="module")
async def fast(platform_factory: PlatformFactory) -> RunningPlatform:
    """Polling every 300 ms, a circuit that opens after 3 failures for 2 s, 2 s timeouts."""
    return await platform_factory.start(
        acquirer_query_interval_ms=300,
        acquirer_circuit_failures=3,
        acquirer_circuit_open_seconds=2,
        acquirer_call_timeout_seconds=2,
        dynamic_qr_expiry_sweep_interval_ms=300,
    )


@pytest.fixture(scope="module")
async def simulator(fast: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Simulator]:
    key_file = tmp_path_factory.mktemp("sim") / "key.pem"
    args = ("--platform-url", fast.http_url, "--client-key", CLIENT_KEY, "--client-secret", CLIENT_SECRET)
    async with simulator_process(key_file, *args, "--mode", "symmetric") as sim:
        made = await fast.http.post(
            "/admin/acquirers",
            json={
                "code": "polled",
                "name": "Polled Bank",
                "protocol": "snap",
                "settings": {
                    "client_key": sim.client_key,
                    "public_key_pem": sim.public_key_pem,
                    "client_secret": CLIENT_SECRET,
                    "notify_signature": "symmetric",
                    "base_url": sim.url,
                    "private_key_pem": wire.generate_private_key_pem(),
                },
            },
            headers=fast.admin_headers,
        )
        assert made.status_code == 201, made.text
        yield sim


async def snap_soundbox(running: RunningPlatform) -> tuple[dict, str, str]:
    """A screen soundbox on a terminal whose merchant's acquirer is the simulator."""
    ids, device_id, secret = await bound_soundbox(running, "generic-screen")
    attached = await running.http.put(
        f"/admin/merchants/{ids['merchant_id']}/acquirer",
        json={"acquirer_code": "polled", "acquirer_merchant_id": "SIM-M-001"},
        headers=running.admin_headers,
    )
    assert attached.status_code == 200, attached.text
    return ids, device_id, secret


async def next_on(device: aiomqtt.Client, suffix: str, timeout: float = 15) -> dict | None:
    """The next message on a topic ending with ``suffix``, or None within ``timeout``."""
    import asyncio

    async def wait() -> dict:
        async for message in device.messages:
            if str(message.topic).endswith(suffix):
                return msgspec.json.decode(message.payload)
        raise AssertionError("message stream ended")

    try:
        return await asyncio.wait_for(wait(), timeout)
    except TimeoutError:
        return None


async def events_of(running: RunningPlatform, transaction_id: str) -> list[dict]:
    answer = await running.http.get(f"/admin/transactions/{transaction_id}/events", headers=running.admin_headers)
    return answer.json()["items"]


async def count(running: RunningPlatform, query: str, *args: object) -> int:
    async with running.platform.db.pool.acquire() as conn:
        return await conn.fetchval(query, *args)


async def test_a_lost_notification_is_announced_through_query_polling(
    fast: RunningPlatform, simulator: Simulator
) -> None:
    ids, device_id, secret = await snap_soundbox(fast)
    await simulator.config(notify=False)
    try:
        async with fast.mqtt(device_id, secret) as device:
            await subscribed(device, device_id)
            await device.publish(
                f"devices/{device_id}/uplink/dynamic-qr/request",
                msgspec.json.encode({"request_id": "r-1", "amount": 27_500}),
                qos=1,
            )
            reply = await next_on(device, "/downlink/dynamic-qr/response")
            assert reply is not None and "error" not in reply, reply
            # The acquirer's QR, not one the platform built: its merchant and its bill number.
            qris = parse_qris(reply["qr_payload"])
            assert qris.merchant_name == "SIMULATED MERCHANT" and qris.amount == 27_500
            transaction_id = reply["transaction_id"]
            reference = await count(
                fast, "SELECT acquirer_reference FROM acquirer_qrs WHERE transaction_id = $1", transaction_id
            )
            assert qris.additional_data is not None and reference == qris.additional_data.bill_number
            assert (await simulator.stats())["generate"] >= 1

            paid = await simulator.control.post(
                "/simulator/pay", json={"transaction_id": transaction_id, "amount": 27_500}
            )
            assert paid.json() == {"status": None, "notified": False}
            announcement = await next_on(device, "/downlink/payment")
            assert announcement is not None, "the poller never found the payment"
            assert announcement["amount"] == 27_500 and announcement["transaction_id"] == transaction_id
    finally:
        await simulator.config(notify=True)
    assert (await simulator.stats()).get("notify", 0) == 0
    paid_events = [e for e in await events_of(fast, transaction_id) if e["to_status"] == "paid"]
    assert [e["source"] for e in paid_events] == ["acquirer_query"]

    # The notification arriving late is a replay: answered as a success, nothing written again.
    late = await simulator.control.post("/simulator/pay", json={"transaction_id": transaction_id, "amount": 27_500})
    assert late.json()["platform"]["responseCode"] == "2005200", late.text
    assert await count(fast, "SELECT count(*) FROM ledger_entries WHERE transaction_id = $1", transaction_id) == 3
    assert (
        await count(
            fast, "SELECT count(*) FROM device_outbox WHERE transaction_id = $1 AND kind = 'payment'", transaction_id
        )
        == 1
    )
    assert len([e for e in await events_of(fast, transaction_id) if e["to_status"] == "paid"]) == 1


async def test_notification_and_query_of_one_payment_apply_it_once(fast: RunningPlatform, simulator: Simulator) -> None:
    ids, _, _ = await snap_soundbox(fast)
    created = await fast.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 12_000}, headers=fast.admin_headers
    )
    assert created.status_code == 201, created.text
    transaction = created.json()
    assert parse_qris(transaction["qr_payload"]).merchant_name == "SIMULATED MERCHANT"
    # Paid at the simulator and notified: the poller, asking every 300 ms, races the notification.
    notified = await simulator.control.post(
        "/simulator/pay", json={"transaction_id": transaction["id"], "amount": 12_000}
    )
    assert notified.json()["platform"]["responseCode"] == "2005200", notified.text

    async def polled_to_the_end() -> bool:
        done = "SELECT count(*) FROM acquirer_qrs WHERE transaction_id = $1 AND next_query_at IS NULL"
        return await count(fast, done, transaction["id"]) == 1

    assert await eventually(polled_to_the_end)
    paid_events = [e for e in await events_of(fast, transaction["id"]) if e["to_status"] == "paid"]
    assert len(paid_events) == 1 and paid_events[0]["source"] in ("acquirer_notify", "acquirer_query")
    assert await count(fast, "SELECT count(*) FROM ledger_entries WHERE transaction_id = $1", transaction["id"]) == 3


async def test_a_notification_is_marked_as_one(fast: RunningPlatform, simulator: Simulator) -> None:
    ids, _, _ = await snap_soundbox(fast)
    terminal_code = (await fast.http.get(f"/admin/terminals/{ids['terminal_id']}", headers=fast.admin_headers)).json()[
        "terminal_code"
    ]
    # A static QR's payment: only a notification can tell of it (there is no QR of ours to query).
    notified = await simulator.control.post("/simulator/pay", json={"terminal_id": terminal_code, "amount": 3_300})
    assert notified.json()["platform"]["responseCode"] == "2005200", notified.text
    async with fast.platform.db.pool.acquire() as conn:
        sources = await conn.fetch(
            "SELECT e.source FROM transaction_events e JOIN transactions x ON x.id = e.transaction_id"
            " WHERE x.terminal_id = $1 AND x.kind = 'static' ORDER BY e.id",
            ids["terminal_id"],
        )
    assert [row["source"] for row in sources] == ["acquirer_notify", "acquirer_notify"]  # created, then paid


async def test_an_expired_qr_is_cancelled_at_the_acquirer(fast: RunningPlatform, simulator: Simulator) -> None:
    ids, _, _ = await snap_soundbox(fast)
    created = await fast.http.post(
        "/admin/transactions",
        json={"terminal_id": ids["terminal_id"], "amount": 8_000, "expires_in_s": 30},
        headers=fast.admin_headers,
    )
    assert created.status_code == 201, created.text
    transaction_id = created.json()["id"]
    cancels = (await simulator.stats()).get("cancel", 0)
    # Its time is up (rather than waiting the 30 s minimum): the sweep expires it, the poller cancels it there.
    async with fast.platform.db.pool.acquire() as conn:
        await conn.execute("UPDATE transactions SET expires_at = now() WHERE id = $1", transaction_id)

    async def cancelled() -> bool:
        return (
            await count(
                fast,
                "SELECT count(*) FROM acquirer_qrs WHERE transaction_id = $1 AND cancelled_at IS NOT NULL",
                transaction_id,
            )
            == 1
        )

    assert await eventually(cancelled)
    assert (await simulator.stats())["cancel"] == cancels + 1
    txn = (await fast.http.get(f"/admin/transactions/{transaction_id}", headers=fast.admin_headers)).json()
    assert txn["status"] == "expired"


@pytest.mark.parametrize("fault", ["5xx", "bad_signature", "garbage", "slow"])
async def test_a_failing_acquirer_writes_nothing(fast: RunningPlatform, simulator: Simulator, fault: str) -> None:
    ids, _, _ = await snap_soundbox(fast)
    terminal = ids["terminal_id"]
    before = await count(fast, "SELECT count(*) FROM transactions WHERE terminal_id = $1", terminal)
    await simulator.config(fault=fault, slow_s=5)
    try:
        refused = await fast.http.post(
            "/admin/transactions", json={"terminal_id": terminal, "amount": 5_000}, headers=fast.admin_headers
        )
    finally:
        await simulator.config(fault=None)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] in ("acquirer_unavailable", "acquirer_circuit_open")
    assert await count(fast, "SELECT count(*) FROM transactions WHERE terminal_id = $1", terminal) == before

    async def served_again() -> bool:  # the circuit may be open after the failures: it closes on a probe
        answer = await fast.http.post(
            "/admin/transactions", json={"terminal_id": terminal, "amount": 5_000}, headers=fast.admin_headers
        )
        return answer.status_code == 201

    assert await eventually(served_again, timeout=20, interval=0.5)


async def test_the_circuit_opens_and_refuses_without_calling(fast: RunningPlatform, simulator: Simulator) -> None:
    ids, device_id, secret = await snap_soundbox(fast)
    await simulator.config(fault="5xx")
    try:
        codes = []
        for _ in range(5):
            answer = await fast.http.post(
                "/admin/transactions",
                json={"terminal_id": ids["terminal_id"], "amount": 4_000},
                headers=fast.admin_headers,
            )
            codes.append(answer.json()["error"]["code"])
        assert "acquirer_circuit_open" in codes, codes
        faults = (await simulator.stats())["fault"]
        # The device asking meanwhile gets a clear error downlink, and the acquirer is not called.
        async with fast.mqtt(device_id, secret) as device:
            await subscribed(device, device_id)
            await device.publish(
                f"devices/{device_id}/uplink/dynamic-qr/request",
                msgspec.json.encode({"request_id": "r-open", "amount": 4_000}),
                qos=1,
            )
            reply = await next_on(device, "/downlink/dynamic-qr/response")
        assert reply is not None and reply["error"]["code"] == "acquirer_circuit_open", reply
        assert (await simulator.stats())["fault"] == faults
        samples = await scrape(fast)
        assert samples[("qris_acquirer_circuit_open", frozenset({("acquirer", "polled")}))] == 1
        assert samples[("qris_acquirer_errors_total", frozenset({("acquirer", "polled"), ("reason", "http_5xx")}))] >= 3
    finally:
        await simulator.config(fault=None)


async def test_a_merchant_without_its_acquirer_id_is_a_clear_error(fast: RunningPlatform, simulator: Simulator) -> None:
    ids, _, _ = await bound_soundbox(fast, "generic-screen")
    await fast.http.put(
        f"/admin/merchants/{ids['merchant_id']}/acquirer", json={"acquirer_code": "polled"}, headers=fast.admin_headers
    )
    refused = await fast.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 5_000}, headers=fast.admin_headers
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "acquirer_not_usable", refused.text


async def test_platform_terminals_keep_the_local_qris(fast: RunningPlatform, simulator: Simulator) -> None:
    ids, _, _ = await bound_soundbox(fast, "generic-screen")
    generated = (await simulator.stats()).get("generate", 0)
    created = await fast.http.post(
        "/admin/transactions", json={"terminal_id": ids["terminal_id"], "amount": 5_000}, headers=fast.admin_headers
    )
    assert created.status_code == 201
    assert parse_qris(created.json()["qr_payload"]).merchant_name != "SIMULATED MERCHANT"
    assert (await simulator.stats()).get("generate", 0) == generated
