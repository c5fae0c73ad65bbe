"""A POS partner as the tests play it: its RSA key, its registration, its B2B token and signed SNAP calls.

Every signature here is computed with ``hmac``/``hashlib``/``cryptography`` directly, never with
``core.snap``: the platform's code is what these requests test.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.actors import unique
from tests.devices.helpers import eventually
from tests.support import free_port

WIB = timezone(timedelta(hours=7))
GENERATE = "/v1.0/qr/qr-mpm-generate"
QUERY = "/v1.0/qr/qr-mpm-query"
CANCEL = "/v1.0/qr/qr-mpm-cancel"
REFUND = "/v1.0/qr/qr-mpm-refund"
TOKEN = "/v1.0/access-token/b2b"


def snap_timestamp(shift_s: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=shift_s)).astimezone(WIB).isoformat(timespec="seconds")


def compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def new_rsa_key() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, public.decode()


def hmac_signature(secret: str, method: str, path: str, token: str, body: bytes, timestamp: str) -> str:
    digest = hashlib.sha256(body).hexdigest()
    message = f"{method}:{path}:{token}:{digest}:{timestamp}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha512).digest()).decode()


class Platform(Protocol):
    """Where a partner calls: a ``RunningPlatform``, or a ``serve`` subprocess's client (``Remote``)."""

    http: httpx.AsyncClient
    admin_headers: dict[str, str]


@dataclass
class Remote:
    http: httpx.AsyncClient
    admin_headers: dict[str, str]


@dataclass
class Partner:
    running: Platform
    id: str
    client_key: str
    client_secret: str
    private_key: rsa.RSAPrivateKey
    record: dict[str, Any]
    _token: str | None = field(default=None, repr=False)

    async def token(self) -> str:
        if self._token is None:
            timestamp = snap_timestamp()
            signature = self.private_key.sign(
                f"{self.client_key}|{timestamp}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
            answer = await self.running.http.post(
                TOKEN,
                content=b'{"grantType":"client_credentials"}',
                headers={
                    "Content-Type": "application/json",
                    "X-CLIENT-KEY": self.client_key,
                    "X-TIMESTAMP": timestamp,
                    "X-SIGNATURE": base64.b64encode(signature).decode(),
                },
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["responseCode"] == "2007300"
            self._token = answer.json()["accessToken"]
        return self._token

    async def call(
        self,
        path: str,
        body: Any,
        *,
        external_id: str | None = None,
        token: str | None = None,
        secret: str | None = None,
        timestamp: str | None = None,
        headers: dict[str, str | None] | None = None,
    ) -> httpx.Response:
        """A signed SNAP call; ``headers`` overrides (None drops a header)."""
        raw = body if isinstance(body, bytes) else compact(body)
        token = token if token is not None else await self.token()
        timestamp = timestamp or snap_timestamp()
        sent = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "X-TIMESTAMP": timestamp,
            "X-PARTNER-ID": self.client_key,
            "X-EXTERNAL-ID": external_id or unique("ext")[:36],
            "CHANNEL-ID": "95221",
            "X-SIGNATURE": hmac_signature(secret or self.client_secret, "POST", path, token, raw, timestamp),
        } | (headers or {})
        return await self.running.http.post(
            path, content=raw, headers={name: value for name, value in sent.items() if value is not None}
        )

    async def generate(self, terminal: dict[str, str], amount: str = "25000.00", **fields: Any) -> httpx.Response:
        body = {
            "partnerReferenceNo": unique("POS-")[:30],
            "amount": {"value": amount, "currency": "IDR"},
            "merchantId": terminal["merchant_id"],
            "terminalId": terminal["terminal_id"],
        } | fields
        return await self.call(GENERATE, body)


async def register_partner(
    running: Platform, merchant_ids: list[str], notify_url: str = "http://127.0.0.1:9/notify"
) -> Partner:
    private_key, public_pem = new_rsa_key()
    client_key = unique("pos-")[:40]
    answer = await running.http.post(
        "/admin/partners",
        json={
            "name": "Kasir Pintar",
            "client_key": client_key,
            "public_key_pem": public_pem,
            "notify_url": notify_url,
            "merchant_ids": merchant_ids,
        },
        headers=running.admin_headers,
    )
    assert answer.status_code == 201, answer.text
    record = answer.json()
    return Partner(running, record["id"], client_key, record["client_secret"], private_key, record)


@dataclass
class Receiver:
    url: str
    log: Path

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    async def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        async def enough() -> bool:
            return len(self.requests()) >= count

        assert await eventually(enough, timeout=timeout), self.requests()
        return self.requests()


def receiver_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/partner/notify"


@asynccontextmanager
async def receiver(directory: Path, mode: str = "ok", port: int | None = None) -> AsyncIterator[Receiver]:
    """A notification receiver in its own process (tests/partners/receiver.py)."""
    port = port or free_port()
    log = directory / f"receiver-{port}.jsonl"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.partners.receiver", str(port), str(log), mode, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=20)
        assert line.strip() == b"ready"
        yield Receiver(receiver_url(port), log)
    finally:
        proc.kill()
        await proc.wait()
