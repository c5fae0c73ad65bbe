"""What a soundbox asks of the payment spine: a dynamic QR, and its payment acks.

``answer_dynamic_qr_request`` serves the MQTT uplink
``devices/<id>/uplink/dynamic-qr/request`` and the seed's HTTP bridge
``POST /device/mqtt/uplink/dynamic-qr/request``; ``issue_for_device`` also
serves ``POST /device/transactions/dynamic-qr``. All end in
``dynamic_qr.issue_dynamic_qr``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from qris_soundbox.core import outbox
from qris_soundbox.core.acquirers.clients import AcquirerClients
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices.errors import DeviceNotFound
from qris_soundbox.core.devices.uplinks import Uplink, decode
from qris_soundbox.core.errors import DomainError, RateLimited
from qris_soundbox.core.payments.dynamic_qr import dynamic_qr_of, issue_dynamic_qr
from qris_soundbox.core.payments.errors import CapabilityNotSupported, DeviceNotActive, DeviceNotBound
from qris_soundbox.core.payments.schemas import DynamicQr, DynamicQrRequest, PaymentAck
from qris_soundbox.core.payments.transactions import check_payable

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)
ERROR_REPLY_TTL_S = 60


async def issue_for_device(
    conn: Connection, settings: Settings, acquirers: AcquirerClients, device_id: str, amount: int
) -> DynamicQr:
    """One read (the device with its terminal), then the transaction's one write."""
    device = await conn.fetchrow(QUERIES["device_for_dynamic_qr"], device_id)
    if device is None:
        raise DeviceNotFound(device_id)
    if device["device_status"] != "active":
        raise DeviceNotActive(
            f"device {device_id} is {device['device_status']}", details={"status": device["device_status"]}
        )
    capabilities = device["capabilities"]
    if not (capabilities.get("screen") and capabilities.get("dynamic_qr")):
        raise CapabilityNotSupported(
            f"model of device {device_id} has no screen for dynamic QR codes",
            details={"capability": "dynamic_qr"},
        )
    if device["id"] is None:
        raise DeviceNotBound(f"device {device_id} is bound to no terminal")
    terminal = check_payable(device["id"], device)
    return dynamic_qr_of(
        await issue_dynamic_qr(
            conn, settings, terminal, amount, acquirers=acquirers, source="device", device_id=device_id
        )
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def answer_dynamic_qr_request(
    platform: PlatformContext,
    device_id: str,
    request_id: str | None,
    amount: int | None,
    problem: DomainError | None = None,
) -> str:
    """Issue the QR (or the error) and queue the reply downlink; returns its ``message_id``."""
    db, settings = platform.db, platform.settings
    if problem is None and amount is not None:
        try:
            async with db.transaction() as conn:
                qr = await issue_for_device(conn, settings, platform.acquirer_clients, device_id, amount)
                body: dict[str, Any] = {
                    "request_id": request_id,
                    "transaction_id": qr.transaction_id,
                    "qr_payload": qr.qr_payload,
                    "expires_at": _iso(qr.expires_at),
                }
                return await outbox.enqueue(
                    conn,
                    device_id=device_id,
                    kind="dynamic_qr_response",
                    body=body,
                    expires_at=qr.expires_at,
                    transaction_id=qr.transaction_id,
                )
        except DomainError as error:
            problem = error
    assert problem is not None
    log.info("dynamic QR request refused", extra={"device_id": device_id, "code": problem.code})
    async with db.transaction() as conn:
        body = {"request_id": request_id, "error": {"code": problem.code, "message": problem.message}}
        return await outbox.enqueue(
            conn,
            device_id=device_id,
            kind="dynamic_qr_response",
            body=body,
            expires_at=datetime.now(UTC) + timedelta(seconds=ERROR_REPLY_TTL_S),
        )


def _request_id_of(payload: bytes) -> str | None:
    """Best effort, for the error reply to a malformed request."""
    try:
        value = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    request_id = value.get("request_id") if isinstance(value, dict) else None
    return request_id if isinstance(request_id, str) and 0 < len(request_id) <= 64 else None


async def dynamic_qr_request_uplink(platform: PlatformContext, uplink: Uplink) -> None:
    """``devices/<id>/uplink/dynamic-qr/request``: a reply is expected, so a malformed or
    rate-limited request is answered with an error downlink rather than only logged.

    Counted in the ``device`` rate-limit bucket under the device id, the bucket and key of
    ``POST /device/transactions/dynamic-qr``: asking over MQTT and over HTTP is one budget of
    transactions. The error replies are bounded by the broker's uplink budget
    (core/devices/uplink_budget.py), which drops a flood before it gets here."""
    try:
        request = decode(uplink.payload, DynamicQrRequest)
    except DomainError as problem:
        await answer_dynamic_qr_request(platform, uplink.device_id, _request_id_of(uplink.payload), None, problem)
        return
    try:
        await platform.rate_limiter.hit("device", uplink.device_id)
    except RateLimited as refused:
        await answer_dynamic_qr_request(platform, uplink.device_id, request.request_id, None, refused)
        return
    await answer_dynamic_qr_request(platform, uplink.device_id, request.request_id, request.amount)


async def payment_ack_uplink(platform: PlatformContext, uplink: Uplink) -> None:
    """``devices/<id>/uplink/payment/ack``: the announcement was played."""
    ack = decode(uplink.payload, PaymentAck)
    acked = await outbox.acknowledge(platform.db, uplink.device_id, ack.message_id, "payment")
    if acked is None:
        log.info("payment ack for no open downlink ignored", extra={"message_id": ack.message_id})
        return
    # The announcement was written in the callback's transaction: from its creation is from the callback.
    platform.metrics.announcements.labels("acked").inc()
    platform.metrics.announce_latency.observe((acked["acked_at"] - acked["created_at"]).total_seconds())
