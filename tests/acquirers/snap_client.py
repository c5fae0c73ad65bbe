"""An acquirer's side of SNAP, written here from the standard and not from core/snap: the tests sign
with hashlib/hmac/``cryptography`` directly, so a bug in the platform's signing cannot hide itself."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

NOTIFY = "/v1.0/qr/qr-mpm-notify"
TOKEN = "/v1.0/access-token/b2b"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def timestamp(offset_s: float = 0) -> str:
    wib = timezone(timedelta(hours=7))
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).astimezone(wib).isoformat(timespec="seconds")


def rsa_b64(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def hmac_b64(secret: str, message: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message.encode(), hashlib.sha512).digest()).decode()


def minified(body: Any) -> bytes:
    """What JSON.stringify sends: no whitespace, raw UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


class Acquirer:
    def __init__(self, client_key: str, key: rsa.RSAPrivateKey, client_secret: str | None) -> None:
        self.client_key = client_key
        self.key = key
        self.client_secret = client_secret

    async def token(self, http: httpx.AsyncClient, ts: str | None = None) -> httpx.Response:
        ts = ts or timestamp()
        return await http.post(
            TOKEN,
            content=b'{"grantType":"client_credentials"}',
            headers={
                "Content-Type": "application/json",
                "X-CLIENT-KEY": self.client_key,
                "X-TIMESTAMP": ts,
                "X-SIGNATURE": rsa_b64(self.key, f"{self.client_key}|{ts}"),
            },
        )

    async def access_token(self, http: httpx.AsyncClient) -> str:
        answer = await self.token(http)
        assert answer.status_code == 200, answer.text
        return answer.json()["accessToken"]

    def notify_headers(
        self,
        raw: bytes,
        *,
        token: str | None = None,
        ts: str | None = None,
        path: str = NOTIFY,
        signed_body: bytes | None = None,
        external_id: str | None = None,
    ) -> dict[str, str]:
        ts = ts or timestamp()
        digest = hashlib.sha256(signed_body if signed_body is not None else raw).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-TIMESTAMP": ts,
            "X-PARTNER-ID": self.client_key,
            "X-EXTERNAL-ID": external_id or uuid.uuid4().hex,
            "CHANNEL-ID": "95221",
        }
        if token is not None:
            assert self.client_secret is not None
            headers["Authorization"] = f"Bearer {token}"
            headers["X-SIGNATURE"] = hmac_b64(self.client_secret, f"POST:{path}:{token}:{digest}:{ts}")
        else:
            headers["X-SIGNATURE"] = rsa_b64(self.key, f"POST:{path}:{digest}:{ts}")
        return headers


def notify_body(
    *,
    reference: str,
    amount: str = "25000.00",
    status: str = "00",
    terminal_id: str | None = None,
    transaction_id: str | None = None,
    merchant_name: str = "Warung Bu Ñoño",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "originalReferenceNo": reference,
        "latestTransactionStatus": status,
        "transactionStatusDesc": "success" if status == "00" else "other",
        "amount": {"value": amount, "currency": "IDR"},
        "additionalInfo": {"rrn": reference, "merchantName": merchant_name, "url": "https://x.id/a"},
    }
    if transaction_id is not None:
        body["originalPartnerReferenceNo"] = transaction_id
    if terminal_id is not None:
        body["additionalInfo"]["terminalId"] = terminal_id
    return body
