"""Merchant portal: a merchant user's own settlements, scoped to the token's merchant.

Another merchant's batch answers 404, never 403: its existence is not revealed.
"""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Response, Stream

from qris_soundbox.control_plane.auth import principal_of
from qris_soundbox.control_plane.deps import FromPath, FromQuery, Paging, Platform, Window
from qris_soundbox.control_plane.finance import ReportFormat, batch_csv
from qris_soundbox.core.errors import Forbidden
from qris_soundbox.core.finance import dashboard, settlements
from qris_soundbox.core.finance import schemas as s
from qris_soundbox.core.schemas import Page


def own_merchant(request: Request) -> str:
    # /merchant routes take merchant principals only (the guard's audience rule).
    merchant_id = principal_of(request).merchant_id
    if merchant_id is None:
        raise Forbidden("this route needs a merchant user's token (POST /merchant/login)")
    return merchant_id


_TAGS = ["merchant portal"]


@get(
    "/merchant/settlement-summary",
    summary="My payouts: pending, paid, adjustments",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def settlement_summary(request: Request, platform: Platform) -> s.SettlementSummary:
    return await dashboard.settlement_summary(platform.db, own_merchant(request))


@get(
    "/merchant/today",
    summary="My payments today (the Jakarta business day): count, paid count, paid volume",
    opt={"permission": "transaction:read"},
    tags=_TAGS,
)
async def today(request: Request, platform: Platform) -> s.TodayTransactions:
    return await dashboard.today_transactions(platform.db, own_merchant(request))


@get("/merchant/settlement-batches", summary="My settlement batches", opt={"permission": "settlement:read"}, tags=_TAGS)
async def list_settlement_batches(
    request: Request,
    platform: Platform,
    page: Paging,
    window: Window,
    status: FromQuery[str | None] = None,
) -> Page[s.SettlementBatch]:
    return await settlements.list_batches(platform.db, page, window, merchant_id=own_merchant(request), status=status)


@get(
    "/merchant/settlement-batches/{batch_id:str}",
    summary="One of my settlement batches",
    opt={"permission": "settlement:read"},
    tags=_TAGS,
)
async def get_settlement_batch(
    request: Request, platform: Platform, batch_id: FromPath[str]
) -> s.SettlementBatchDetail:
    return await settlements.batch_detail(platform.db, batch_id, merchant_id=own_merchant(request))


@get(
    "/merchant/settlement-batches/{batch_id:str}/export.csv",
    summary="My settlement batch as CSV",
    opt={"permission": "settlement:export"},
    tags=_TAGS,
)
async def export_settlement_batch(
    request: Request,
    platform: Platform,
    batch_id: FromPath[str],
    fmt: ReportFormat = None,
) -> Response[bytes] | Stream:
    return await batch_csv(request, platform, batch_id, fmt, own_merchant(request))


routes = [settlement_summary, today, list_settlement_batches, get_settlement_batch, export_settlement_batch]
