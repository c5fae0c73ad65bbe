"""``qris-soundbox smoke``: the core flow end to end against a RUNNING instance.

Only public interfaces are used (admin HTTP API, a signed acquirer callback,
the device's MQTT session and device HTTP API), so a pass means what an
operator, an acquirer and a soundbox would see works:

merchant → approve → outlet → terminal → device (generic-screen) → credential
→ bind → MQTT connect → heartbeat → signed paid callback → announcement on the
device → ack → ledger → duplicate callback → bad signature → dynamic QR over
MQTT and HTTP → settlement batch → audit log.

Each step prints PASS or FAIL; the first failure stops the run (later steps
depend on it) and the rest print SKIP; the exit code is non-zero on failure.

Nothing is deleted afterwards: ledger rows and audit entries are immutable by
design, so instead of the earlier implementation's ``smoke:cleanup`` every
object is recognisable by name: merchant ``Smoke Merchant <UTC stamp>``,
device serial ``SMOKE-<UTC stamp>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import httpx

from qris_soundbox.core.qris import QrisError, parse_qris
from qris_soundbox.tools.api import (
    BASE_URL_HELP,
    AdminApi,
    ApiError,
    DeviceCredential,
    admin_token,
    callback_body,
    callback_headers,
    default_base_url,
    device_headers,
    run_stamp,
    webhook_secret,
)
from qris_soundbox.tools.mqtt_tls import TlsOptions, add_tls_arguments, mqtt_target

AMOUNT = 25_000
SPOKEN = "dua puluh lima ribu rupiah"  # SPEC §10: what 25,000 sounds like in Indonesian


def register(subparsers: argparse._SubParsersAction) -> None:
    smoke = subparsers.add_parser(
        "smoke",
        help="end-to-end smoke test against a running instance (PASS/FAIL per step)",
        description="Needs $ADMIN_TOKEN (or --admin-token) and $INTEGRATION_WEBHOOK_SECRET of the instance.",
    )
    smoke.add_argument("--base-url", default=default_base_url(), help=BASE_URL_HELP)
    smoke.add_argument("--admin-token", default=None, help="default: $ADMIN_TOKEN, else prompted")
    smoke.add_argument(
        "--webhook-secret-stdin",
        action="store_true",
        help="read the webhook secret from standard input (default: $INTEGRATION_WEBHOOK_SECRET, else prompted)",
    )
    smoke.add_argument("--mqtt-host", default=None, help="default: the broker the credential rotation names")
    smoke.add_argument("--mqtt-port", type=int, default=None, help="default: the broker the credential rotation names")
    add_tls_arguments(smoke)
    smoke.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each downlink or state (default 10)"
    )
    smoke.set_defaults(handler=_smoke)


class StepFailed(Exception):
    """A check that did not hold; the message says what was expected and what came."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


