"""Merchant onboarding routes: merchants, outlets, terminals (admin), and a merchant's own view.

Thin: parse → ``core.merchants.service`` in one transaction → shape.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, patch, post

from qris_soundbox.control_plane.auth import audit_actor, principal_of
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Paging, Platform, search_parameter
from qris_soundbox.core.auth import merchant_scope, require
from qris_soundbox.core.finance.mdr import DEFAULT_MDR_CATEGORY
from qris_soundbox.core.merchants import identity_changes, service
from qris_soundbox.core.merchants import schemas as s
from qris_soundbox.core.qr_image import MEDIA_TYPES, QrFormat, qr_image
from qris_soundbox.core.schemas import Page

_WRITE = {"rate_limit": "admin_write"}
# A fee override decides how each payment is split: beyond merchant:write, it needs this (finance, admin).
FEES = "merchant:fees"


# --- merchants (admin) ---


# What a merchant pays, with the value that needs no permission on create.
_FEE_FIELDS: dict[str, object] = {"fee_bps": None, "mdr_category": DEFAULT_MDR_CATEGORY}


def _may_set_fees(request: Request[Any, Any, Any], fields: set[str]) -> None:
    """Pricing a merchant is finance's (``merchant:fees``), not field staff's ``merchant:write``."""
    if fields:
        require(principal_of(request), FEES)


@post(
    "/admin/merchants",
    summary="Onboard a merchant (status pending_review)",
    tags=["merchants"],
    opt={"permission": "merchant:write", "idempotent": True, **_WRITE},
)
async def create_merchant(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.MerchantCreate]
) -> s.Merchant:
    fields = msgspec.structs.asdict(data)
    _may_set_fees(request, {k for k, v in fields.items() if k in _FEE_FIELDS and v != _FEE_FIELDS[k]})
    async with platform.db.transaction() as conn:
        return await service.create_merchant(conn, audit_actor(request), **fields)


@get(
    "/admin/merchants", summary="List merchants, newest first", tags=["merchants"], opt={"permission": "merchant:read"}
)
async def list_merchants(
    platform: Platform,
    page: Paging,
    status: FromQuery[str | None] = None,
    search: Annotated[str | None, search_parameter("the merchant's code or NMID (whole), or part of its name")] = None,
) -> Page[s.Merchant]:
    async with platform.db.transaction() as conn:
        return await service.list_merchants(conn, page, status=status, search=search)


@get(
    "/admin/merchants/{merchant_id:str}",
    summary="One merchant",
    tags=["merchants"],
    opt={"permission": "merchant:read"},
)
async def get_merchant(platform: Platform, merchant_id: FromPath[str]) -> s.Merchant:
    async with platform.db.transaction() as conn:
        return await service.get_merchant(conn, merchant_id)


@patch(
    "/admin/merchants/{merchant_id:str}",
    summary="Change a merchant's details or fee override",
    tags=["merchants"],
    opt={"permission": "merchant:write", **_WRITE},
)
async def update_merchant(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str], data: JSONBody[s.MerchantUpdate]
) -> s.Merchant:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    _may_set_fees(request, changes.keys() & _FEE_FIELDS.keys())
    async with platform.db.transaction() as conn:
        return await service.update_merchant(conn, audit_actor(request), merchant_id, changes)


@patch(
    "/admin/merchants/{merchant_id:str}/fees",
    summary="Change what a merchant pays: its MDR category and fee_bps contract (finance)",
    tags=["merchants"],
    opt={"permission": "merchant:fees", **_WRITE},
)
async def update_merchant_fees(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str], data: JSONBody[s.MerchantFees]
) -> s.Merchant:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    async with platform.db.transaction() as conn:
        return await service.update_merchant(conn, audit_actor(request), merchant_id, changes)


@post(
    "/admin/merchants/{merchant_id:str}/approve",
    status_code=200,
    summary="Approve: pending_review → active",
    tags=["merchants"],
    opt={"permission": "merchant:approve", **_WRITE},
)
async def approve_merchant(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str]
) -> s.Merchant:
    async with platform.db.transaction() as conn:
        return await service.approve_merchant(conn, audit_actor(request), merchant_id)


@post(
    "/admin/merchants/{merchant_id:str}/reject",
    status_code=200,
    summary="Reject: pending_review → rejected",
    tags=["merchants"],
    opt={"permission": "merchant:approve", **_WRITE},
)
async def reject_merchant(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str], data: JSONBody[s.MerchantReject]
) -> s.Merchant:
    async with platform.db.transaction() as conn:
        return await service.reject_merchant(conn, audit_actor(request), merchant_id, data.reason)


# --- identity changes of an approved merchant: one person proposes, another applies ---


@post(
    "/admin/merchants/{merchant_id:str}/identity-changes",
    summary="Propose a change of an approved merchant's name, legal name, NMID or email",
    tags=["merchants"],
    opt={"permission": "merchant:write", **_WRITE},
)
async def propose_identity_change(
    platform: Platform,
    request: Request[Any, Any, Any],
    merchant_id: FromPath[str],
    data: JSONBody[s.IdentityChangeCreate],
) -> s.IdentityChange:
    changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
    async with platform.db.transaction() as conn:
        return await identity_changes.propose(conn, audit_actor(request), merchant_id, changes)


@get(
    "/admin/merchants/{merchant_id:str}/identity-changes",
    summary="A merchant's identity changes, newest first",
    tags=["merchants"],
    opt={"permission": "merchant:read"},
)
async def list_identity_changes(platform: Platform, merchant_id: FromPath[str], page: Paging) -> Page[s.IdentityChange]:
    async with platform.db.transaction() as conn:
        return await identity_changes.list_changes(conn, merchant_id, page)


@post(
    "/admin/merchants/{merchant_id:str}/identity-changes/{change_id:str}/approve",
    status_code=200,
    summary="Apply a proposed identity change (someone other than its proposer)",
    tags=["merchants"],
    opt={"permission": "merchant:approve", **_WRITE},
)
async def approve_identity_change(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str], change_id: FromPath[str]
) -> s.IdentityChange:
    async with platform.db.transaction() as conn:
        return await identity_changes.approve(conn, audit_actor(request), merchant_id, change_id)


@post(
    "/admin/merchants/{merchant_id:str}/identity-changes/{change_id:str}/reject",
    status_code=200,
    summary="Reject (or, as its proposer, withdraw) a proposed identity change",
    tags=["merchants"],
    opt={"permission": "merchant:approve", **_WRITE},
)
async def reject_identity_change(
    platform: Platform,
    request: Request[Any, Any, Any],
    merchant_id: FromPath[str],
    change_id: FromPath[str],
    data: JSONBody[s.IdentityChangeDecision | None] = None,
) -> s.IdentityChange:
    reason = data.reason if data is not None else None
    async with platform.db.transaction() as conn:
        return await identity_changes.reject(conn, audit_actor(request), merchant_id, change_id, reason)


# --- outlets and terminals (admin) ---


@post(
    "/admin/merchants/{merchant_id:str}/outlets",
    summary="Add an outlet to a merchant",
    tags=["outlets"],
    opt={"permission": "outlet:write", "idempotent": True, **_WRITE},
)
async def create_outlet(
    platform: Platform, request: Request[Any, Any, Any], merchant_id: FromPath[str], data: JSONBody[s.OutletCreate]
) -> s.Outlet:
    async with platform.db.transaction() as conn:
        return await service.create_outlet(conn, audit_actor(request), merchant_id, **msgspec.structs.asdict(data))


@get("/admin/outlets", summary="List outlets, newest first", tags=["outlets"], opt={"permission": "outlet:read"})
async def list_outlets(platform: Platform, page: Paging, merchant_id: FromQuery[str | None] = None) -> Page[s.Outlet]:
    async with platform.db.transaction() as conn:
        return await service.list_outlets(conn, page, merchant_id=merchant_id)


@get("/admin/outlets/{outlet_id:str}", summary="One outlet", tags=["outlets"], opt={"permission": "outlet:read"})
async def get_outlet(platform: Platform, outlet_id: FromPath[str]) -> s.Outlet:
    async with platform.db.transaction() as conn:
        return await service.get_outlet(conn, outlet_id)


@post(
    "/admin/outlets/{outlet_id:str}/terminals",
    summary="Add a terminal (QRIS acceptance point) to an outlet",
    tags=["terminals"],
    opt={"permission": "terminal:write", "idempotent": True, **_WRITE},
)
async def create_terminal(
    platform: Platform, request: Request[Any, Any, Any], outlet_id: FromPath[str], data: JSONBody[s.TerminalCreate]
) -> s.Terminal:
    async with platform.db.transaction() as conn:
        return await service.create_terminal(conn, audit_actor(request), outlet_id, **msgspec.structs.asdict(data))


@get(
    "/admin/terminals", summary="List terminals, newest first", tags=["terminals"], opt={"permission": "terminal:read"}
)
async def list_terminals(
    platform: Platform,
    page: Paging,
    merchant_id: FromQuery[str | None] = None,
    outlet_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    search: Annotated[str | None, search_parameter("a terminal code (whole)")] = None,
) -> Page[s.Terminal]:
    async with platform.db.transaction() as conn:
        return await service.list_terminals(
            conn, page, merchant_id=merchant_id, outlet_id=outlet_id, status=status, code=search
        )


@get(
    "/admin/terminals/{terminal_id:str}",
    summary="One terminal, with its bound device",
    tags=["terminals"],
    opt={"permission": "terminal:read"},
)
async def get_terminal(platform: Platform, terminal_id: FromPath[str]) -> s.Terminal:
    async with platform.db.transaction() as conn:
        return await service.get_terminal(conn, terminal_id)


def qr_paths(resource: str) -> list[str]:
    """The two image routes of one QRIS payload: ``<resource>/qris.svg`` (a page) and ``.png`` (to print)."""
    return [f"{resource}/qris.svg", f"{resource}/qris.png"]


def qr_response(request: Request[Any, Any, Any], payload: str | None, what: str, filename: str) -> Response[bytes]:
    """A QRIS payload as the QR image the path asks for (``core/qr_image.py``); the PNG downloads as a file."""
    fmt: QrFormat = "png" if request.url.path.endswith(".png") else "svg"
    disposition = "attachment" if fmt == "png" else "inline"
    return Response(
        qr_image(payload, fmt, what),
        media_type=MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'{disposition}; filename="{filename}.{fmt}"', "Cache-Control": "no-store"},
    )


async def _terminal_qr(
    platform: Platform, request: Request[Any, Any, Any], terminal_id: str, scope: str | None = None
) -> Response[bytes]:
    async with platform.db.transaction() as conn:
        terminal = await service.get_terminal(conn, terminal_id, scope)
    return qr_response(request, terminal.static_qris, f"terminal {terminal_id}", f"qris-{terminal.terminal_code}")


@get(
    qr_paths("/admin/terminals/{terminal_id:str}"),
    summary="The terminal's static QRIS as a QR image: SVG, or PNG to print",
    tags=["terminals"],
    opt={"permission": "terminal:read"},
)
async def terminal_qris_image(
    platform: Platform, request: Request[Any, Any, Any], terminal_id: FromPath[str]
) -> Response[bytes]:
    return await _terminal_qr(platform, request, terminal_id)


# --- a merchant user's own outlets and terminals ---


@get(
    "/merchant/outlets", summary="The caller's merchant's outlets", tags=["merchant"], opt={"permission": "outlet:read"}
)
async def my_outlets(platform: Platform, request: Request[Any, Any, Any], page: Paging) -> Page[s.Outlet]:
    scope = merchant_scope(principal_of(request))
    async with platform.db.transaction() as conn:
        return await service.list_outlets(conn, page, scope=scope)


@get(
    "/merchant/outlets/{outlet_id:str}",
    summary="One of the caller's outlets",
    tags=["merchant"],
    opt={"permission": "outlet:read"},
)
async def my_outlet(platform: Platform, request: Request[Any, Any, Any], outlet_id: FromPath[str]) -> s.Outlet:
    scope = merchant_scope(principal_of(request))
    async with platform.db.transaction() as conn:
        return await service.get_outlet(conn, outlet_id, scope)


@get(
    "/merchant/terminals",
    summary="The caller's merchant's terminals",
    tags=["merchant"],
    opt={"permission": "terminal:read"},
)
async def my_terminals(
    platform: Platform,
    request: Request[Any, Any, Any],
    page: Paging,
    outlet_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
) -> Page[s.Terminal]:
    scope = merchant_scope(principal_of(request))
    async with platform.db.transaction() as conn:
        return await service.list_terminals(conn, page, outlet_id=outlet_id, status=status, scope=scope)


@get(
    "/merchant/terminals/{terminal_id:str}",
    summary="One of the caller's terminals",
    tags=["merchant"],
    opt={"permission": "terminal:read"},
)
async def my_terminal(platform: Platform, request: Request[Any, Any, Any], terminal_id: FromPath[str]) -> s.Terminal:
    scope = merchant_scope(principal_of(request))
    async with platform.db.transaction() as conn:
        return await service.get_terminal(conn, terminal_id, scope)


@get(
    qr_paths("/merchant/terminals/{terminal_id:str}"),
    summary="One of my terminals' static QRIS as a QR image: SVG, or PNG to print",
    tags=["merchant"],
    opt={"permission": "terminal:read"},
)
async def my_terminal_qris_image(
    platform: Platform, request: Request[Any, Any, Any], terminal_id: FromPath[str]
) -> Response[bytes]:
    return await _terminal_qr(platform, request, terminal_id, merchant_scope(principal_of(request)))


routes = [
    create_merchant,
    list_merchants,
    get_merchant,
    update_merchant,
    update_merchant_fees,
    propose_identity_change,
    list_identity_changes,
    approve_identity_change,
    reject_identity_change,
    approve_merchant,
    reject_merchant,
    create_outlet,
    list_outlets,
    get_outlet,
    create_terminal,
    list_terminals,
    get_terminal,
    terminal_qris_image,
    my_outlets,
    my_outlet,
    my_terminals,
    my_terminal,
    my_terminal_qris_image,
]
