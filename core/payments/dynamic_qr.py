"""Dynamic QRIS: one function issues a QR for an amount on a terminal.

The admin API, the device HTTP API, the MQTT uplink and the partners' generate all call
``issue_dynamic_qr``, so the paths cannot drift apart. Who builds the QR content depends on the
merchant's acquirer: the platform itself (no acquirer, another protocol, or a SNAP acquirer that
only notifies: no ``base_url``), or a SNAP acquirer through its ``qr-mpm-generate`` (``core/acquirers/issuing.py``), called before anything
is written so a refused or failed call leaves nothing behind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from qris_soundbox.core.acquirers import issuing
from qris_soundbox.core.acquirers.clients import AcquirerClients
from qris_soundbox.core.audit import AuditEntry
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import Connection
from qris_soundbox.core.payments import transactions as txns
from qris_soundbox.core.payments.errors import AmountAboveLimit, MerchantQrisIncomplete
from qris_soundbox.core.payments.schemas import DynamicQr
from qris_soundbox.core.qris import QrisInput, build_dynamic_qris


async def issue_dynamic_qr(
    conn: Connection,
    settings: Settings,
    terminal: asyncpg.Record,
    amount: int,
    *,
    acquirers: AcquirerClients,
    source: str,
    device_id: str | None = None,
    ttl_s: int | None = None,
    audit: AuditEntry | None = None,
) -> asyncpg.Record:
    """The pending transaction of a new dynamic QR on ``terminal`` (a row ``txns.check_payable`` passed)."""
    if amount > settings.qris_max_amount:
        raise AmountAboveLimit(
            f"amount {amount} is above the QRIS limit of {settings.qris_max_amount} for one payment",
            details={"field": "amount", "max_amount": settings.qris_max_amount},
        )
    # The QR content is filled in below, by the acquirer or by the platform's own QRIS.
    transaction = txns.new_transaction(
        terminal,
        kind="dynamic",
        amount=amount,
        source=source,
        device_id=device_id,
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s or settings.dynamic_qr_ttl_seconds),
        audit=audit,
    )
    if terminal["acquirer_issues_qr"]:
        return await issuing.issue_at_acquirer(conn, acquirers, terminal, transaction)
    missing = [name for name in ("nmid", "postal_code") if not terminal[name]]
    if missing:
        raise MerchantQrisIncomplete(
            f"merchant {terminal['merchant_id']} lacks {', '.join(missing)} needed in a QRIS payload",
            details={"merchant_id": terminal["merchant_id"], "missing": missing},
        )
    payload = build_dynamic_qris(
        QrisInput(
            merchant_name=terminal["merchant_name"],
            merchant_city=terminal["merchant_city"],
            postal_code=terminal["postal_code"],
            mcc=terminal["mcc"],
            nmid=terminal["nmid"],
            amount=amount,
            bill_number=transaction.reference,
            terminal_label=terminal["terminal_code"],
        )
    )
    return await txns.create_transaction(conn, msgspec.structs.replace(transaction, qr_payload=payload))


def dynamic_qr_of(transaction: asyncpg.Record) -> DynamicQr:
    return DynamicQr(
        transaction_id=transaction["id"],
        qr_payload=transaction["qr_payload"],
        expires_at=transaction["expires_at"],
        amount=transaction["amount"],
        reference=transaction["reference"],
    )
