"""The platform's public HTTP interface as the tools use it: an admin client,
device provisioning (register → rotate → bind) and signed acquirer callbacks.

Every tool goes through these routes, the same ones an operator, a field
technician or an acquirer uses, so a tool never knows more than they do.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from qris_soundbox.tools.common import prompt_secret, secret_from_stdin


def default_base_url() -> str:
    return os.environ.get("BASE_URL") or f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"


BASE_URL_HELP = "the control plane (default: $BASE_URL or http://127.0.0.1:$PORT)"


def admin_token(given: str | None) -> str:
    """``--admin-token``, else ``$ADMIN_TOKEN``, else a prompt (a person types it, so it is not echoed)."""
    token = given if given is not None else os.environ.get("ADMIN_TOKEN")
    if token is None:
        token = prompt_secret("the admin token", "give --admin-token or set ADMIN_TOKEN")
    if not token.strip():
        # Said so here: sent as "Bearer ", it would read as an unreachable or refusing platform.
        sys.exit("qris-soundbox: the admin token is empty")
    return token.strip()


def webhook_secret(from_stdin: bool = False) -> str:
    """The key to sign test callbacks with: the first of ``INTEGRATION_WEBHOOK_SECRET``'s list (the current one)."""
    label = "the webhook secret"
    secret = secret_from_stdin(label) if from_stdin else os.environ.get("INTEGRATION_WEBHOOK_SECRET")
    if secret is None:
        secret = prompt_secret(label, "set INTEGRATION_WEBHOOK_SECRET or pipe it in with --webhook-secret-stdin")
    first = secret.split(",")[0].strip()
    if not first:
        sys.exit(f"qris-soundbox: {label} is empty")
    return first


