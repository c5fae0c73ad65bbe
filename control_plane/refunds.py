"""Refund routes: ask for a refund of a payment, list refunds, approve or reject one, retry at the acquirer.

Routes only: parse → call ``core.refunds`` → shape the response (docs/finance.md "Refunds").
"""

from __future__ import annotations

from litestar import Request, get, post

from qris_soundbox.control_plane.auth import audit_actor
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Paging, Platform
from qris_soundbox.core.refunds import acquirer, service
from qris_soundbox.core.refunds import schemas as s
from qris_soundbox.core.schemas import Page


@post(
    "/admin/transactions/{transaction_id:str}/refunds",
    tags=["refunds"],
    summary="Refund a paid payment, in full or in part (above REFUND_APPROVAL_ABOVE it waits for a second person)",
    opt={"permission": "transaction:refund", "idempotent": True, "rate_limit": "admin_write"},
)
async def create_refund(
    request: Request, platform: Platform, transaction_id: FromPath[str], data: JSONBody[s.RefundCreate]
) -> s.Refund:
    async with platform.db.transaction() as conn:
        refund = await service.request_refund(
            conn, platform.settings, audit_actor(request), transaction_id, amount=data.amount, reason=data.reason
        )
    if refund.status == "pending":  # its merchant's SNAP acquirer carries it out
        refund = await acquirer.carry_out(platform, refund.id)
    return refund


@get(
    "/admin/transactions/{transaction_id:str}/refunds",
    tags=["refunds"],
    summary="A payment's refunds, newest first",
    opt={"permission": "transaction:read"},
)
async def transaction_refunds(platform: Platform, transaction_id: FromPath[str], page: Paging) -> Page[s.Refund]:
    return await service.list_refunds(platform.db, page, transaction_id=transaction_id)


@get(
    "/admin/refunds",
    tags=["refunds"],
    summary="Refunds, newest first (status=pending_approval: the approvals waiting)",
    opt={"permission": "transaction:read"},
)
async def list_refunds(
    platform: Platform,
    page: Paging,
    status: FromQuery[str | None] = None,
    merchant_id: FromQuery[str | None] = None,
) -> Page[s.Refund]:
    return await service.list_refunds(platform.db, page, status=status, merchant_id=merchant_id)


@get("/admin/refunds/{refund_id:str}", tags=["refunds"], summary="One refund", opt={"permission": "transaction:read"})
async def get_refund(platform: Platform, refund_id: FromPath[str]) -> s.Refund:
    async with platform.db.transaction() as conn:
        return await service.get_refund(conn, refund_id)


async def _decide(request: Request, platform: Platform, refund_id: str, approve: bool, note: str | None) -> s.Refund:
    async with platform.db.transaction() as conn:
        refund = await service.decide(
            conn, platform.settings, audit_actor(request), refund_id, approve=approve, note=note
        )
    if refund.status == "pending":
        refund = await acquirer.carry_out(platform, refund.id)
    return refund


@post(
    "/admin/refunds/{refund_id:str}/approve",
    status_code=200,
    tags=["refunds"],
    summary="Approve a refund waiting for a second person (not the one who asked for it)",
    opt={"permission": "transaction:refund", "rate_limit": "admin_write"},
)
async def approve_refund(
    request: Request, platform: Platform, refund_id: FromPath[str], data: JSONBody[s.RefundDecisionBody]
) -> s.Refund:
    return await _decide(request, platform, refund_id, True, data.note)


@post(
    "/admin/refunds/{refund_id:str}/reject",
    status_code=200,
    tags=["refunds"],
    summary="Reject a refund waiting for approval: its amount is free again",
    opt={"permission": "transaction:refund", "rate_limit": "admin_write"},
)
async def reject_refund(
    request: Request, platform: Platform, refund_id: FromPath[str], data: JSONBody[s.RefundDecisionBody]
) -> s.Refund:
    return await _decide(request, platform, refund_id, False, data.note)


@post(
    "/admin/refunds/{refund_id:str}/retry",
    status_code=200,
    tags=["refunds"],
    summary="Send a pending refund to its acquirer again (after no answer); the acquirer deduplicates it",
    opt={"permission": "transaction:refund", "rate_limit": "admin_write"},
)
async def retry_refund(platform: Platform, refund_id: FromPath[str]) -> s.Refund:
    return await acquirer.carry_out(platform, refund_id)


routes = [create_refund, transaction_refunds, list_refunds, get_refund, approve_refund, reject_refund, retry_refund]
