"""The SNAP services a partner calls (SPEC §14): generate, query, cancel and refund a dynamic QR.

Every call is authenticated the same way, in this order, before its body is read:
``X-PARTNER-ID`` names an active partner, the bearer token was issued to it,
``X-TIMESTAMP`` is within the window, ``X-SIGNATURE`` is the HMAC-SHA512 of the
request with its secret (the current one, or the previous one while a rotation
overlaps; every candidate compared), then the per-partner rate limit. The
``X-EXTERNAL-ID`` is claimed in the transaction of the service's write, so a
refused call leaves it unused and a replay is ``409xx00``. Each call, answered or
refused, leaves one audit row.

A partner reaches only the merchants it was given: another merchant's terminal
or QR is *not found*, never *forbidden*, so ids cannot be probed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from qris_soundbox.core import audit, outbox
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.errors import DomainError, RateLimited
from qris_soundbox.core.partners import registry
from qris_soundbox.core.partners import schemas as s
from qris_soundbox.core.partners.errors import (
    DuplicatePartnerReference,
    DuplicatePartnerRefund,
    FeatureNotAllowed,
    PaidBill,
    RequestInProgress,
    TransactionExpired,
)
from qris_soundbox.core.payments import transactions as txns
from qris_soundbox.core.payments.dynamic_qr import issue_dynamic_qr
from qris_soundbox.core.refunds import service as refunds
from qris_soundbox.core.refunds.acquirer import carry_out as refund_through_acquirer
from qris_soundbox.core.refunds.errors import (
    RefundAmountInvalid,
    RefundExceedsRemaining,
    RefundInputInvalid,
    TransactionNotRefundable,
)
from qris_soundbox.core.refunds.schemas import Refund
from qris_soundbox.core.snap import amounts, codes, external_ids, timestamps, tokens, wire
from qris_soundbox.core.snap.codes import (
    InvalidFieldFormat,
    InvalidMerchant,
    MissingMandatoryField,
    SnapError,
    TooManyRequests,
    TransactionNotFound,
    UnauthorizedSignature,
)

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)

MAX_VALIDITY_S = 24 * 3600
MAX_REFERENCE_LENGTH = 64
# latestTransactionStatus of a QR as a query answers it (cancelled: a failed QR its partner cancelled).
QUERY_STATUS = {
    "paid": ("00", "Success"),
    "pending": ("03", "Pending"),
    "expired": ("06", "Expired"),
    "refunded": ("04", "Refunded"),
    "partially_refunded": ("04", "Partially Refunded"),
}
# A QR whose customer paid, refunded since or not: cancelling it is refused, refunding it is not.
PAID_STATUSES = ("paid", "partially_refunded", "refunded")
CANCELLED_REASON = "cancelled"

PATHS = {
    codes.QR_MPM_GENERATE: "/v1.0/qr/qr-mpm-generate",
    codes.QR_MPM_QUERY: "/v1.0/qr/qr-mpm-query",
    codes.QR_MPM_CANCEL: "/v1.0/qr/qr-mpm-cancel",
    codes.QR_MPM_REFUND: "/v1.0/qr/qr-mpm-refund",
}


class SnapCall(msgspec.Struct, kw_only=True, frozen=True):
    """One partner request as it came: what is signed, and the headers that matter."""

    service: int
    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]
    ip: str | None = None
    request_id: str | None = None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value.strip() if value is not None else None


def _actor(call: SnapCall, partner_id: str | None) -> AuditActor:
    return AuditActor(actor_type="partner", actor_id=partner_id, request_id=call.request_id, ip=call.ip)


async def authenticate(platform: PlatformContext, conn: Connection, call: SnapCall) -> asyncpg.Record:
    """The calling partner's row, or the SNAP refusal (see the module docstring for the order)."""
    client_key = call.header("X-PARTNER-ID")
    if not client_key:
        raise MissingMandatoryField("X-PARTNER-ID is required")
    partner = await conn.fetchrow(QUERIES["partner_by_client_key"], client_key)
    if partner is None or partner["status"] != "active":
        # One answer for unknown and suspended: the caller learns nothing about which keys exist.
        raise UnauthorizedSignature("unknown or inactive X-PARTNER-ID")
    token = tokens.bearer(call.header("Authorization"))
    await tokens.check(conn, token, "partner", partner["id"])
    timestamp = call.header("X-TIMESTAMP")
    timestamps.check_window(timestamp)
    assert timestamp is not None  # check_window refuses a missing one
    signature = call.header("X-SIGNATURE")
    if not signature:
        raise UnauthorizedSignature("X-SIGNATURE is required")
    message = wire.symmetric_string_to_sign(call.method, call.path, token, call.body, timestamp)
    matched = [
        wire.hmac_verify(secret, message, signature) for secret in registry.secrets_of(platform.settings, partner)
    ]
    if not any(matched):
        raise UnauthorizedSignature("X-SIGNATURE does not match the request")
    try:
        await platform.rate_limiter.hit("partner", partner["id"])
    except RateLimited as exc:
        raise TooManyRequests(exc.message) from None
    return partner


