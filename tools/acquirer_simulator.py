"""``qris-soundbox acquirer simulate``: a SNAP acquirer in its own process, to rehearse against.

It has its own RSA key pair (``--key-file``, made if missing) and port. It answers
the SNAP calls the platform makes to an acquirer — token (73), qr-mpm-generate (47),
qr-mpm-query (51), qr-mpm-cancel (77), qr-mpm-refund (78) — and, on command,
sends the platform signed ``qr-mpm-notify`` notifications, symmetric (after
getting a B2B token from the platform) or asymmetric:

- ``--pay TERMINAL_ID:AMOUNT`` sends one notification for a static-QR payment and exits;
- refunds are remembered by ``partnerRefundNo`` (a retry answers the same ``refundNo``); with
  ``--refund-limit AMOUNT`` a refund above it is refused (``4037814`` Insufficient Funds), so the
  platform's failed path can be rehearsed;
- otherwise it serves, and ``POST /simulator/pay`` ``{"terminal_id" | "transaction_id", "amount",
  "mode"?}`` pays (a QR it generated for that transaction becomes paid, as its query answers)
  and notifies, answering the platform's reply; ``GET /simulator/stats`` counts the calls;
- ``POST /simulator/config`` ``{"notify"?: bool, "fault"?: null | "5xx" | "slow" | "bad_signature"
  | "garbage", "slow_s"?: seconds}`` switches notifications off (the platform must then learn of
  payments by polling qr-mpm-query, as ``--no-notify`` does) or makes its API misbehave.

Its answers carry ``X-TIMESTAMP`` and ``X-SIGNATURE``: SHA256withRSA, its key, over
``POST:<path>:lowerhex(SHA256(body)):<X-TIMESTAMP>`` (docs/acquirers.md "Calls out").

On start it prints one JSON line: ``{"port", "client_key", "public_key_pem"}`` — what the
platform's registry needs (with the ``--client-secret`` you chose, for symmetric).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from qris_soundbox.core.qris import QrisInput, build_dynamic_qris
from qris_soundbox.core.snap import amounts, codes, timestamps, wire

NOTIFY_PATH = "/v1.0/qr/qr-mpm-notify"


class Simulator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.platform_url = args.platform_url.rstrip("/")
        self.client_key: str = args.client_key
        self.client_secret: str | None = args.client_secret
        self.mode: str = args.mode
        self.notify = not args.no_notify
        self.fault: str | None = None
        self.slow_s = 15.0
        self.key = wire.load_private_key(_key_pem(args.key_file))
        self.calls: Counter[str] = Counter()
        # referenceNo → the QR and its state there: pending, paid or cancelled
        self.generated: dict[str, dict[str, Any]] = {}
        self.refund_limit: int | None = args.refund_limit
        self.refunds: dict[str, str] = {}  # partnerRefundNo → refundNo

    # --- notifications to the platform ---

    async def _platform_token(self, http: httpx.AsyncClient) -> str:
        ts = timestamps.now_timestamp()
        answer = await http.post(
            "/v1.0/access-token/b2b",
            content=b'{"grantType":"client_credentials"}',
            headers={
                "Content-Type": "application/json",
                "X-CLIENT-KEY": self.client_key,
                "X-TIMESTAMP": ts,
                "X-SIGNATURE": wire.rsa_sign(self.key, wire.token_string_to_sign(self.client_key, ts)),
            },
        )
        answer.raise_for_status()
        return str(answer.json()["accessToken"])

    async def pay(
        self,
        *,
        amount: int,
        terminal_id: str | None = None,
        transaction_id: str | None = None,
        mode: str | None = None,
        reference: str | None = None,
    ) -> httpx.Response | None:
        """Pay, and notify the platform unless notifications are off (None then)."""
        rrn = uuid.uuid4().hex[:12]
        for reference_no, qr in self.generated.items():
            if transaction_id is not None and qr["partnerReferenceNo"] == transaction_id:
                # A QR it issued: paid here, whether or not the platform is told.
                qr.update(state="paid", rrn=rrn, paid_time=timestamps.now_timestamp())
                reference = reference_no
        body: dict[str, Any] = {
            "originalReferenceNo": reference or uuid.uuid4().hex[:20],
            "latestTransactionStatus": "00",
            "transactionStatusDesc": "Success",
            "amount": {"value": amounts.value(amount), "currency": "IDR"},
            "additionalInfo": {"rrn": rrn},
        }
        if not self.notify:
            return None
        if transaction_id:
            body["originalPartnerReferenceNo"] = transaction_id
        if terminal_id:
            body["additionalInfo"]["terminalId"] = terminal_id
        # As JSON.stringify sends it: minified, raw UTF-8.
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ts = timestamps.now_timestamp()
        headers = {
            "Content-Type": "application/json",
            "X-TIMESTAMP": ts,
            "X-PARTNER-ID": self.client_key,
            "X-EXTERNAL-ID": uuid.uuid4().hex,
            "CHANNEL-ID": "95221",
        }
        async with httpx.AsyncClient(base_url=self.platform_url, timeout=10) as http:
            if (mode or self.mode) == "symmetric":
                if not self.client_secret:
                    raise SystemExit("qris-soundbox: symmetric notifications need --client-secret")
                token = await self._platform_token(http)
                headers["Authorization"] = f"Bearer {token}"
                message = wire.symmetric_string_to_sign("POST", NOTIFY_PATH, token, raw, ts)
                headers["X-SIGNATURE"] = wire.hmac_sign(self.client_secret, message)
            else:
                headers["X-SIGNATURE"] = wire.rsa_sign(
                    self.key, wire.asymmetric_string_to_sign("POST", NOTIFY_PATH, raw, ts)
                )
            self.calls["notify"] += 1
            return await http.post(NOTIFY_PATH, content=raw, headers=headers)

    # --- the acquirer's own SNAP API ---

    async def token(self, request: web.Request) -> web.Response:
        self.calls["token"] += 1
        return _snap(
            200, codes.ACCESS_TOKEN, accessToken=secrets.token_urlsafe(24), tokenType="Bearer", expiresIn="900"
        )

    async def generate(self, request: web.Request) -> web.Response:
        self.calls["generate"] += 1
        body = await request.json()
        reference = uuid.uuid4().hex[:20]
        amount = amounts.rupiah(body["amount"]["value"], body["amount"]["currency"])
        content = build_dynamic_qris(
            QrisInput(
                merchant_name="SIMULATED MERCHANT",
                merchant_city="JAKARTA",
                postal_code="10110",
                mcc="5812",
                nmid="ID1020021181745",
                amount=amount,
                bill_number=reference,
            )
        )
        self.generated[reference] = {
            "partnerReferenceNo": body.get("partnerReferenceNo"),
            "amount": amount,
            "state": "pending",
        }
        return _snap(
            200,
            codes.QR_MPM_GENERATE,
            referenceNo=reference,
            partnerReferenceNo=body.get("partnerReferenceNo"),
            qrContent=content,
        )

    async def query(self, request: web.Request) -> web.Response:
        self.calls["query"] += 1
        body = await request.json()
        qr = self.generated.get(body.get("originalReferenceNo", ""))
        if qr is None:
            return _snap(404, codes.QR_MPM_QUERY, case=1, message="Transaction Not Found")
        paid = qr["state"] == "paid"
        return _snap(
            200,
            codes.QR_MPM_QUERY,
            originalReferenceNo=body["originalReferenceNo"],
            originalPartnerReferenceNo=qr["partnerReferenceNo"],
            latestTransactionStatus={"paid": "00", "pending": "03", "cancelled": "05"}[qr["state"]],
            transactionStatusDesc=qr["state"],
            amount={"value": amounts.value(qr["amount"]), "currency": "IDR"},
            **({"paidTime": qr["paid_time"], "additionalInfo": {"rrn": qr["rrn"]}} if paid else {}),
        )

    async def cancel(self, request: web.Request) -> web.Response:
        self.calls["cancel"] += 1
        body = await request.json()
        qr = self.generated.get(body.get("originalReferenceNo", ""))
        if qr is None:
            return _snap(404, codes.QR_MPM_CANCEL, case=1, message="Transaction Not Found")
        if qr["state"] == "paid":
            return _snap(409, codes.QR_MPM_CANCEL, case=0, message="Transaction Already Paid")
        qr["state"] = "cancelled"
        return _snap(200, codes.QR_MPM_CANCEL, cancelTime=timestamps.now_timestamp())

    async def refund(self, request: web.Request) -> web.Response:
        self.calls["refund"] += 1
        body = await request.json()
        amount = body.get("refundAmount") or {}
        if (
            self.refund_limit is not None
            and amounts.rupiah(amount.get("value"), amount.get("currency")) > self.refund_limit
        ):
            self.calls["refund_refused"] += 1
            return _snap(403, codes.QR_MPM_REFUND, case=14, message="Insufficient Funds")
        number = str(body.get("partnerRefundNo", ""))
        refund_no = self.refunds.setdefault(number, uuid.uuid4().hex[:20])
        return _snap(
            200, codes.QR_MPM_REFUND, refundNo=refund_no, partnerRefundNo=number, refundAmount=body.get("refundAmount")
        )

    # --- control ---

    async def control_pay(self, request: web.Request) -> web.Response:
        order = await request.json()
        answer = await self.pay(
            amount=int(order["amount"]),
            terminal_id=order.get("terminal_id"),
            transaction_id=order.get("transaction_id"),
            mode=order.get("mode"),
        )
        if answer is None:
            return web.json_response({"status": None, "notified": False})
        return web.json_response({"status": answer.status_code, "platform": answer.json()})

    async def control_config(self, request: web.Request) -> web.Response:
        order = await request.json()
        if "notify" in order:
            self.notify = bool(order["notify"])
        if "fault" in order:
            if order["fault"] not in (None, "5xx", "slow", "bad_signature", "garbage"):
                return web.json_response({"error": f"unknown fault {order['fault']!r}"}, status=400)
            self.fault = order["fault"]
        self.slow_s = float(order.get("slow_s", self.slow_s))
        return web.json_response({"notify": self.notify, "fault": self.fault, "slow_s": self.slow_s})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(dict(self.calls))

    @web.middleware
    async def answers(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Its SNAP API's answers signed, or spoilt by the fault it was told to show."""
        if request.path.startswith("/simulator/"):
            return await handler(request)
        if self.fault == "slow":
            await asyncio.sleep(self.slow_s)
        if self.fault == "5xx":
            self.calls["fault"] += 1
            return _snap(503, 0, message="Service Unavailable")
        if self.fault == "garbage":
            self.calls["fault"] += 1
            return web.Response(text="<html>gateway</html>", content_type="text/html")
        response = await handler(request)
        assert isinstance(response, web.Response) and response.body is not None
        raw = bytes(response.body)  # type: ignore[arg-type]
        ts = timestamps.now_timestamp()
        # bad_signature: signed for another path, as a confused or forging sender would.
        path = request.path + "/other" if self.fault == "bad_signature" else request.path
        response.headers["X-TIMESTAMP"] = ts
        response.headers["X-SIGNATURE"] = wire.rsa_sign(self.key, wire.asymmetric_string_to_sign("POST", path, raw, ts))
        return response

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.answers])
        app.add_routes(
            [
                web.post("/v1.0/access-token/b2b", self.token),
                web.post("/v1.0/qr/qr-mpm-generate", self.generate),
                web.post("/v1.0/qr/qr-mpm-query", self.query),
                web.post("/v1.0/qr/qr-mpm-cancel", self.cancel),
                web.post("/v1.0/qr/qr-mpm-refund", self.refund),
                web.post("/simulator/pay", self.control_pay),
                web.post("/simulator/config", self.control_config),
                web.get("/simulator/stats", self.stats),
            ]
        )
        return app


