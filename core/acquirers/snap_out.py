"""SNAP out (SPEC §13): the platform calling an acquirer's QR MPM API with httpx.

One ``SnapClient`` per acquirer and process. Its B2B token is cached until a
minute before expiry and refreshed by one caller at a time: concurrent calls
that find it stale wait on the same lock and reuse the token the first one got,
so a burst of generates costs one token request. Calls are signed symmetric
(HMAC-SHA512 with the acquirer's ``client_secret``), the token request with the
platform's ``private_key_pem``.

Not yet here (docs/acquirers.md): retries, the circuit breaker, metrics, and
wiring into the dynamic QR and query polling.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx

from qris_soundbox.core.errors import Unavailable
from qris_soundbox.core.snap import amounts, codes, timestamps, wire

TOKEN_PATH = "/v1.0/access-token/b2b"
REFRESH_MARGIN_S = 60


class AcquirerCallFailed(Unavailable):
    code = "acquirer_unavailable"


class SnapClient:
    def __init__(
        self,
        *,
        code: str,
        base_url: str,
        client_key: str,
        client_secret: str,
        private_key_pem: str,
        channel_id: str = "95221",
        timeout_s: float = 10.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.code = code
        self._client_key = client_key
        self._client_secret = client_secret
        self._key = wire.load_private_key(private_key_pem)
        self._channel_id = channel_id
        self._http = http or httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._token: str | None = None
        self._token_until = 0.0
        self._refresh = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def token(self) -> str:
        if self._token and time.monotonic() < self._token_until:
            return self._token
        async with self._refresh:
            if self._token and time.monotonic() < self._token_until:  # another caller refreshed it meanwhile
                return self._token
            ts = timestamps.now_timestamp()
            answer = await self._post(
                TOKEN_PATH,
                b'{"grantType":"client_credentials"}',
                {
                    "X-CLIENT-KEY": self._client_key,
                    "X-TIMESTAMP": ts,
                    "X-SIGNATURE": wire.rsa_sign(self._key, wire.token_string_to_sign(self._client_key, ts)),
                },
                codes.ACCESS_TOKEN,
            )
            token = answer.get("accessToken")
            if not isinstance(token, str) or not token:
                raise AcquirerCallFailed(f"acquirer {self.code} answered a token request without accessToken")
            try:
                lifetime = int(answer.get("expiresIn", "900"))
            except (TypeError, ValueError):
                lifetime = 900
            self._token, self._token_until = token, time.monotonic() + max(0, lifetime - REFRESH_MARGIN_S)
            return token

    async def call(self, path: str, body: dict[str, Any], service: int) -> dict[str, Any]:
        """One signed SNAP call; the answer's body when its responseCode is ``200<service>..``."""
        token = await self.token()
        # Sent minified with raw UTF-8, as JSON.stringify would: the bytes signed are the bytes sent.
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ts = timestamps.now_timestamp()
        signature = wire.hmac_sign(self._client_secret, wire.symmetric_string_to_sign("POST", path, token, raw, ts))
        return await self._post(
            path,
            raw,
            {
                "Authorization": f"Bearer {token}",
                "X-TIMESTAMP": ts,
                "X-SIGNATURE": signature,
                "X-PARTNER-ID": self._client_key,
                "X-EXTERNAL-ID": uuid.uuid4().hex,
                "CHANNEL-ID": self._channel_id,
            },
            service,
        )

    async def generate(
        self, *, partner_reference: str, amount: int, merchant_id: str, terminal_id: str, validity_s: int
    ) -> dict[str, Any]:
        return await self.call(
            "/v1.0/qr/qr-mpm-generate",
            {
                "partnerReferenceNo": partner_reference,
                "amount": {"value": amounts.value(amount), "currency": "IDR"},
                "merchantId": merchant_id,
                "terminalId": terminal_id,
                "validityPeriod": str(validity_s),
            },
            codes.QR_MPM_GENERATE,
        )

    async def query(self, *, original_reference: str) -> dict[str, Any]:
        return await self.call(
            "/v1.0/qr/qr-mpm-query",
            {"originalReferenceNo": original_reference, "serviceCode": "47"},
            codes.QR_MPM_QUERY,
        )

    async def refund(
        self, *, original_reference: str, partner_refund_no: str, amount: int, reason: str
    ) -> dict[str, Any]:
        """``qr-mpm-refund`` (78) of a payment the acquirer knows by ``original_reference`` (its RRN)."""
        return await self.call(
            "/v1.0/qr/qr-mpm-refund",
            {
                "originalReferenceNo": original_reference,
                "partnerRefundNo": partner_refund_no,
                "refundAmount": {"value": amounts.value(amount), "currency": "IDR"},
                "reason": reason,
            },
            codes.QR_MPM_REFUND,
        )

    async def _post(self, path: str, raw: bytes, headers: dict[str, str], service: int) -> dict[str, Any]:
        try:
            response = await self._http.post(path, content=raw, headers={"Content-Type": "application/json", **headers})
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AcquirerCallFailed(f"acquirer {self.code}: {type(exc).__name__} on {path}") from None
        code = answer.get("responseCode") if isinstance(answer, dict) else None
        if response.status_code != 200 or not isinstance(code, str) or not code.startswith(f"200{service:02d}"):
            raise AcquirerCallFailed(
                f"acquirer {self.code} answered {response.status_code} {code} on {path}",
                details={"status": response.status_code, "responseCode": code},
            )
        return answer
