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

from qris_soundbox.core.acquirers.secrets import SecretBox
from qris_soundbox.core.acquirers.snap_out import AcquirerCallFailed, SnapClient
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Database
from qris_soundbox.core.refunds import service
from qris_soundbox.core.refunds.schemas import Refund

log = logging.getLogger(__name__)


async def carry_out(db: Database, settings: Settings, refund_id: str) -> Refund:
    """Send a pending refund to its acquirer and record the answer; any other refund is returned as it is."""
    async with db.transaction() as conn:
        row = await conn.fetchrow(QUERIES["refund_at_acquirer"], refund_id)
        if row is None:
            return await service.get_refund(conn, refund_id)
    shown = dict(row["acquirer_settings"])
    secrets = SecretBox.of(settings).open(row["acquirer_secrets"])
    client = SnapClient(
        code=row["acquirer_code"],
        base_url=shown["base_url"],
        client_key=shown.get("client_key", ""),
        client_secret=secrets.get("client_secret", ""),
        private_key_pem=secrets.get("private_key_pem", ""),
        channel_id=shown.get("channel_id", "95221"),
    )
    outcome, refund_no, failure = "succeeded", None, None
    try:
        answer = await client.refund(
            original_reference=row["provider_reference"] or row["transaction_id"],
            partner_refund_no=row["id"],
            amount=row["amount"],
            reason=row["reason"],
        )
        refund_no = answer.get("refundNo") if isinstance(answer.get("refundNo"), str) else None
    except AcquirerCallFailed as exc:
        if not isinstance(exc.details, dict) or exc.details.get("responseCode") is None:
            log.warning("refund left pending: no answer from its acquirer", extra={"refund_id": refund_id})
            async with db.transaction() as conn:
                return await service.get_refund(conn, refund_id)
        outcome, failure = "failed", exc.message
    finally:
        await client.aclose()
    async with db.transaction() as conn:
        await service.complete(
            conn,
            settings,
            refund_id,
            outcome,
            source="acquirer",
            failure_reason=failure,
            acquirer_refund_no=refund_no,
        )
        return await service.get_refund(conn, refund_id)
