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
from typing import Any

import asyncpg
import msgspec

from qris_soundbox.core import outbox
from qris_soundbox.core.announcement import Announcement, AnnouncementCapabilities, shape_announcement
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.devices.config_shadow import AnnouncementPreferences, preferences_of
from qris_soundbox.core.devices.schemas import Capabilities
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


class Soundbox(msgspec.Struct, kw_only=True, frozen=True):
    """The active soundbox bound to a terminal, with what its announcement is shaped from."""

    device_id: str
    capabilities: dict[str, Any]
    merchant_name: str
    config: dict[str, Any] | None  # the device's desired config; None when never configured


def _preferences(soundbox: Soundbox) -> AnnouncementPreferences:
    """The language and text template the device is configured with (its model's defaults when never configured)."""
    return preferences_of(
        soundbox.config, msgspec.convert(soundbox.capabilities, Capabilities) if soundbox.config is None else None
    )


def payment_downlink(
    settings: Settings,
    soundbox: Soundbox,
    *,
    transaction_id: str,
    amount: int,
    paid_at: datetime,
    currency: str | None = None,
    not_before: datetime | None = None,
) -> outbox.NewDownlink:
    """The payment downlink for ``soundbox``, in its configured language and template.

    It expires ``PAYMENT_ANNOUNCEMENT_MAX_AGE_SECONDS`` after ``paid_at`` (or after
    ``not_before``, for an operator's retry). The body's ``currency`` is the
    transaction's: without ``currency``, ``payment_transition`` (sql/migrations/080) adds it."""
    preferences = _preferences(soundbox)
    announcement = payment_announcement(
        soundbox.capabilities,
        language=preferences.language,
        amount=amount,
        merchant_name=soundbox.merchant_name,
        text_template=preferences.text_template,
    )
    body = {
        "type": "payment",
        "transaction_id": transaction_id,
        "amount": amount,
        "paid_at": paid_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "announcement": msgspec.to_builtins(announcement),
    } | ({"currency": currency} if currency is not None else {})
    return outbox.new_downlink(
        device_id=soundbox.device_id,
        kind="payment",
        body=body,
        expires_at=max(paid_at, not_before or paid_at)
        + timedelta(seconds=settings.payment_announcement_max_age_seconds),
        transaction_id=transaction_id,
    )


# What a soundbox says for a refund (SPEC §15). Only a model that speaks free text can say it: a
# clip model has no recording of these words, and an amount-only one would sound like a payment.
REFUND_SENTENCE = {"id": "Pengembalian dana QRIS, {amount_words}", "en": "QRIS refund, {amount_words}"}


def refund_downlink(
    settings: Settings, soundbox: Soundbox, *, transaction_id: str, refund_id: str, amount: int, refunded_at: datetime
) -> outbox.NewDownlink | None:
    """The refund announcement for ``soundbox`` on the payment topic (``type: "refund"``, acked like a
    payment), or None when its model cannot say it whole: not a text model, or the sentence does not
    fit its text limit (a cut sentence would be the amount alone, which a customer hears as paid)."""
    capabilities = msgspec.convert(soundbox.capabilities, AnnouncementCapabilities)
    if capabilities.announcement_format != "text":
        return None
    preferences = _preferences(soundbox)
    sentence = REFUND_SENTENCE.get(preferences.language)
    if sentence is None:
        return None
    try:
        announcement = shape_announcement(
            capabilities,
            language=preferences.language,
            amount=amount,
            merchant_name=soundbox.merchant_name,
            text_template=sentence,
        )
    except DomainError:
        return None
    if not (announcement.text or "").startswith(sentence.split("{", 1)[0]):
        return None
    body = {
        "type": "refund",
        "transaction_id": transaction_id,
        "refund_id": refund_id,
        "amount": amount,
        "currency": "IDR",
        "paid_at": refunded_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "announcement": msgspec.to_builtins(announcement),
    }
    return outbox.new_downlink(
        device_id=soundbox.device_id,
        kind="payment",
        body=body,
        expires_at=refunded_at + timedelta(seconds=settings.payment_announcement_max_age_seconds),
        transaction_id=transaction_id,
    )


def soundbox_of(context: asyncpg.Record | None) -> Soundbox | None:
    """The soundbox in a ``terminal_payment_context`` row; None when none is bound."""
    if context is None or context["device_id"] is None:
        return None
    return Soundbox(
        device_id=context["device_id"],
        capabilities=context["capabilities"],
        merchant_name=context["merchant_name"],
        config=context["config"],
    )


async def announce_payment(
    conn: Connection, settings: Settings, transaction: asyncpg.Record, *, not_before: datetime
) -> str | None:
    """Queue the payment downlink for the terminal's soundbox again; None when none is bound."""
    soundbox = soundbox_of(await conn.fetchrow(QUERIES["terminal_payment_context"], transaction["terminal_id"], None))
    if soundbox is None:
        return None
    downlink = payment_downlink(
        settings,
        soundbox,
        transaction_id=transaction["id"],
        amount=transaction["amount"],
        paid_at=transaction["paid_at"] or datetime.now(UTC),
        currency=transaction["currency"],
        not_before=not_before,
    )
    return await outbox.queue(conn, downlink)


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