class Smoke:
    def __init__(
        self,
        base_url: str,
        token: str,
        secret: str,
        *,
        mqtt_host: str | None,
        mqtt_port: int | None,
        timeout: float,
        tls: TlsOptions | None = None,
        out: Callable[[str], None] = print,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token, self.secret = token, secret
        self.mqtt_host, self.mqtt_port = mqtt_host, mqtt_port
        self.tls = tls or TlsOptions()
        self.timeout = timeout
        self.out = out
        self.stamp = run_stamp()
        self.started_at = datetime.now(UTC)
        self.results: list[tuple[str, str]] = []
        self.state: dict[str, Any] = {}
        self.downlinks: dict[str, asyncio.Queue[dict[str, Any]]] = {}

    def steps(self) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
        return [
            ("platform answers GET /health", self.health),
            ("merchant created, pending review", self.merchant),
            ("merchant approved, active", self.approve),
            ("outlet and terminal created", self.outlet_and_terminal),
            ("device registered (generic-screen)", self.device),
            ("device credential rotated", self.rotate),
            ("device bound to the terminal", self.bind),
            ("device connected over MQTT, subscribed to its downlinks", self.connect),
            ("heartbeat over MQTT visible in device detail", self.heartbeat),
            ("signed paid callback accepted (static QR on the terminal)", self.callback),
            ("payment announced on the device", self.announcement),
            ("device ack: the transaction's notification reads acked", self.ack),
            ("ledger: gross = fee + payable = amount", self.ledger),
            ("duplicate callback answers duplicate, adds nothing", self.duplicate),
            ("callback with a bad signature refused with 401", self.bad_signature),
            ("dynamic QR over MQTT parses as QRIS", self.dynamic_qr_mqtt),
            ("dynamic QR over HTTP parses as QRIS", self.dynamic_qr_http),
            ("settlement batch for the merchant with the right payable", self.settlement),
            ("audit log has the smoke's entries", self.audit),
        ]

    async def run(self) -> bool:
        steps = self.steps()
        async with AsyncExitStack() as stack:
            self.api = await stack.enter_async_context(AdminApi(self.base_url, self.token, timeout=self.timeout))
            # Acquirer and device calls carry their own credentials, never the admin token.
            self.public = await stack.enter_async_context(
                httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
            )
            self.stack = stack
            for index, (name, step) in enumerate(steps):
                try:
                    detail = await step()
                except (StepFailed, ApiError, aiomqtt.MqttError, httpx.HTTPError, TimeoutError, KeyError) as exc:
                    self._report(
                        "FAIL", name, f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc)
                    )
                    for skipped, _ in steps[index + 1 :]:
                        self._report("SKIP", skipped, "")
                    return False
                self._report("PASS", name, detail)
        return True

    def _report(self, status: str, name: str, detail: str) -> None:
        self.results.append((status, name))
        self.out(f"{status}  {name}" + (f"  ({detail})" if detail else ""))

    async def _eventually(self, check: Callable[[], Awaitable[Any]], what: str) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            value = await check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} within {self.timeout:.0f} s")
            await asyncio.sleep(0.1)

    # ---- onboarding --------------------------------------------------------------------------------------

    async def health(self) -> str:
        body = await self.api.call("GET", "/health")
        expect(body.get("status") == "ok", f"expected status ok, got {body}")
        return self.base_url

    async def merchant(self) -> str:
        result = await self.api.onboard_terminal(f"Smoke Merchant {self.stamp}")
        self.state.update(result)
        merchant = result["merchant"]
        expect(merchant["status"] == "pending_review", f"new merchant status {merchant['status']!r}")
        return f"{merchant['id']}, {merchant['name']}, NMID {merchant['nmid']}"

    async def approve(self) -> str:
        approved = self.state["approved"]
        expect(approved["status"] == "active", f"approved merchant status {approved['status']!r}")
        return approved["id"]

    async def outlet_and_terminal(self) -> str:
        terminal = self.state["terminal"]
        expect(terminal["merchant_id"] == self.state["merchant"]["id"], "terminal belongs to another merchant")
        return f"outlet {self.state['outlet']['id']}, terminal {terminal['id']}"

    async def device(self) -> str:
        device = await self.api.call(
            "POST",
            "/admin/devices",
            json={"serial_number": f"SMOKE-{self.stamp}-{uuid.uuid4().hex[:4]}", "model": "generic-screen"},
        )
        expect(device["status"] == "registered", f"new device status {device['status']!r}")
        self.state["device"] = device
        return f"{device['id']}, serial {device['serial_number']}"

    async def rotate(self) -> str:
        device_id = self.state["device"]["id"]
        issued = await self.api.rotate_credential(device_id)
        expect(issued["mqtt_username"] == device_id, "MQTT username is not the device id")
        self.credential = DeviceCredential.from_issued(issued)
        credential = self.credential
        return (
            f"fingerprint {credential.fingerprint},"
            f" broker {credential.broker_scheme}://{credential.broker_host}:{credential.broker_port}"
        )

    async def bind(self) -> str:
        device_id, terminal_id = self.credential.device_id, self.state["terminal"]["id"]
        bound = await self.api.call("POST", f"/admin/devices/{device_id}/bind", json={"terminal_id": terminal_id})
        expect(bound.get("terminal_id") == terminal_id, f"device detail names terminal {bound.get('terminal_id')!r}")
        return terminal_id

    # ---- the device on MQTT ------------------------------------------------------------------------------

    async def connect(self) -> str:
        target = mqtt_target(self.tls, self.mqtt_host, self.mqtt_port, self.credential)
        device_id = self.credential.device_id
        self.mqtt = await self.stack.enter_async_context(
            target.client(device_id, self.credential.secret, timeout=self.timeout)
        )
        await self.mqtt.subscribe(f"devices/{device_id}/downlink/#", qos=1)
        reader = asyncio.create_task(self._read_downlinks())
        self.stack.callback(reader.cancel)
        return target.url

    async def _read_downlinks(self) -> None:
        try:
            async for message in self.mqtt.messages:
                kind = message.topic.value.split("/downlink/", 1)[-1]
                self.downlinks.setdefault(kind, asyncio.Queue()).put_nowait(json.loads(message.payload))
        except aiomqtt.MqttError as exc:  # the step waiting for a downlink reports it missing
            self.out(f"note  MQTT session lost: {exc}")

    async def _next_downlink(self, kind: str) -> dict[str, Any]:
        queue = self.downlinks.setdefault(kind, asyncio.Queue())
        try:
            return await asyncio.wait_for(queue.get(), self.timeout)
        except TimeoutError:
            raise StepFailed(f"no {kind} downlink within {self.timeout:.0f} s") from None

    async def _uplink(self, suffix: str, body: dict[str, Any]) -> None:
        await self.mqtt.publish(f"devices/{self.credential.device_id}/uplink/{suffix}", json.dumps(body), qos=1)

    async def heartbeat(self) -> str:
        await self._uplink(
            "heartbeat",
            {
                "battery_level": 91,
                "network_strength": 64,
                "firmware_version": "smoke-1",
                "timestamp": datetime.now(UTC).isoformat(),
            },
        )

        async def seen() -> dict[str, Any] | None:
            detail = await self.api.call("GET", f"/admin/devices/{self.credential.device_id}")
            return (
                detail
                if detail.get("last_heartbeat_at")
                and (detail.get("heartbeat") or {}).get("firmware_version") == "smoke-1"
                else None
            )

        detail = await self._eventually(seen, "heartbeat not in device detail")
        return f"last_heartbeat_at {detail['last_heartbeat_at']}, online {detail.get('online')}"

    # ---- payment -----------------------------------------------------------------------------------------

    async def _post_callback(self, body: dict[str, Any], *, secret: str | None = None) -> httpx.Response:
        raw = json.dumps(body).encode()
        return await self.public.post(
            "/integrations/qris/callback", content=raw, headers=callback_headers(secret or self.secret, raw)
        )

    async def callback(self) -> str:
        self.state["callback"] = body = callback_body(AMOUNT, terminal_id=self.state["terminal"]["id"])
        response = await self._post_callback(body)
        expect(response.status_code == 200, f"HTTP {response.status_code}: {response.text[:200]}")
        result = response.json()
        expect(result["status"] == "paid" and result["duplicate"] is False, f"callback answered {result}")
        self.state["transaction_id"] = result["transaction_id"]
        return f"transaction {result['transaction_id']}"

    async def announcement(self) -> str:
        payment = await self._next_downlink("payment")
        expect(
            payment.get("transaction_id") == self.state["transaction_id"],
            f"announced transaction {payment.get('transaction_id')}, expected {self.state['transaction_id']}",
        )
        expect(payment.get("amount") == AMOUNT, f"announced amount {payment.get('amount')}")
        text = (payment.get("announcement") or {}).get("text") or ""
        expect(text.endswith(SPOKEN), f"announcement text {text!r} does not say {SPOKEN!r}")
        self.state["payment_message_id"] = payment["message_id"]
        return f'"{text}"'

    async def ack(self) -> str:
        await self._uplink("payment/ack", {"message_id": self.state["payment_message_id"]})
        transaction_id = self.state["transaction_id"]

        async def acked() -> dict[str, Any] | None:
            txn = await self.api.call("GET", f"/admin/transactions/{transaction_id}")
            return txn if (txn.get("notification") or {}).get("status") == "acked" else None

        txn = await self._eventually(acked, "notification did not become acked")
        return f"acked at {txn['notification']['acked_at']}"

    async def _ledger(self) -> dict[str, int]:
        page = await self.api.call(
            "GET", "/admin/ledger-entries", params={"transaction_id": self.state["transaction_id"]}
        )
        entries: dict[str, int] = {}
        for item in page["items"]:
            expect(item["entry_type"] not in entries, f"two {item['entry_type']} entries")
            entries[item["entry_type"]] = item["amount"]
        return entries

    async def ledger(self) -> str:
        entries = await self._ledger()
        expect(set(entries) == {"gross_income", "platform_fee", "merchant_payable"}, f"ledger entries {entries}")
        expect(entries["gross_income"] == AMOUNT, f"gross {entries['gross_income']} for a payment of {AMOUNT}")
        expect(
            entries["platform_fee"] + entries["merchant_payable"] == entries["gross_income"],
            f"fee {entries['platform_fee']} + payable {entries['merchant_payable']} != gross",
        )
        self.state["payable"] = entries["merchant_payable"]
        return ", ".join(f"{k} {v}" for k, v in entries.items())

    async def duplicate(self) -> str:
        response = await self._post_callback(self.state["callback"])
        expect(response.status_code == 200, f"HTTP {response.status_code}: {response.text[:200]}")
        result = response.json()
        expect(
            result["duplicate"] is True and result["transaction_id"] == self.state["transaction_id"],
            f"replay answered {result}",
        )
        expect(len(await self._ledger()) == 3, "the replay changed the ledger")
        return "duplicate: true, same transaction, ledger unchanged"

    async def bad_signature(self) -> str:
        body = callback_body(AMOUNT, terminal_id=self.state["terminal"]["id"])
        response = await self._post_callback(body, secret=self.secret + "-wrong")
        expect(response.status_code == 401, f"HTTP {response.status_code}: {response.text[:200]}")
        code = response.json()["error"]["code"]
        return code

    # ---- dynamic QR --------------------------------------------------------------------------------------

    def _check_qr(self, qr_payload: str, amount: int) -> str:
        try:
            parsed = parse_qris(qr_payload)
        except QrisError as exc:
            raise StepFailed(f"not a valid QRIS string: {exc}") from None
        expect(
            parsed.point_of_initiation == "dynamic" and parsed.amount == amount,
            f"parsed {parsed.point_of_initiation} QR for {parsed.amount}, expected dynamic for {amount}",
        )
        expect(parsed.nmid == self.state["merchant"]["nmid"], f"QR NMID {parsed.nmid} is not the merchant's")
        return f"Rp {parsed.amount} to {parsed.merchant_name}, NMID {parsed.nmid}, CRC {parsed.crc}"

    async def dynamic_qr_mqtt(self) -> str:
        request_id = f"smoke-{uuid.uuid4().hex[:12]}"
        await self._uplink("dynamic-qr/request", {"request_id": request_id, "amount": 15_000})
        reply = await self._next_downlink("dynamic-qr/response")
        expect(reply.get("request_id") == request_id, f"reply to request {reply.get('request_id')!r}")
        expect("error" not in reply, f"refused: {reply.get('error')}")
        return f"{reply['transaction_id']}: " + self._check_qr(reply["qr_payload"], 15_000)

    async def dynamic_qr_http(self) -> str:
        response = await self.public.post(
            "/device/transactions/dynamic-qr", json={"amount": 17_500}, headers=device_headers(self.credential)
        )
        expect(response.status_code == 201, f"HTTP {response.status_code}: {response.text[:200]}")
        reply = response.json()
        return f"{reply['transaction_id']}: " + self._check_qr(reply["qr_payload"], 17_500)

    # ---- money and audit ---------------------------------------------------------------------------------

    async def settlement(self) -> str:
        merchant_id = self.state["merchant"]["id"]
        created = await self.api.call(
            "POST",
            "/admin/settlement-batches",
            json={"merchant_id": merchant_id},
            headers={"Idempotency-Key": f"smoke-{self.stamp}-{uuid.uuid4().hex[:8]}"},
        )
        batches = [b for b in created["items"] if b["merchant_id"] == merchant_id]
        expect(len(batches) == 1, f"{len(batches)} batches for the smoke merchant")
        batch = batches[0]
        expect(
            batch["entry_count"] == 1 and batch["payable_amount"] == self.state["payable"],
            f"batch of {batch['entry_count']} entries payable {batch['payable_amount']},"
            f" expected 1 entry payable {self.state['payable']}",
        )
        return f"{batch['id']}: payable {batch['payable_amount']}, status {batch['status']}"

    async def audit(self) -> str:
        wanted = {
            "merchant.create",
            "outlet.create",
            "terminal.create",
            "qris.callback.applied",
            "settlement_batch.create",
        }
        page = await self.api.call(
            "GET", "/admin/audit-logs", params={"merchant_id": self.state["merchant"]["id"], "limit": 100}
        )
        actions = {item["action"] for item in page["items"]}
        expect(wanted <= actions, f"missing {sorted(wanted - actions)} (found {sorted(actions)})")
        device = await self.api.call(
            "GET", "/admin/audit-logs", params={"entity_id": self.credential.device_id, "limit": 100}
        )
        device_actions = {item["action"] for item in device["items"]}
        expect({"device.create", "device.bind"} <= device_actions, f"device entries {sorted(device_actions)}")
        rejected = await self.api.call(
            "GET",
            "/admin/audit-logs",
            params={"action": "qris.callback.rejected", "from": self.started_at.isoformat(), "limit": 1},
        )
        expect(bool(rejected["items"]), "the refused callback was not audited")
        return f"{len(page['items'])} merchant entries, {len(device['items'])} device entries, the refused callback"


def _smoke(args: argparse.Namespace) -> None:
    smoke = Smoke(
        args.base_url,
        admin_token(args.admin_token),
        webhook_secret(args.webhook_secret_stdin),
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        timeout=args.timeout,
        tls=TlsOptions.from_args(args),
        out=lambda line: print(line, flush=True),
    )
    print(
        f"smoke against {args.base_url} (objects named Smoke Merchant {smoke.stamp} / SMOKE-{smoke.stamp}-…)",
        flush=True,
    )
    passed = asyncio.run(smoke.run())
    counts = {status: sum(1 for s, _ in smoke.results if s == status) for status in ("PASS", "FAIL", "SKIP")}
    print(
        f"{'smoke passed' if passed else 'smoke FAILED'}: {counts['PASS']} passed, {counts['FAIL']} failed,"
        f" {counts['SKIP']} skipped",
        flush=True,
    )
    sys.exit(0 if passed else 1)