def _decode(body: bytes, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        if text.startswith("Object missing required field"):
            raise MissingMandatoryField(text) from None
        raise InvalidFieldFormat(text) from None
    except msgspec.DecodeError:
        raise InvalidFieldFormat("the body is not valid JSON") from None


def _reference(value: str, field: str) -> str:
    if not value or len(value) > MAX_REFERENCE_LENGTH or not value.isascii() or not value.isprintable():
        raise InvalidFieldFormat(f"{field} must be 1 to {MAX_REFERENCE_LENGTH} printable ASCII characters")
    return value


def _validity(value: str | None, now: datetime) -> int | None:
    """``validityPeriod`` (ISO-8601 with a zone, in the future, within a day) as seconds from now."""
    if value is None:
        return None
    until = timestamps.parse(value)
    if until is None:
        raise InvalidFieldFormat("validityPeriod must be ISO-8601 with Z or an offset")
    seconds = int((until - now).total_seconds())
    if not 0 < seconds <= MAX_VALIDITY_S:
        raise InvalidFieldFormat("validityPeriod must be in the future and at most 24 hours away")
    return seconds


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(timestamps.WIB).isoformat(timespec="seconds") if moment is not None else None


def _amount(rupiah: int) -> dict[str, str]:
    return {"value": amounts.value(rupiah), "currency": "IDR"}


def _generated(service: int, transaction_id: str, partner_reference_no: str, qr_content: str) -> dict[str, Any]:
    return {
        "responseCode": codes.response_code(200, service, 0),
        "responseMessage": "Successful",
        "referenceNo": transaction_id,
        "partnerReferenceNo": partner_reference_no,
        "qrContent": qr_content,
    }


async def generate(
    platform: PlatformContext, conn: Connection, partner: asyncpg.Record, call: SnapCall
) -> dict[str, Any]:
    """``qr-mpm-generate``: a dynamic QRIS on one of the partner's terminals, shown at once on the
    terminal's screen soundbox if it has one (the partner gets the QR either way).

    The same ``partnerReferenceNo`` for the same terminal and amount answers the QR it already
    got (a retry after a lost answer); for anything else it is ``4094701``."""
    request: s.GenerateRequest = _decode(call.body, s.GenerateRequest)
    reference_no = _reference(request.partnerReferenceNo, "partnerReferenceNo")
    amount = amounts.rupiah(request.amount.value, request.amount.currency)
    # Bank Indonesia's ceiling for one QRIS payment (QRIS_MAX_AMOUNT, docs/finance.md).
    limit = platform.settings.qris_max_amount
    if not 0 < amount <= limit:
        raise codes.InvalidAmount(f"amount must be between 1 and {limit} rupiah (one QRIS payment)")
    ttl_s = _validity(request.validityPeriod, datetime.now(UTC))
    existing = await conn.fetchrow(QUERIES["partner_qr"], partner["id"], None, reference_no)
    if existing is not None:
        if existing["terminal_id"] == request.terminalId and existing["amount"] == amount:
            return _generated(call.service, existing["id"], reference_no, existing["qr_payload"])
        raise DuplicatePartnerReference(f"partnerReferenceNo {reference_no} was used for another QR")
    terminal = await conn.fetchrow(QUERIES["partner_terminal"], partner["id"], request.terminalId)
    if terminal is None or terminal["merchant_id"] != request.merchantId:
        raise InvalidMerchant(f"terminal {request.terminalId} of merchant {request.merchantId} not found")
    try:
        txns.check_payable(request.terminalId, terminal)
        row = await issue_dynamic_qr(
            conn,
            platform.settings,
            terminal,
            amount,
            acquirers=platform.acquirer_clients,
            source="partner",
            device_id=terminal["screen_device_id"],
            ttl_s=ttl_s,
        )
    except DomainError as exc:
        raise InvalidMerchant(exc.message) from None
    if await conn.fetchval(QUERIES["record_partner_qr"], row["id"], partner["id"], reference_no) is None:
        # Another call with this partnerReferenceNo committed between our read and our write.
        raise DuplicatePartnerReference(f"partnerReferenceNo {reference_no} was used for another QR")
    if terminal["screen_device_id"] is not None:
        # What a screen soundbox gets when it asks for a QR itself, without a request of its own.
        await outbox.enqueue(
            conn,
            device_id=terminal["screen_device_id"],
            kind="dynamic_qr_response",
            body={
                "request_id": None,
                "transaction_id": row["id"],
                "qr_payload": row["qr_payload"],
                "expires_at": row["expires_at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
            },
            expires_at=row["expires_at"],
            transaction_id=row["id"],
        )
    return _generated(call.service, row["id"], reference_no, row["qr_payload"])


async def _partner_qr(
    conn: Connection, partner: asyncpg.Record, call: SnapCall
) -> tuple[s.QrReference, asyncpg.Record]:
    request: s.QrReference = _decode(call.body, s.QrReference)
    if request.originalReferenceNo is None and request.originalPartnerReferenceNo is None:
        raise MissingMandatoryField("originalReferenceNo or originalPartnerReferenceNo is required")
    for value, field in (
        (request.originalReferenceNo, "originalReferenceNo"),
        (request.originalPartnerReferenceNo, "originalPartnerReferenceNo"),
    ):
        if value is not None:
            _reference(value, field)
    qr = await conn.fetchrow(
        QUERIES["partner_qr"], partner["id"], request.originalReferenceNo, request.originalPartnerReferenceNo
    )
    if qr is None:
        raise TransactionNotFound("no QR of this partner has that reference")
    return request, qr


def _status(qr: asyncpg.Record) -> tuple[str, str]:
    if qr["cancelled_at"] is not None and qr["status"] not in PAID_STATUSES:
        return "05", "Cancelled"
    return QUERY_STATUS.get(qr["status"], ("06", "Failed"))


async def query(platform: PlatformContext, conn: Connection, partner: asyncpg.Record, call: SnapCall) -> dict[str, Any]:
    """``qr-mpm-query``: where the partner's QR stands."""
    _, qr = await _partner_qr(conn, partner, call)
    status, description = _status(qr)
    answer: dict[str, Any] = {
        "responseCode": codes.response_code(200, call.service, 0),
        "responseMessage": "Successful",
        "originalReferenceNo": qr["id"],
        "originalPartnerReferenceNo": qr["partner_reference_no"],
        "serviceCode": str(codes.QR_MPM_GENERATE),
        "latestTransactionStatus": status,
        "transactionStatusDesc": description,
        "amount": _amount(qr["amount"]),
        "additionalInfo": {"merchantId": qr["merchant_id"], "terminalId": qr["terminal_id"]},
    }
    if qr["paid_at"] is not None:
        answer["paidTime"] = _iso(qr["paid_at"])
    return answer


async def cancel(
    platform: PlatformContext, conn: Connection, partner: asyncpg.Record, call: SnapCall
) -> dict[str, Any]:
    """``qr-mpm-cancel``: the QR stops being payable (failed, reason ``cancelled``); a payment
    that still arrives is applied and becomes a reconciliation exception (sql/migrations/140)."""
    _, qr = await _partner_qr(conn, partner, call)
    if qr["status"] in PAID_STATUSES:
        raise PaidBill(f"QR {qr['id']} is already paid; refund it instead")
    if qr["status"] == "expired" or (qr["status"] == "failed" and qr["cancelled_at"] is None):
        raise TransactionExpired(f"QR {qr['id']} is already {qr['status']}")
    cancelled_at = qr["cancelled_at"]
    if qr["status"] == "pending":
        # Marked first, so the notification the transition queues says cancelled (05).
        cancelled_at = await conn.fetchval(QUERIES["cancel_partner_qr"], qr["id"])
        await txns.transition(
            conn, qr["id"], txns.transition_request("failed", source="partner", reason=CANCELLED_REASON)
        )
    return {
        "responseCode": codes.response_code(200, call.service, 0),
        "responseMessage": "Successful",
        "originalReferenceNo": qr["id"],
        "originalPartnerReferenceNo": qr["partner_reference_no"],
        "cancelTime": _iso(cancelled_at),
    }


def _refunded(service: int, qr: asyncpg.Record, refund: Refund) -> dict[str, Any]:
    return {
        "responseCode": codes.response_code(200, service, 0),
        "responseMessage": "Successful",
        "originalReferenceNo": qr["id"],
        "originalPartnerReferenceNo": qr["partner_reference_no"],
        "refundNo": refund.id,
        "partnerRefundNo": refund.partner_refund_no,
        "refundAmount": _amount(refund.amount),
        "refundTime": _iso(refund.completed_at or refund.created_at),
    }


async def refund(
    platform: PlatformContext, conn: Connection, partner: asyncpg.Record, call: SnapCall
) -> dict[str, Any]:
    """``qr-mpm-refund``: a full or partial refund of the partner's paid QR, through the money
    core (core/refunds: the amount left is the database's). ``partnerRefundNo`` is unique per
    partner: the same one for the same QR and amount answers the refund it already made (a retry
    after a lost answer); for anything else it is ``4097801``. Partners' refunds need no second
    person's approval (docs/finance.md)."""
    _, qr = await _partner_qr(conn, partner, call)
    request: s.RefundRequest = _decode(call.body, s.RefundRequest)
    refund_no = _reference(request.partnerRefundNo, "partnerRefundNo")
    amount = amounts.rupiah(request.refundAmount.value, request.refundAmount.currency)
    existing = await conn.fetchrow(QUERIES["partner_refund"], partner["id"], refund_no)
    if existing is not None:
        if existing["transaction_id"] == qr["id"] and existing["amount"] == amount:
            return _refunded(call.service, qr, await refunds.get_refund(conn, existing["id"]))
        raise DuplicatePartnerRefund(f"partnerRefundNo {refund_no} was used for another refund")
    reason = request.reason.strip() if request.reason and request.reason.strip() else "refund asked for by the POS"
    try:
        made = await refunds.request_refund(
            conn,
            platform.settings,
            _actor(call, partner["id"]),
            qr["id"],
            amount=amount,
            reason=reason,
            source="partner",
            partner_id=partner["id"],
            partner_refund_no=refund_no,
        )
    except (RefundAmountInvalid, RefundExceedsRemaining) as exc:
        raise codes.InvalidAmount(exc.message) from None
    except TransactionNotRefundable as exc:
        raise FeatureNotAllowed(exc.message) from None
    except RefundInputInvalid as exc:
        raise InvalidFieldFormat(exc.message) from None
    except asyncpg.UniqueViolationError:
        # Another call with this partnerRefundNo committed between our read and our write.
        raise DuplicatePartnerRefund(f"partnerRefundNo {refund_no} was used for another refund") from None
    return _refunded(call.service, qr, made)


async def refund_at_acquirer(platform: PlatformContext, answer: dict[str, Any]) -> dict[str, Any]:
    """After the refund's transaction committed: one still pending goes to the merchant's SNAP
    acquirer, and its answer is the partner's."""
    made = await refund_through_acquirer(platform, answer["refundNo"])
    if made.status == "failed":
        raise FeatureNotAllowed(f"the acquirer refused the refund: {made.failure_reason}")
    if made.status == "pending":
        raise RequestInProgress("the acquirer has not answered yet; query again later")
    return answer | {"refundTime": _iso(made.completed_at)}


SERVICES = {
    codes.QR_MPM_GENERATE: generate,
    codes.QR_MPM_QUERY: query,
    codes.QR_MPM_CANCEL: cancel,
    codes.QR_MPM_REFUND: refund,
}


async def handle(platform: PlatformContext, call: SnapCall) -> tuple[int, dict[str, Any]]:
    """The HTTP status and SNAP body of one partner call. Never raises: every failure is a SNAP
    answer; the call and its outcome are audited (a refusal in a transaction of its own, since
    the service's own transaction was rolled back)."""
    partner_id: str | None = None
    try:
        async with platform.db.transaction() as conn:
            partner = await authenticate(platform, conn, call)
            partner_id = partner["id"]
            external_id = external_ids.check_format(call.header("X-EXTERNAL-ID"))
            await external_ids.claim(conn, "partner", partner_id, external_id)
            answer = await SERVICES[call.service](platform, conn, partner, call)
            await _audit(conn, call, partner_id, answer["responseCode"], answer)
        if call.service == codes.QR_MPM_REFUND:
            answer = await refund_at_acquirer(platform, answer)
        return 200, answer
    except SnapError as exc:
        error: SnapError = exc
    except Exception:
        log.exception("partner SNAP call failed", extra={"service": call.service})
        error = codes.GeneralError()
    refusal = msgspec.to_builtins(error.response(call.service))
    try:
        async with platform.db.transaction() as conn:
            await _audit(conn, call, partner_id, refusal["responseCode"], refusal)
    except Exception:
        log.exception("partner SNAP refusal could not be audited", extra={"service": call.service})
    return error.status, refusal


async def _audit(conn: Connection, call: SnapCall, partner_id: str | None, code: str, answer: dict[str, Any]) -> None:
    await audit.record(
        conn,
        _actor(call, partner_id),
        f"partner.snap.{call.path.rsplit('/', 1)[-1]}",
        entity_type="transaction" if "referenceNo" in answer or "originalReferenceNo" in answer else None,
        entity_id=answer.get("referenceNo") or answer.get("originalReferenceNo"),
        payload={
            "response_code": code,
            "external_id": call.header("X-EXTERNAL-ID"),
            "message": answer.get("responseMessage"),
        },
    )


async def partner_for_token(conn: Connection, client_key: str) -> asyncpg.Record | None:
    """The active partner a B2B token request names by ``X-CLIENT-KEY``; None when no partner has it
    (the token endpoint then tries the acquirers, or refuses)."""
    partner = await conn.fetchrow(QUERIES["partner_by_client_key"], client_key)
    return partner if partner is not None and partner["status"] == "active" else None