def _snap(status: int, service: int, *, case: int = 0, message: str = "Successful", **fields: Any) -> web.Response:
    body = {"responseCode": codes.response_code(status, service, case), "responseMessage": message, **fields}
    # Minified, raw UTF-8: the bytes it signs are the bytes it sends.
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=raw, status=status, content_type="application/json")


def _key_pem(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wire.generate_private_key_pem())
        path.chmod(0o600)
    return path.read_text()


def register(commands: argparse._SubParsersAction) -> None:
    simulate = commands.add_parser("simulate", help="a SNAP acquirer in its own process (docs/acquirers.md)")
    simulate.add_argument("--platform-url", default="http://127.0.0.1:8000")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=9300)
    simulate.add_argument("--client-key", default="sim-acquirer", help="its X-CLIENT-KEY / X-PARTNER-ID")
    simulate.add_argument("--client-secret", help="HMAC key of symmetric notifications (give the platform the same)")
    simulate.add_argument("--key-file", type=Path, default=Path("var/acquirer-simulator.pem"))
    simulate.add_argument("--mode", choices=("symmetric", "asymmetric"), default="asymmetric")
    simulate.add_argument("--pay", metavar="TERMINAL_ID:AMOUNT", help="send one notification and exit")
    simulate.add_argument("--refund-limit", type=int, help="refuse refunds above this many rupiah (4037814)")
    simulate.add_argument("--no-notify", action="store_true", help="never notify; the platform must poll qr-mpm-query")
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> None:
    simulator = Simulator(args)
    if args.pay:
        terminal, _, amount = args.pay.rpartition(":")
        if not terminal or not amount.isdigit():
            sys.exit("qris-soundbox: --pay takes TERMINAL_ID:AMOUNT, e.g. T001:25000")
        if not simulator.notify:
            sys.exit("qris-soundbox: --pay sends a notification; it cannot be combined with --no-notify")
        answer = asyncio.run(simulator.pay(amount=int(amount), terminal_id=terminal))
        assert answer is not None
        print(answer.text, flush=True)
        sys.exit(0 if answer.status_code == 200 else 1)
    asyncio.run(_serve(simulator, args.host, args.port))


async def _serve(simulator: Simulator, host: str, port: int) -> None:
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1] if site._server else port  # type: ignore[attr-defined]
    print(
        json.dumps(
            {"port": bound, "client_key": simulator.client_key, "public_key_pem": wire.public_key_pem(simulator.key)}
        ),
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
