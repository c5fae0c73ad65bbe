"""The payment announcement: what the bound soundbox says when a payment is paid.

Queued in the same database transaction that marks the transaction paid, shaped
for the device's model by the capability resolver (``core/announcement.py``) in
the device's configured language and text template (``core/devices/config_shadow.py``),
and valid until ``paid_at + PAYMENT_ANNOUNCEMENT_MAX_AGE_SECONDS``: an older
payment is never played late (``skipped_late``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec

from qris_soundbox.core import outbox
from qris_soundbox.core.announcement import Announcement, AnnouncementCapabilities, shape_announcement
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices.config_shadow import announcement_preferences
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.payments.errors import NothingToRetry

log = logging.getLogger(__name__)


def payment_announcement(
    capabilities: dict, *, language: str, amount: int, merchant_name: str, text_template: str | None = None
) -> Announcement:
    caps = msgspec.convert(capabilities, AnnouncementCapabilities)
    try:
        return shape_announcement(
            caps, language=language, amount=amount, merchant_name=merchant_name, text_template=text_template
        )
    except DomainError as exc:
        # Config-time checks make this rare (e.g. an amount above the sized bound); a
        # payment must never fail for its announcement: the device shows/says the number.
        log.warning("announcement fell back to amount_only", extra={"code": exc.code, "amount": amount})
        return Announcement(format="amount_only", language=language, amount=amount)


async def announce_payment(
    conn: Connection,
    settings: Settings,
    transaction: asyncpg.Record,
    *,
    not_before: datetime | None = None,
) -> str | None:
    """Queue the payment downlink for the terminal's soundbox; None when none is bound.

    It expires ``PAYMENT_ANNOUNCEMENT_MAX_AGE_SECONDS`` after ``paid_at`` (or after
    ``not_before``, for an operator's retry)."""
    soundbox = await conn.fetchrow(QUERIES["soundbox_for_terminal"], transaction["terminal_id"])
    if soundbox is None:
        return None
    paid_at: datetime = transaction["paid_at"] or datetime.now(UTC)
    preferences = await announcement_preferences(conn, soundbox["device_id"])
    announcement = payment_announcement(
        soundbox["capabilities"],
        language=preferences.language,
        amount=transaction["amount"],
        merchant_name=soundbox["merchant_name"],
        text_template=preferences.text_template,
    )
    body = {
        "type": "payment",
        "transaction_id": transaction["id"],
        "amount": transaction["amount"],
        "currency": transaction["currency"],
        "paid_at": paid_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "announcement": msgspec.to_builtins(announcement),
    }
    return await outbox.enqueue(
        conn,
        device_id=soundbox["device_id"],
        kind="payment",
        body=body,
        expires_at=max(paid_at, not_before or paid_at)
        + timedelta(seconds=settings.payment_announcement_max_age_seconds),
        transaction_id=transaction["id"],
    )


async def retry(conn: Connection, settings: Settings, transaction: asyncpg.Record) -> str:
    """``retry-notification``: an unacked announcement is due again now; an acked,
    expired or skipped one is queued afresh (an operator asked for it, so the age
    rule restarts from now)."""
    if transaction["status"] != "paid":
        raise NothingToRetry(f"transaction {transaction['id']} is {transaction['status']}, not paid")
    latest = await conn.fetchrow(QUERIES["latest_payment_downlink"], transaction["id"])
    if latest is not None and latest["status"] in ("pending", "sent"):
        await conn.execute(QUERIES["wake_downlink"], latest["id"])
        await conn.execute(QUERIES["notify_outbox"], latest["device_id"])
        return latest["message_id"]
    message_id = await announce_payment(conn, settings, transaction, not_before=datetime.now(UTC))
    if message_id is None:
        raise NothingToRetry(f"no active soundbox is bound to terminal {transaction['terminal_id']}")
    return message_id
