"""SNAP out (SPEC §13): the platform calling an acquirer's QR MPM API with httpx.

One ``SnapClient`` per acquirer and process (``clients.AcquirerClients`` keeps them). Its B2B
token is cached until a minute before expiry and refreshed by one caller at a time: concurrent
calls that find it stale wait on the same lock and reuse the token the first one got, so a burst
of generates costs one token request. Calls are signed symmetric (HMAC-SHA512 with the acquirer's
``client_secret``), the token request with the platform's ``private_key_pem``.

Every attempt goes through ``_post``: the circuit breaker first, one JSON log line per attempt
(signature and token masked), the metrics, then the answer's checks (HTTP status, responseCode,
and the acquirer's own signature on it when it sends one). What is retried (docs/acquirers.md
"Calls out"):

- the token request and ``qr-mpm-query``: any transport failure or 5xx, they change nothing;
- ``qr-mpm-generate``: only when the connection was never made (the request cannot have
  reached the acquirer), with the same ``partnerReferenceNo`` (the platform's transaction id)
  and a new ``X-EXTERNAL-ID``; a timeout after sending is not retried, the QR is refused and,
  should the acquirer have issued one, it is never shown and expires there unpaid;
- ``qr-mpm-cancel``: not within a call; the poller (``polling``) asks again on its next round.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import httpx

from qris_soundbox.core.errors import DomainError, Unavailable
from qris_soundbox.core.snap import amounts, codes, timestamps, wire

if TYPE_CHECKING:
    from qris_soundbox.core.metrics import Metrics

TOKEN_PATH = "/v1.0/access-token/b2b"
GENERATE_PATH = "/v1.0/qr/qr-mpm-generate"
QUERY_PATH = "/v1.0/qr/qr-mpm-query"
CANCEL_PATH = "/v1.0/qr/qr-mpm-cancel"
REFUND_PATH = "/v1.0/qr/qr-mpm-refund"
REFRESH_MARGIN_S = 60
MASK = "********"
RETRY_BACKOFF_S = 0.2

log = logging.getLogger(__name__)

Retry = Literal["never", "unsent", "always"]
_RETRIES = {"never": 0, "unsent": 1, "always": 2}


class AcquirerCallFailed(Unavailable):
    """The acquirer could not be reached, answered late, with a 5xx, or with an answer that is not SNAP's."""

    code = "acquirer_unavailable"


class AcquirerCircuitOpen(Unavailable):
    """Too many calls to this acquirer failed in a row: calls are refused at once until a probe succeeds."""

    code = "acquirer_circuit_open"


class AcquirerRefused(DomainError):
    """The acquirer answered, properly signed, and said no (a 4xx SNAP code): retrying will not help."""

    code = "acquirer_refused"
    status = 502


class CircuitBreaker:
    """Closed → open after ``failures_to_open`` failures in a row → after ``open_s``, half-open:
    one probe call goes through; its success closes the circuit, its failure opens it again."""

    def __init__(self, failures_to_open: int = 5, open_s: float = 30.0) -> None:
        self.failures_to_open = failures_to_open
        self.open_s = open_s
        self.state: Literal["closed", "open", "half_open"] = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and time.monotonic() - self._opened_at >= self.open_s:
            self.state = "half_open"
        if self.state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self.state, self._failures, self._probing = "closed", 0, False

    def failed(self) -> None:
        self._failures += 1
        if self.state == "half_open" or self._failures >= self.failures_to_open:
            self.state, self._opened_at, self._probing = "open", time.monotonic(), False


