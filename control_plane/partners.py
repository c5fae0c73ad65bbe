"""Partner routes: the registry (admin), the SNAP services partners call, and the platform's public key.

The SNAP routes are public to the permission guard: a partner authenticates with
its B2B token and signature (``core.partners.services``), and every answer,
refusals included, is SNAP's body with its seven-digit ``responseCode``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, patch, post

from qris_soundbox.control_plane.auth import audit_actor, client_ip
from qris_soundbox.control_plane.deps import FromPath, JSONBody, Paging, Platform
from qris_soundbox.core.errors import NotFound, Unavailable
from qris_soundbox.core.logging import request_id_var
from qris_soundbox.core.partners import notify, registry, services
from qris_soundbox.core.partners import schemas as s
from qris_soundbox.core.partners.platform_key import PlatformKey
from qris_soundbox.core.schemas import Page
from qris_soundbox.core.snap import codes

_MANAGE = {"permission": "partner:manage"}
_WRITE = {**_MANAGE, "rate_limit": "admin_write"}
_PEM = "application/x-pem-file"


@post("/admin/partners", summary="Register a partner (its client_secret is shown once)", tags=["partners"], opt=_WRITE)
async def create_partner(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.PartnerCreate]
) -> s.PartnerWithSecret:
    async with platform.db.transaction() as conn:
        return await registry.create_partner(conn, platform.settings, audit_actor(request), data)


@get("/admin/partners", summary="List partners, newest first", tags=["partners"], opt=_MANAGE)
async def list_partners(platform: Platform, page: Paging) -> Page[s.Partner]:
    async with platform.db.transaction() as conn:
        return await registry.list_partners(conn, page)


@get("/admin/partners/{partner_id:str}", summary="One partner", tags=["partners"], opt=_MANAGE)
async def get_partner(platform: Platform, partner_id: FromPath[str]) -> s.Partner:
    async with platform.db.transaction() as conn:
        return await registry.get_partner(conn, partner_id)


@patch("/admin/partners/{partner_id:str}", summary="Change a partner", tags=["partners"], opt=_WRITE)
async def update_partner(
    platform: Platform, request: Request[Any, Any, Any], partner_id: FromPath[str], data: JSONBody[s.PartnerUpdate]
) -> s.Partner:
    async with platform.db.transaction() as conn:
        return await registry.update_partner(conn, audit_actor(request), partner_id, data)


@post(
    "/admin/partners/{partner_id:str}/rotate-secret",
    summary="A new client_secret (shown once); the current one stays valid for overlap_seconds",
    tags=["partners"],
    opt=_WRITE,
)
async def rotate_secret(
    platform: Platform, request: Request[Any, Any, Any], partner_id: FromPath[str], data: JSONBody[s.SecretRotation]
) -> s.PartnerWithSecret:
    async with platform.db.transaction() as conn:
        return await registry.rotate_secret(
            conn, platform.settings, audit_actor(request), partner_id, data.overlap_seconds
        )


@get(
    "/admin/partners/{partner_id:str}/deliveries",
    summary="The partner's newest notifications and delivery attempts (status, HTTP answer, latency)",
    tags=["partners"],
    opt=_MANAGE,
)
async def delivery_log(platform: Platform, partner_id: FromPath[str], page: Paging) -> s.DeliveryLog:
    async with platform.db.transaction() as conn:
        return await notify.delivery_log(conn, partner_id, page)


@post(
    "/admin/partners/{partner_id:str}/notifications/{notification_id:int}/resend",
    summary="Send a notification again now (a dead one too), its tries counted afresh",
    tags=["partners"],
    opt=_WRITE,
    status_code=202,
)
async def resend_notification(
    platform: Platform, request: Request[Any, Any, Any], partner_id: FromPath[str], notification_id: FromPath[int]
) -> None:
    async with platform.db.transaction() as conn:
        await notify.resend(conn, audit_actor(request), partner_id, notification_id)


def _published(platform: Platform) -> PlatformKey:
    if platform.platform_key is None:
        raise Unavailable("this process holds no SNAP signing key")
    return platform.platform_key


@get(
    "/snap/public-key.pem",
    summary="The platform's key verifying its notifications",
    tags=["snap"],
    opt={"public": True},
)
async def public_key(platform: Platform) -> Response[str]:
    key = _published(platform)
    return Response(key.published[key.key_id], media_type=_PEM, headers={"X-KEY-ID": key.key_id})


@get(
    "/snap/keys/{key_id:str}",
    summary="A published key by its X-KEY-ID (the current one, and the previous one during a rotation)",
    tags=["snap"],
    opt={"public": True},
)
async def public_key_by_id(platform: Platform, key_id: FromPath[str]) -> Response[str]:
    published = _published(platform).published
    if key_id not in published:
        raise NotFound(f"no published key has id {key_id}", details={"key_id": key_id})
    return Response(published[key_id], media_type=_PEM, headers={"X-KEY-ID": key_id})


async def _snap(platform: Platform, request: Request[Any, Any, Any], service: int) -> Response[bytes]:
    call = services.SnapCall(
        service=service,
        method=request.method,
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        body=await request.body(),
        headers={name.lower(): value for name, value in request.headers.items()},
        ip=client_ip(request),
        request_id=request_id_var.get(),
    )
    status, answer = await services.handle(platform, call)
    return Response(msgspec.json.encode(answer), status_code=status, media_type="application/json")


def _snap_route(service: int, summary: str) -> Any:
    async def handler(platform: Platform, request: Request[Any, Any, Any]) -> Response[bytes]:
        return await _snap(platform, request, service)

    handler.__name__ = f"snap_{services.PATHS[service].rsplit('/', 1)[-1].replace('-', '_')}"
    return post(
        services.PATHS[service],
        summary=summary,
        tags=["snap"],
        opt={"public": True, "snap_service": service},
        status_code=200,
    )(handler)


routes = [
    create_partner,
    list_partners,
    get_partner,
    update_partner,
    rotate_secret,
    delivery_log,
    resend_notification,
    public_key,
    public_key_by_id,
    _snap_route(codes.QR_MPM_GENERATE, "SNAP QR MPM generate (service 47): a dynamic QRIS for a partner's terminal"),
    _snap_route(codes.QR_MPM_QUERY, "SNAP QR MPM query (service 51)"),
    _snap_route(codes.QR_MPM_CANCEL, "SNAP QR MPM cancel (service 77)"),
    _snap_route(codes.QR_MPM_REFUND, "SNAP QR MPM refund (service 78)"),
]
