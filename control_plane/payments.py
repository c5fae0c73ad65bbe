"""Payment routes: the acquirer callback, transactions, their events, the ledger, a device's downlinks.

Routes only: parse → call ``core.payments`` (``service`` for the admin API) → shape the response.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, get, post

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Paging, Platform, Window, search_parameter
from qris_soundbox.control_plane.device_auth import device_of
from qris_soundbox.control_plane.merchant_portal import own_merchant
from qris_soundbox.control_plane.merchants import qr_paths, qr_response
from qris_soundbox.core import outbox
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.outbox import NotificationState
from qris_soundbox.core.payments import callbacks, device_requests, service
from qris_soundbox.core.payments import schemas as s
from qris_soundbox.core.schemas import Page


@post(
    "/integrations/qris/callback",
    status_code=200,
    tags=["payments"],
    summary="Signed acquirer payment callback",
    opt={"public": True, "rate_limit": "callback"},
)
async def qris_callback(request: Request, platform: Platform) -> s.CallbackResult:
    counted = platform.metrics.callbacks
    try:
        result = await callbacks.receive_callback(
            platform.db,
            platform.settings,
            timestamp=request.headers.get("x-callback-timestamp"),
            signature=request.headers.get("x-callback-signature"),
            body=await request.body(),
            actor=msgspec.structs.replace(audit_actor(request), actor_type="acquirer"),
        )
    except DomainError as error:
        counted.labels("rejected", error.code).inc()
        raise
    counted.labels("duplicate" if result.duplicate else result.status, "").inc()
    if result.status == "paid" and not result.duplicate:
        platform.metrics.payments_recorded.inc()
    return result


@get("/admin/transactions", tags=["payments"], summary="List transactions", opt={"permission": "transaction:read"})
async def list_transactions(
    platform: Platform,
    page: Paging,
    window: Window,
    merchant_id: FromQuery[str | None] = None,
    terminal_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    search: Annotated[str | None, search_parameter("a reference or an RRN (whole), or an amount in rupiah")] = None,
) -> Page[s.Transaction]:
    async with platform.db.transaction() as conn:
        return await service.list_transactions(
            conn, page, window, merchant_id=merchant_id, terminal_id=terminal_id, status=status, search=search
        )


@get(
    "/merchant/transactions",
    tags=["merchant"],
    summary="My payments, newest first (the logged-in merchant's own)",
    opt={"permission": "transaction:read"},
)
async def my_transactions(
    request: Request,
    platform: Platform,
    page: Paging,
    window: Window,
    terminal_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    search: Annotated[str | None, search_parameter("a reference or an RRN (whole), or an amount in rupiah")] = None,
) -> Page[s.Transaction]:
    async with platform.db.transaction() as conn:
        return await service.list_transactions(
            conn, page, window, merchant_id=own_merchant(request), terminal_id=terminal_id, status=status, search=search
        )


@post(
    "/admin/transactions",
    tags=["payments"],
    summary="Issue a dynamic QR transaction on a terminal",
    opt={"permission": "transaction:write", "idempotent": True, "rate_limit": "admin_write"},
)
async def create_transaction(
    request: Request, platform: Platform, data: JSONBody[s.TransactionCreate]
) -> s.Transaction:
    async with platform.db.pool.acquire() as conn:  # one write statement, the audit row with it
        return await service.create_transaction(
            conn,
            platform.settings,
            platform.acquirer_clients,
            audit_actor(request),
            terminal_id=data.terminal_id,
            amount=data.amount,
            expires_in_s=data.expires_in_s,
        )


@get(
    "/admin/transactions/{transaction_id:str}",
    tags=["payments"],
    summary="One transaction",
    opt={"permission": "transaction:read"},
)
async def get_transaction(platform: Platform, transaction_id: FromPath[str]) -> s.Transaction:
    async with platform.db.transaction() as conn:
        return await service.get_transaction(conn, transaction_id)


@get(
    "/admin/transactions/{transaction_id:str}/events",
    tags=["payments"],
    summary="A transaction's state changes",
    opt={"permission": "transaction:read"},
)
async def transaction_events(platform: Platform, transaction_id: FromPath[str]) -> Page[s.TransactionEvent]:
    async with platform.db.transaction() as conn:
        return await service.transaction_events(conn, transaction_id)


@get(
    qr_paths("/admin/transactions/{transaction_id:str}"),
    tags=["payments"],
    summary="A dynamic QR transaction's payload as a QR image: SVG, or PNG",
    opt={"permission": "transaction:read"},
)
async def transaction_qris_image(
    request: Request, platform: Platform, transaction_id: FromPath[str]
) -> Response[bytes]:
    async with platform.db.transaction() as conn:
        transaction = await service.get_transaction(conn, transaction_id)
    return qr_response(
        request, transaction.qr_payload, f"transaction {transaction_id}", f"qris-{transaction.reference}"
    )


@post(
    "/admin/transactions/expire-due",
    status_code=200,
    tags=["payments"],
    summary="Expire pending dynamic QRs past their expiry now",
    opt={"permission": "transaction:expire"},
)
async def expire_due(request: Request, platform: Platform) -> dict[str, object]:
    async with platform.db.transaction() as conn:
        expired = await service.expire_due(conn, platform.settings, audit_actor(request))
    return {"expired_count": len(expired), "transaction_ids": expired}


@get("/admin/ledger-entries", tags=["payments"], summary="Ledger entries", opt={"permission": "ledger:read"})
async def list_ledger_entries(
    platform: Platform,
    page: Paging,
    window: Window,
    transaction_id: FromQuery[str | None] = None,
    merchant_id: FromQuery[str | None] = None,
    entry_type: FromQuery[str | None] = None,
) -> Page[s.LedgerEntry]:
    async with platform.db.transaction() as conn:
        return await service.list_ledger_entries(
            conn,
            page,
            window,
            transaction_id=transaction_id,
            merchant_id=merchant_id,
            entry_type=entry_type,
        )


@post(
    "/device/transactions/dynamic-qr",
    tags=["device API"],
    summary="A dynamic QR for the device's terminal",
    opt={"device": True, "rate_limit": "device"},
)
async def device_dynamic_qr(
    request: Request, platform: Platform, data: JSONBody[s.DeviceDynamicQrCreate]
) -> s.DeviceDynamicQr:
    device = device_of(request)
    # One write statement (payment_create): no explicit transaction, no BEGIN/COMMIT round trips.
    async with platform.db.pool.acquire() as conn:
        qr = await device_requests.issue_for_device(
            conn, platform.settings, platform.acquirer_clients, device.device_id, data.amount
        )
    return s.DeviceDynamicQr(request_id=data.request_id, **msgspec.structs.asdict(qr))


@post(
    "/device/mqtt/uplink/dynamic-qr/request",
    status_code=202,
    tags=["device API"],
    summary="HTTP bridge of the MQTT dynamic-QR uplink: the reply is the MQTT downlink",
    opt={"device": True, "rate_limit": "device"},
)
async def device_dynamic_qr_bridge(
    request: Request, platform: Platform, data: JSONBody[s.DynamicQrBridgeRequest]
) -> s.QueuedReply:
    device = device_of(request)
    message_id = await device_requests.answer_dynamic_qr_request(
        platform, device.device_id, data.request_id, data.amount
    )
    return s.QueuedReply(
        request_id=data.request_id,
        message_id=message_id,
        topic=outbox.downlink_topic(device.device_id, "dynamic_qr_response"),
    )


@get(
    "/admin/devices/{device_id:str}/notifications",
    tags=["devices"],
    summary="The device's downlinks (payment announcements by default) and their delivery state",
    opt={"permission": "device:read"},
)
async def device_notifications(
    platform: Platform,
    device_id: FromPath[str],
    page: Paging,
    kind: FromQuery[Literal["payment", "dynamic_qr_response", "config", "command"] | None] = "payment",
) -> Page[outbox.Downlink]:
    async with platform.db.transaction() as conn:
        return await service.device_downlinks(conn, device_id, kind, page)


@post(
    "/admin/transactions/{transaction_id:str}/retry-notification",
    status_code=200,
    tags=["payments"],
    summary="Announce a paid transaction again on its soundbox",
    opt={"permission": "transaction:write"},
)
async def retry_notification(request: Request, platform: Platform, transaction_id: FromPath[str]) -> NotificationState:
    async with platform.db.transaction() as conn:
        return await service.retry_notification(conn, platform.settings, audit_actor(request), transaction_id)


routes = [
    qris_callback,
    device_dynamic_qr,
    device_dynamic_qr_bridge,
    device_notifications,
    retry_notification,
    create_transaction,
    list_transactions,
    get_transaction,
    transaction_events,
    transaction_qris_image,
    my_transactions,
    expire_due,
    list_ledger_entries,
]
