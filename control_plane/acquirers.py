"""Acquirer routes: the registry (admin, ``acquirer:manage``) and SNAP in (``/v1.0/...``, SPEC §13).

SNAP routes carry ``opt={"snap_service": <service code>}``: every error on them,
the framework's own included (wrong content type, a body too large or too deep,
wrong method), is answered as SNAP's ``{"responseCode", "responseMessage"}``
(control_plane/errors.py reads the option).
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, patch, post, put

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import FromPath, JSONBody, Paging, Platform
from qris_soundbox.core.acquirers import older_formats, service, snap_in
from qris_soundbox.core.acquirers import schemas as s
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.schemas import Page
from qris_soundbox.core.secrets import SecretBox
from qris_soundbox.core.snap import codes

_MANAGE = {"permission": "acquirer:manage", "rate_limit": "admin_write"}


@post("/admin/acquirers", summary="Register an acquirer (secrets write-only)", tags=["acquirers"], opt=_MANAGE)
async def create_acquirer(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.AcquirerCreate]
) -> s.Acquirer:
    async with platform.db.transaction() as conn:
        return await service.create_acquirer(
            conn,
            SecretBox.of(platform.settings),
            audit_actor(request),
            code=data.code,
            name=data.name,
            protocol=data.protocol,
            settings=data.settings,
        )


@get(
    "/admin/acquirers",
    summary="List acquirers, newest first (secrets masked)",
    tags=["acquirers"],
    opt={"permission": "acquirer:manage"},
)
async def list_acquirers(platform: Platform, page: Paging) -> Page[s.Acquirer]:
    async with platform.db.transaction() as conn:
        return await service.list_acquirers(conn, page)


@get(
    "/admin/acquirers/{code:str}",
    summary="One acquirer (secrets masked)",
    tags=["acquirers"],
    opt={"permission": "acquirer:manage"},
)
async def get_acquirer(platform: Platform, code: FromPath[str]) -> s.Acquirer:
    async with platform.db.transaction() as conn:
        return service.acquirer_of(await service.acquirer_row(conn, code))


@patch("/admin/acquirers/{code:str}", summary="Change an acquirer's name or settings", tags=["acquirers"], opt=_MANAGE)
async def update_acquirer(
    platform: Platform, request: Request[Any, Any, Any], code: FromPath[str], data: JSONBody[s.AcquirerUpdate]
) -> s.Acquirer:
    async with platform.db.transaction() as conn:
        return await service.update_acquirer(
            conn,
            SecretBox.of(platform.settings),
            audit_actor(request),
            code,
            name=None if data.name is msgspec.UNSET else data.name,
            settings=None if data.settings is msgspec.UNSET else data.settings,
        )


@put(
    "/admin/merchants/{merchant_id:str}/acquirer",
    summary="Name a merchant's acquirer and its id there",
    tags=["acquirers"],
    opt=_MANAGE,
)
async def set_merchant_acquirer(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str], data: JSONBody[s.MerchantAcquirer]
) -> s.MerchantAcquirerAnswer:
    async with platform.db.transaction() as conn:
        return await service.set_merchant_acquirer(
            conn, audit_actor(request), merchant_id, data.acquirer_code, data.acquirer_merchant_id
        )


@put(
    "/admin/terminals/{terminal_id:str}/acquirer-id",
    summary="The id a terminal's acquirer knows it by",
    tags=["acquirers"],
    opt=_MANAGE,
)
async def set_terminal_acquirer_id(
    platform: Platform,
    request: Request[Any, Any, Any],
    terminal_id: FromPath[str],
    data: JSONBody[s.TerminalAcquirerId],
) -> s.TerminalAcquirerIdAnswer:
    async with platform.db.transaction() as conn:
        return await service.set_terminal_acquirer_id(
            conn, audit_actor(request), terminal_id, data.acquirer_terminal_id
        )


def snap_response(error: codes.SnapError, service_code: int) -> Response[Any]:
    return Response(error.response(service_code), status_code=error.status)


def _headers(request: Request[Any, Any, Any]) -> snap_in.Headers:
    h = request.headers
    return snap_in.Headers(
        timestamp=h.get("x-timestamp"),
        signature=h.get("x-signature"),
        client_key=h.get("x-client-key"),
        partner_id=h.get("x-partner-id"),
        external_id=h.get("x-external-id"),
        authorization=h.get("authorization"),
    )


@post(
    "/v1.0/access-token/b2b",
    status_code=200,
    summary="SNAP B2B access token (service 73)",
    tags=["snap"],
    opt={"public": True, "snap_service": codes.ACCESS_TOKEN, "rate_limit": "callback"},
)
async def snap_access_token(request: Request[Any, Any, Any], platform: Platform) -> Response[Any]:
    try:
        answer = await snap_in.access_token(platform.db, _headers(request), await request.body(), audit_actor(request))
    except codes.SnapError as error:
        return snap_response(error, codes.ACCESS_TOKEN)
    except DomainError as error:
        return snap_response(snap_in.snap_error_of(error), codes.ACCESS_TOKEN)
    return Response(answer, status_code=200)


@post(
    "/v1.0/qr/qr-mpm-notify",
    status_code=200,
    summary="SNAP QR MPM payment notification (service 52)",
    tags=["snap"],
    opt={"public": True, "snap_service": codes.QR_MPM_NOTIFY, "rate_limit": "callback"},
)
async def snap_notify(request: Request[Any, Any, Any], platform: Platform) -> Response[Any]:
    counted = platform.metrics.callbacks
    try:
        answer = await snap_in.notify(
            platform.db,
            platform.settings,
            SecretBox.of(platform.settings),
            _headers(request),
            await request.body(),
            audit_actor(request),
            platform.metrics,
        )
    except codes.SnapError as error:
        counted.labels("rejected", error.code(codes.QR_MPM_NOTIFY)).inc()
        return snap_response(error, codes.QR_MPM_NOTIFY)
    except DomainError as error:
        snap_error = snap_in.snap_error_of(error)
        counted.labels("rejected", snap_error.code(codes.QR_MPM_NOTIFY)).inc()
        return snap_response(snap_error, codes.QR_MPM_NOTIFY)
    counted.labels("snap", "").inc()
    return Response(answer, status_code=200)


@post(
    "/integrations/acquirers/{code:str}/notify",
    status_code=200,
    tags=["acquirers"],
    summary="An acquirer's notification in its own older format (midtrans, xendit, doku)",
    opt={"public": True, "rate_limit": "callback"},
)
async def older_format_notify(
    request: Request[Any, Any, Any], platform: Platform, code: FromPath[str]
) -> Response[Any]:
    counted = platform.metrics.callbacks
    try:
        result = await older_formats.receive(
            platform.db,
            platform.settings,
            SecretBox.of(platform.settings),
            code,
            request.headers,
            request.url.path,
            await request.body(),
            audit_actor(request),
        )
    except DomainError as error:
        counted.labels("rejected", error.code).inc()
        raise
    if result is None:
        return Response({"status": "acknowledged"}, status_code=200)
    counted.labels("duplicate" if result.duplicate else result.status, "").inc()
    return Response(result, status_code=200)


routes = [
    create_acquirer,
    list_acquirers,
    get_acquirer,
    update_acquirer,
    set_merchant_acquirer,
    set_terminal_acquirer_id,
    snap_access_token,
    snap_notify,
    older_format_notify,
]
