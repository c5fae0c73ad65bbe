"""SNAP in (SPEC §13): an acquirer's B2B token request and its QR MPM payment notification.

Order of work on a notification, and why:
1. The sender is named by ``X-PARTNER-ID``; its signature (HMAC-SHA512 with a
   token it got from us, or SHA256withRSA, as its registry entry says) is
   checked over the raw body minified as sent, then ``X-TIMESTAMP``'s window:
   an unsigned request learns nothing and changes nothing.
2. The body is decoded and mapped to the platform's terms (status table per
   acquirer, ``"25000.00"`` → 25000, the terminal or transaction it is for).
   Anything wrong is a SNAP error before a row is written.
3. ``X-EXTERNAL-ID`` is claimed; then the notification becomes a
   ``CallbackNotification`` and runs ``callbacks.handle_callback``, the same
   core path as the platform's own callback (§4): one transaction, one ledger
   set, one announcement, replays answered from the first result, mismatches
   recorded for reconciliation. A refusal there releases the external id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.acquirers.service import DEFAULT_SNAP_STATUS_MAP
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import AMOUNT_CEILING, Settings
from qris_soundbox.core.db import QUERIES, Connection, Database
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.partners.services import partner_for_token
from qris_soundbox.core.payments import callbacks
from qris_soundbox.core.payments import errors as payment_errors
from qris_soundbox.core.payments.schemas import CallbackNotification
from qris_soundbox.core.schemas import Struct
from qris_soundbox.core.secrets import SecretBox
from qris_soundbox.core.snap import amounts, codes, external_ids, timestamps, tokens, wire

if TYPE_CHECKING:
    from qris_soundbox.core.metrics import Metrics

NOTIFY_PATH = "/v1.0/qr/qr-mpm-notify"


class TokenRequest(Struct):
    grantType: str | None = None
    grant_type: str | None = None


class TokenAnswer(Struct):
    responseCode: str
    responseMessage: str
    accessToken: str
    tokenType: str
    expiresIn: str


class NotifyAmount(Struct):
    value: str
    currency: str


class NotifyBody(Struct):
    originalReferenceNo: str
    latestTransactionStatus: str
    amount: NotifyAmount
    originalPartnerReferenceNo: str | None = None
    transactionStatusDesc: str | None = None
    paidTime: str | None = None
    additionalInfo: dict[str, Any] = {}


class Headers(Struct):
    """The SNAP headers a route hands over (lower-case names, as HTTP/2 and ASGI give them)."""

    timestamp: str | None
    signature: str | None
    client_key: str | None = None
    partner_id: str | None = None
    external_id: str | None = None
    authorization: str | None = None


async def _acquirer_by_key(conn: Connection, client_key: str | None, header: str) -> asyncpg.Record:
    if not client_key:
        raise codes.MissingMandatoryField(f"{header} is required")
    row = await conn.fetchrow(QUERIES["acquirer_by_client_key"], client_key)
    if row is None:
        # The same answer as a bad signature: a prober learns nothing about which keys exist.
        raise codes.UnauthorizedSignature("unknown client or wrong signature")
    return row


class TokenClient(msgspec.Struct, frozen=True):
    """Who asks for a B2B token: an acquirer or a partner, told apart by ``X-CLIENT-KEY`` (SPEC §14)."""

    kind: tokens.ClientKind
    client_id: str
    public_key_pem: str
    entity_id: str


async def _token_client(conn: Connection, client_key: str | None) -> TokenClient:
    if not client_key:
        raise codes.MissingMandatoryField("X-CLIENT-KEY is required")
    acquirer = await conn.fetchrow(QUERIES["acquirer_by_client_key"], client_key)
    if acquirer is not None:
        return TokenClient("acquirer", acquirer["code"], acquirer["settings"]["public_key_pem"], acquirer["id"])
    partner = await partner_for_token(conn, client_key)
    if partner is not None:
        return TokenClient("partner", partner["id"], partner["public_key_pem"], partner["id"])
    # The same answer as a bad signature: a prober learns nothing about which keys exist.
    raise codes.UnauthorizedSignature("unknown client or wrong signature")


async def access_token(db: Database, headers: Headers, body: bytes, actor: AuditActor) -> TokenAnswer:
    """``POST /v1.0/access-token/b2b``: the acquirer's or partner's RSA signature over ``client_key|X-TIMESTAMP``."""
    async with db.pool.acquire() as conn:
        client = await _token_client(conn, headers.client_key)
        assert headers.client_key is not None
        message = wire.token_string_to_sign(headers.client_key, headers.timestamp or "")
        public_key = wire.load_public_key(client.public_key_pem)
        if not headers.signature or not wire.rsa_verify(public_key, message, headers.signature):
            raise codes.UnauthorizedSignature("unknown client or wrong signature")
        timestamps.check_window(headers.timestamp)
        try:
            grant = msgspec.json.decode(body, type=TokenRequest)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise codes.InvalidFieldFormat('the body must be {"grantType": "client_credentials"}') from None
        if (grant.grantType or grant.grant_type) != "client_credentials":
            raise codes.InvalidFieldFormat("grantType must be client_credentials")
        async with conn.transaction():
            token, _ = await tokens.issue(conn, client.kind, client.client_id)
            await audit.record(
                conn,
                actor,
                "snap.token_issued",
                entity_type=client.kind,
                entity_id=client.entity_id,
                payload={"code" if client.kind == "acquirer" else "partner_id": client.client_id},
            )
    return TokenAnswer(
        responseCode=codes.response_code(200, codes.ACCESS_TOKEN, 0),
        responseMessage="Successful",
        accessToken=token,
        tokenType="Bearer",
        expiresIn=str(tokens.LIFETIME_S),
    )


async def _verify_notify(conn: Connection, box: SecretBox, headers: Headers, body: bytes) -> asyncpg.Record:
    acquirer = await _acquirer_by_key(conn, headers.partner_id, "X-PARTNER-ID")
    settings = acquirer["settings"]
    timestamp = headers.timestamp or ""
    if not headers.signature:
        raise codes.UnauthorizedSignature("X-SIGNATURE is required")
    if settings.get("notify_signature", "symmetric") == "symmetric":
        token = tokens.bearer(headers.authorization)
        await tokens.check(conn, token, "acquirer", acquirer["code"])
        secret = box.open(acquirer["secrets"])["client_secret"]
        valid = wire.hmac_verify(
            secret, wire.symmetric_string_to_sign("POST", NOTIFY_PATH, token, body, timestamp), headers.signature
        )
    else:
        public_key = wire.load_public_key(settings["public_key_pem"])
        valid = wire.rsa_verify(
            public_key, wire.asymmetric_string_to_sign("POST", NOTIFY_PATH, body, timestamp), headers.signature
        )
    if not valid:
        raise codes.UnauthorizedSignature("the signature does not match")
    # After the signature, so the window cannot be probed without the key.
    timestamps.check_window(headers.timestamp)
    return acquirer


def _decode(body: bytes) -> NotifyBody:
    try:
        return msgspec.json.decode(body, type=NotifyBody)
    except msgspec.ValidationError as exc:
        if "missing required field" in str(exc):
            raise codes.MissingMandatoryField(str(exc)) from None
        raise codes.InvalidFieldFormat(str(exc)) from None
    except msgspec.DecodeError:
        raise codes.InvalidFieldFormat("the body is not valid JSON") from None


def _text(info: dict[str, Any], key: str) -> str | None:
    value = info.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise codes.InvalidFieldFormat(f"additionalInfo.{key} must be a text of 1–64 characters")
    return value


async def _target(conn: Connection, code: str, notify: NotifyBody) -> tuple[str | None, str | None]:
    """(transaction id, terminal id): a dynamic QR by ``originalPartnerReferenceNo``, a static one by terminal."""
    if notify.originalPartnerReferenceNo:
        if await conn.fetchval(QUERIES["transaction_acquirer"], notify.originalPartnerReferenceNo) != code:
            raise codes.TransactionNotFound(f"no transaction {notify.originalPartnerReferenceNo} of this acquirer")
        return notify.originalPartnerReferenceNo, None
    terminal = _text(notify.additionalInfo, "terminalId")
    if terminal is None:
        raise codes.MissingMandatoryField("originalPartnerReferenceNo or additionalInfo.terminalId is required")
    rows = await conn.fetch(
        QUERIES["terminal_by_acquirer_id"], code, terminal, _text(notify.additionalInfo, "merchantId")
    )
    if len(rows) != 1:
        problem = "is unknown" if not rows else "is ambiguous without additionalInfo.merchantId"
        raise codes.InvalidMerchant(f"terminal {terminal} {problem} at this acquirer")
    return None, rows[0]["id"]


def _paid_at(notify: NotifyBody) -> datetime:
    if notify.paidTime is None:
        return datetime.now(UTC)
    paid_at = timestamps.parse(notify.paidTime)
    if paid_at is None:
        raise codes.InvalidFieldFormat("paidTime must be ISO-8601 with Z or an offset")
    problem = callbacks.paid_at_problem(paid_at)
    if problem is not None:
        raise codes.InvalidFieldFormat(f"paidTime {problem}")
    return paid_at


# How the core path's refusals read in SNAP terms.
_REFUSALS: dict[str, type[codes.SnapError]] = {
    payment_errors.TerminalNotFound.code: codes.InvalidMerchant,
    payment_errors.MerchantNotActive.code: codes.InvalidMerchant,
    payment_errors.TransactionNotFound.code: codes.TransactionNotFound,
    payment_errors.AmountMismatch.code: codes.InvalidAmount,
    payment_errors.PaymentInputInvalid.code: codes.InvalidFieldFormat,
}


def snap_error_of(error: DomainError) -> codes.SnapError:
    if error.status == 503:
        return codes.Unavailable(error.message)
    if error.status == 409:
        return codes.InconsistentRequest(error.message)
    return _REFUSALS.get(error.code, codes.GeneralError)(error.message)


async def notify(
    db: Database,
    settings: Settings,
    box: SecretBox,
    headers: Headers,
    body: bytes,
    actor: AuditActor,
    metrics: Metrics | None = None,
) -> codes.SnapResponse:
    """``POST /v1.0/qr/qr-mpm-notify``: verify, map, claim the external id, run the core callback path.
    A payment applied now (not a replay) with its ``paidTime`` counts in the notification lag."""
    async with db.pool.acquire() as conn:
        acquirer = await _verify_notify(conn, box, headers, body)
        external_id = external_ids.check_format(headers.external_id)
        notify_body = _decode(body)
        status_map = DEFAULT_SNAP_STATUS_MAP | acquirer["settings"].get("status_map", {})
        status = status_map.get(notify_body.latestTransactionStatus)
        if status is None:
            raise codes.InvalidFieldFormat(
                f"latestTransactionStatus {notify_body.latestTransactionStatus!r} "
                "is not in this acquirer's status table"
            )
        amount = amounts.rupiah(notify_body.amount.value, notify_body.amount.currency)
        if not 1 <= amount <= AMOUNT_CEILING:
            raise codes.InvalidFieldFormat(f"amount.value must be between 1.00 and {AMOUNT_CEILING}.00")
        if not 1 <= len(notify_body.originalReferenceNo) <= 64:
            raise codes.InvalidFieldFormat("originalReferenceNo must be 1–64 characters")
        transaction_id, terminal_id = await _target(conn, acquirer["code"], notify_body)
        paid_at = _paid_at(notify_body) if status == "paid" else None
        code = acquirer["code"]
        actor = msgspec.structs.replace(actor, actor_type="acquirer", actor_id=code)
        if status == "ignore":
            async with conn.transaction():
                await external_ids.claim(conn, "acquirer", code, external_id)
                await audit.record(
                    conn,
                    actor,
                    "snap.notify.acknowledged",
                    entity_type="transaction",
                    entity_id=transaction_id,
                    payload={
                        "status": notify_body.latestTransactionStatus,
                        "reference": notify_body.originalReferenceNo,
                    },
                )
            return _success()
        # One statement, committed on its own (no BEGIN/COMMIT round trips on the hot path);
        # a refusal below releases it.
        await external_ids.claim(conn, "acquirer", code, external_id)
    notification = CallbackNotification(
        # One event per acquirer, reference and outcome: a resend with a new X-EXTERNAL-ID is a replay.
        event_id=f"snap:{code}:{notify_body.originalReferenceNo}:{status}",
        status=status,  # paid | failed | expired: "ignore" answered above
        amount=amount,
        currency="IDR",
        provider_reference=_text(notify_body.additionalInfo, "rrn") or notify_body.originalReferenceNo,
        paid_at=paid_at,
        transaction_id=transaction_id,
        terminal_id=terminal_id,
        failure_reason=(notify_body.transactionStatusDesc or None) and notify_body.transactionStatusDesc[:256],
    )
    try:
        result = await callbacks.handle_callback(db, settings, notification, actor, 0, "acquirer_notify")
    except DomainError as error:
        async with db.pool.acquire() as conn:
            await external_ids.release(conn, "acquirer", code, external_id)
        raise snap_error_of(error) from None
    if metrics is not None and paid_at is not None and notify_body.paidTime is not None and not result.duplicate:
        lag = (datetime.now(UTC) - paid_at).total_seconds()
        metrics.acquirer_notification_lag.labels(code, "acquirer_notify").observe(max(0.0, lag))
    return _success()


def _success() -> codes.SnapResponse:
    return codes.SnapResponse(
        responseCode=codes.response_code(200, codes.QR_MPM_NOTIFY, 0), responseMessage="Successful"
    )