class SnapClient:
    def __init__(
        self,
        *,
        code: str,
        base_url: str,
        client_key: str,
        client_secret: str,
        private_key_pem: str,
        public_key_pem: str | None = None,
        answer_signature: str = "optional",
        channel_id: str = "95221",
        timeout_s: float = 10.0,
        breaker: CircuitBreaker | None = None,
        metrics: Metrics | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.code = code
        self._client_key = client_key
        self._client_secret = client_secret
        self._key = wire.load_private_key(private_key_pem)
        # The acquirer's key: verifies the X-SIGNATURE it puts on its answers.
        self._acquirer_key = wire.load_public_key(public_key_pem) if public_key_pem else None
        self._answer_signature = answer_signature
        self._channel_id = channel_id
        self.base_url = base_url.rstrip("/")
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s)
        self.breaker = breaker or CircuitBreaker()
        self._metrics = metrics
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

            def headers() -> dict[str, str]:
                ts = timestamps.now_timestamp()
                return {
                    "X-CLIENT-KEY": self._client_key,
                    "X-TIMESTAMP": ts,
                    "X-SIGNATURE": wire.rsa_sign(self._key, wire.token_string_to_sign(self._client_key, ts)),
                }

            answer = await self._post(
                "token", TOKEN_PATH, b'{"grantType":"client_credentials"}', headers, codes.ACCESS_TOKEN, "always"
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

    async def call(
        self, operation: str, path: str, body: dict[str, Any], service: int, retry: Retry = "never"
    ) -> dict[str, Any]:
        """One signed SNAP call; the answer's body when its responseCode is ``200<service>..``."""
        if not self.breaker.allow():  # before the token: an open circuit costs nothing
            self._count(operation, "circuit_open")
            raise AcquirerCircuitOpen(
                f"acquirer {self.code}: too many failed calls, not calling it for now", retry_after_s=5
            )
        token = await self.token()
        # Sent minified with raw UTF-8, as JSON.stringify would: the bytes signed are the bytes sent.
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

        def headers() -> dict[str, str]:
            # Signed again for every attempt: a new timestamp and a new X-EXTERNAL-ID (a retry is a new request).
            ts = timestamps.now_timestamp()
            return {
                "Authorization": f"Bearer {token}",
                "X-TIMESTAMP": ts,
                "X-SIGNATURE": wire.hmac_sign(
                    self._client_secret, wire.symmetric_string_to_sign("POST", path, token, raw, ts)
                ),
                "X-PARTNER-ID": self._client_key,
                "X-EXTERNAL-ID": uuid.uuid4().hex,
                "CHANNEL-ID": self._channel_id,
            }

        return await self._post(operation, path, raw, headers, service, retry)

    async def generate(
        self, *, partner_reference: str, amount: int, merchant_id: str, terminal_id: str, validity_s: int
    ) -> dict[str, Any]:
        return await self.call(
            "generate",
            GENERATE_PATH,
            {
                "partnerReferenceNo": partner_reference,
                "amount": {"value": amounts.value(amount), "currency": "IDR"},
                "merchantId": merchant_id,
                "terminalId": terminal_id,
                "validityPeriod": str(validity_s),
            },
            codes.QR_MPM_GENERATE,
            "unsent",
        )

    async def query(self, *, original_reference: str) -> dict[str, Any]:
        return await self.call(
            "query",
            QUERY_PATH,
            {"originalReferenceNo": original_reference, "serviceCode": "47"},
            codes.QR_MPM_QUERY,
            "always",
        )

    async def cancel(self, *, original_reference: str, partner_reference: str, reason: str) -> dict[str, Any]:
        return await self.call(
            "cancel",
            CANCEL_PATH,
            {
                "originalReferenceNo": original_reference,
                "originalPartnerReferenceNo": partner_reference,
                "reason": reason,
            },
            codes.QR_MPM_CANCEL,
        )

    async def refund(
        self, *, original_reference: str, partner_refund_no: str, amount: int, reason: str
    ) -> dict[str, Any]:
        """``qr-mpm-refund`` (78) of a payment the acquirer knows by ``original_reference`` (its RRN).

        Retried only when it was never sent: the acquirer deduplicates by ``partnerRefundNo``, but a
        refund is money out, so an answer lost in flight is left to the operator's retry."""
        return await self.call(
            "refund",
            REFUND_PATH,
            {
                "originalReferenceNo": original_reference,
                "partnerRefundNo": partner_refund_no,
                "refundAmount": {"value": amounts.value(amount), "currency": "IDR"},
                "reason": reason,
            },
            codes.QR_MPM_REFUND,
            "unsent",
        )

    async def _post(
        self,
        operation: str,
        path: str,
        raw: bytes,
        headers: Callable[[], dict[str, str]],
        service: int,
        retry: Retry,
    ) -> dict[str, Any]:
        """The attempts of one call; the circuit was asked by ``call`` (a token request is part of a call)."""
        attempts = 1 + _RETRIES[retry]
        for attempt in range(1, attempts + 1):
            sent = headers()
            started = time.monotonic()
            try:
                answer = await self._attempt(operation, path, raw, sent, service)
            except AcquirerCallFailed as failure:
                self._log(operation, path, sent, attempt, started, "error", failure.message)
                self.breaker.failed()
                self._count(operation, "error", started, str((failure.details or {}).get("reason", "error")))
                unsent = (failure.details or {}).get("reason") == "connect"
                if attempt < attempts and (retry == "always" or unsent):
                    await asyncio.sleep(RETRY_BACKOFF_S * attempt)
                    continue
                raise
            except AcquirerRefused as refusal:
                # The acquirer is up and answered: a refusal is no failure of the link.
                self._log(operation, path, sent, attempt, started, "refused", refusal.message)
                self.breaker.succeeded()
                self._count(operation, "refused", started)
                raise
            self._log(operation, path, sent, attempt, started, "ok", None)
            self.breaker.succeeded()
            self._count(operation, "ok", started)
            return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(
        self, operation: str, path: str, raw: bytes, headers: dict[str, str], service: int
    ) -> dict[str, Any]:
        def failed(reason: str, message: str, **details: Any) -> AcquirerCallFailed:
            return AcquirerCallFailed(
                f"acquirer {self.code} {operation}: {message}",
                details={"reason": reason, "acquirer": self.code} | details,
            )

        try:
            response = await self._http.post(path, content=raw, headers={"Content-Type": "application/json", **headers})
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise failed("connect", "could not connect") from None
        except httpx.TimeoutException:
            raise failed("timeout", "no answer in time") from None
        except httpx.HTTPError as exc:
            raise failed("transport", type(exc).__name__) from None
        if response.status_code >= 500:
            raise failed("http_5xx", f"answered HTTP {response.status_code}", status=response.status_code)
        self._check_signature(path, response, failed)
        try:
            answer = response.json()
        except ValueError:
            raise failed("bad_answer", "answered something that is not JSON") from None
        code = answer.get("responseCode") if isinstance(answer, dict) else None
        if not isinstance(code, str) or len(code) != 7 or not code.isdigit():
            raise failed("bad_answer", "answered without a SNAP responseCode", status=response.status_code)
        if response.status_code == 200 and code.startswith(f"200{service:02d}"):
            return answer
        raise AcquirerRefused(
            f"acquirer {self.code} refused {operation}: {code} {str(answer.get('responseMessage', ''))[:200]}",
            details={"acquirer": self.code, "status": response.status_code, "responseCode": code},
        )

    def _check_signature(self, path: str, response: httpx.Response, failed: Callable[..., AcquirerCallFailed]) -> None:
        """An answer's ``X-SIGNATURE`` (SHA256withRSA over ``POST:path:sha256(body):X-TIMESTAMP``, the
        acquirer's key) is checked when it carries one, and required when ``answer_signature`` says so."""
        signature = response.headers.get("x-signature")
        if signature is None:
            if self._answer_signature == "required":
                raise failed("bad_signature", "answered without X-SIGNATURE")
            return
        message = wire.asymmetric_string_to_sign(
            "POST", path, response.content, response.headers.get("x-timestamp", "")
        )
        if self._acquirer_key is None or not wire.rsa_verify(self._acquirer_key, message, signature):
            raise failed("bad_signature", "answered with a signature that does not verify")

    def _log(
        self,
        operation: str,
        path: str,
        headers: dict[str, str],
        attempt: int,
        started: float,
        outcome: str,
        problem: str | None,
    ) -> None:
        masked = {name: MASK if name in ("X-SIGNATURE", "Authorization") else value for name, value in headers.items()}
        log.info(
            "acquirer call",
            extra={
                "acquirer": self.code,
                "operation": operation,
                "path": path,
                "attempt": attempt,
                "outcome": outcome,
                "problem": problem,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
                "headers": masked,
                "circuit": self.breaker.state,
            },
        )

    def _count(self, operation: str, outcome: str, started: float | None = None, reason: str | None = None) -> None:
        if self._metrics is not None:
            self._metrics.observe_acquirer_call(
                self.code,
                operation,
                outcome,
                None if started is None else time.monotonic() - started,
                reason,
                self.breaker.state,
            )
