"""A refund through the merchant's SNAP acquirer: its ``qr-mpm-refund`` (SPEC §13), then the outcome.

The request committed first (the refund ``pending``, its amount reserved), the call is
made outside any transaction, and its answer completes the refund in a statement of its
own. The ledger is written only on success, so a refusal needs no compensation. An
answer the acquirer gave (a non-success ``responseCode``) fails the refund and frees
its amount; no answer at all (a timeout, a dropped connection) leaves it ``pending``:
the acquirer may have paid it back, so freeing the amount could refund twice. Such a
refund is tried again with the same ``partnerRefundNo`` (the refund's id), which the
acquirer deduplicates (``POST /admin/refunds/{id}/retry``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from qris_soundbox.core.acquirers.snap_out import AcquirerCallFailed, AcquirerCircuitOpen, AcquirerRefused
from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.refunds import service
from qris_soundbox.core.refunds.schemas import Refund

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)


async def carry_out(platform: PlatformContext, refund_id: str) -> Refund:
    """Send a pending refund to its acquirer and record the answer; any other refund is returned as it is."""
    db = platform.db
    async with db.transaction() as conn:
        row = await conn.fetchrow(QUERIES["refund_at_acquirer"], refund_id)
        if row is None:
            return await service.get_refund(conn, refund_id)
        # The process's client of that acquirer: its token, breaker and metrics (core/acquirers/clients.py);
        # an acquirer that cannot be called (settings missing) is the caller's error, the refund stays pending.
        client = await platform.acquirer_clients.client(conn, row["acquirer_code"])
    outcome, refund_no, failure = "succeeded", None, None
    try:
        answer = await client.refund(
            original_reference=row["provider_reference"] or row["transaction_id"],
            partner_refund_no=row["id"],
            amount=row["amount"],
            reason=row["reason"],
        )
        refund_no = answer.get("refundNo") if isinstance(answer.get("refundNo"), str) else None
    except AcquirerRefused as exc:
        outcome, failure = "failed", exc.message
    except (AcquirerCallFailed, AcquirerCircuitOpen) as exc:
        log.warning(
            "refund left pending: no answer from its acquirer",
            extra={"refund_id": refund_id, "acquirer": row["acquirer_code"], "problem": exc.message},
        )
        async with db.transaction() as conn:
            return await service.get_refund(conn, refund_id)
    async with db.transaction() as conn:
        await service.complete(
            conn,
            platform.settings,
            refund_id,
            outcome,
            source="acquirer",
            failure_reason=failure,
            acquirer_refund_no=refund_no,
        )
        return await service.get_refund(conn, refund_id)