class ApiError(Exception):
    """A call the platform refused (or could not be reached for): status, code and message."""

    def __init__(self, method: str, path: str, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{method} {path}: {status or 'no answer'} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def error_of(method: str, path: str, response: httpx.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(method, path, response.status_code, error["code"], error["message"])
    except (ValueError, KeyError, TypeError):
        return ApiError(method, path, response.status_code, "unexpected_response", response.text[:200])


@dataclass(frozen=True)
class DeviceCredential:
    """What a device needs to connect: its id, its secret, where the broker is and how to trust it."""

    device_id: str
    secret: str
    fingerprint: str = ""
    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    broker_scheme: str = "mqtt"  # mqtts: MQTT over TLS
    broker_ca_pem: str | None = None  # the CA of the broker's certificate, when the platform hands one out
    # The platform's announcement keys (``AnnouncementKeys`` as JSON), when the profile carried them.
    announcement_keys: dict[str, Any] | None = None

    @classmethod
    def from_issued(cls, issued: dict[str, Any]) -> DeviceCredential:
        """From a credential rotation's answer (``POST /admin/devices/{id}/credentials/rotate``)."""
        broker = issued["broker"]
        return cls(
            device_id=issued["device_id"],
            secret=issued["mqtt_password"],
            fingerprint=issued["fingerprint"],
            broker_host=broker["host"],
            broker_port=broker["port"],
            broker_scheme=broker.get("scheme", "mqtt"),
            broker_ca_pem=broker.get("ca_pem"),
            announcement_keys=issued.get("announcement_keys"),
        )


async def device_announcement_keys(base_url: str, credential: DeviceCredential) -> dict[str, Any]:
    """``GET /device/keys`` as the device itself asks (its own secret): the keys its announcements are signed with."""
    path = "/device/keys"
    headers = {"X-Device-Id": credential.device_id, "X-Device-Secret": credential.secret}
    try:
        async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=15.0) as http:
            response = await http.get(path, headers=headers)
    except httpx.HTTPError as exc:
        raise ApiError("GET", path, None, "unreachable", f"cannot reach {base_url}: {exc}") from None
    if response.status_code >= 400:
        raise error_of("GET", path, response)
    return response.json()


class AdminApi:
    """Admin routes over one httpx client; each call returns the decoded body or raises ``ApiError``.

    ``http``: a client of the caller's to send the calls on (the tests' own); it stays the caller's
    to close. Otherwise the API opens one and closes it on ``__aexit__``.
    """

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 15.0, http: httpx.AsyncClient | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self._owns_http = http is None
        self._auth = {"Authorization": f"Bearer {token}"}

    async def __aenter__(self) -> AdminApi:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        try:
            response = await self.http.request(
                method, path, json=json, params=params, headers=self._auth | (headers or {})
            )
        except httpx.HTTPError as exc:
            raise ApiError(method, path, None, "unreachable", f"cannot reach {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            raise error_of(method, path, response)
        return response.json()

    async def rotate_credential(self, device_id: str) -> dict[str, Any]:
        """A new secret for the device (shown only in this answer); old sessions are dropped."""
        return await self.call("POST", f"/admin/devices/{device_id}/credentials/rotate")

    async def provision_device(
        self, serial_number: str, model: str, terminal_id: str | None = None
    ) -> DeviceCredential:
        """Register, issue a credential and (optionally) bind to a terminal, as a field technician does."""
        device = await self.call("POST", "/admin/devices", json={"serial_number": serial_number, "model": model})
        issued = await self.rotate_credential(device["id"])
        if terminal_id:
            await self.call("POST", f"/admin/devices/{device['id']}/bind", json={"terminal_id": terminal_id})
        return DeviceCredential.from_issued(issued)

    async def create_merchant(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A new merchant, ``pending_review`` (SPEC §9)."""
        return await self.call("POST", "/admin/merchants", json=fields)

    async def approve_merchant(self, merchant_id: str) -> dict[str, Any]:
        return await self.call("POST", f"/admin/merchants/{merchant_id}/approve")

    async def create_outlet(self, merchant_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/admin/merchants/{merchant_id}/outlets", json=fields)

    async def create_terminal(self, outlet_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return await self.call("POST", f"/admin/outlets/{outlet_id}/terminals", json=fields)

    async def onboard_terminal(
        self,
        merchant_name: str,
        *,
        approve: bool = True,
        qris_ready: bool = True,
        fee_bps: int | None = None,
        mdr_category: str | None = None,
    ) -> dict[str, Any]:
        """A merchant, an outlet and a terminal, as an operator onboards them.

        The merchant is approved unless ``approve`` is false (``approved`` is then None), has the
        NMID and postal code a dynamic QR needs unless ``qris_ready`` is false, and pays its MDR
        category's schedule (``uke`` unless ``mdr_category`` says) or the ``fee_bps`` contract below it.
        """
        fields: dict[str, Any] = {"name": merchant_name, "city": "Jakarta", "mcc": "5499"}
        if qris_ready:
            fields |= {"nmid": random_nmid(), "postal_code": "10110"}
        if fee_bps is not None:
            fields["fee_bps"] = fee_bps
        if mdr_category is not None:
            fields["mdr_category"] = mdr_category
        merchant = await self.create_merchant(fields)
        approved = await self.approve_merchant(merchant["id"]) if approve else None
        outlet = await self.create_outlet(merchant["id"], {"name": "Outlet 1"})
        terminal = await self.create_terminal(outlet["id"], {"name": "Kasir 1"})
        return {"merchant": merchant, "approved": approved, "outlet": outlet, "terminal": terminal}


def random_nmid() -> str:
    """A well-formed QRIS NMID (``ID`` + 13 digits) unlikely to be taken: NMIDs are unique per merchant."""
    return "ID" + "".join(secrets.choice("0123456789") for _ in range(13))


def run_stamp() -> str:
    """A UTC month-day-time stamp naming a tool's objects (``Smoke Merchant 1126101500``), findable since
    they are never deleted. Short because a QRIS merchant name holds at most 25 characters."""
    return datetime.now(UTC).strftime("%m%d%H%M%S")


def callback_body(
    amount: int,
    *,
    transaction_id: str | None = None,
    terminal_id: str | None = None,
    status: str = "paid",
    event_id: str | None = None,
    provider_reference: str | None = None,
) -> dict[str, Any]:
    """An acquirer's notification for a dynamic QR (``transaction_id``) or a static QR (``terminal_id``);
    fresh ``event_id`` and ``provider_reference`` unless given (a replay reuses them)."""
    body: dict[str, Any] = {
        "event_id": event_id or f"evt-{uuid.uuid4().hex}",
        "status": status,
        "amount": amount,
        "currency": "IDR",
        "provider_reference": provider_reference or f"RRN{uuid.uuid4().hex[:16].upper()}",
        "paid_at": datetime.now(UTC).isoformat(),
    }
    if transaction_id:
        body["transaction_id"] = transaction_id
    if terminal_id:
        body["terminal_id"] = terminal_id
    return body


def callback_headers(secret: str, raw_body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """``X-Callback-Signature`` = hex HMAC-SHA256(secret, "<timestamp>.<raw body>") (SPEC §4)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), ts.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return {"X-Callback-Timestamp": ts, "X-Callback-Signature": signature, "Content-Type": "application/json"}


def device_headers(credential: DeviceCredential) -> dict[str, str]:
    return {"X-Device-Id": credential.device_id, "X-Device-Secret": credential.secret}
