"""Signed notifications to partners: the delivery side of the partner outbox.

Rows are written by the trigger of sql/migrations/140 in the transaction of the
status change. The worker process runs one ``PartnerNotifier``: woken by
``LISTEN partner_outbox`` and by a poll (``PARTNER_NOTIFY_INTERVAL_MS``, for retries
and for what was written while it was down), it leases due rows — only the oldest
undelivered row of each transaction, so a partner hears a transaction's events in
order — and sends each in a task of its own: a receiver that hangs, answers 500,
answers 200 with a non-success ``responseCode`` or redirects (never followed)
costs its own row a retry, never another partner's delivery. The lease
(the timeout plus a margin) makes a row whose worker died due again.

Each attempt sends the body minified (``msgspec`` encodes without whitespace) and
signs those very bytes: ``X-SIGNATURE`` = Base64(SHA256withRSA(platform key,
``POST:<notify path>:lowerhex(SHA256(body)):X-TIMESTAMP``)), ``X-KEY-ID`` naming
the key. ``X-EXTERNAL-ID`` is the row's id, the same at every attempt, so a
receiver de-duplicates retries by it. Success is a 2xx whose body's
``responseCode`` starts with ``2``; otherwise the next try comes after an
exponential back-off with jitter, and after ``PARTNER_NOTIFY_MAX_ATTEMPTS`` the
row is ``dead`` until an operator resends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import msgspec

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.paging import PageQuery
from qris_soundbox.core.partners import schemas as s
from qris_soundbox.core.partners.errors import NotificationNotFound
from qris_soundbox.core.partners.platform_key import PlatformKey
from qris_soundbox.core.partners.registry import get_partner
from qris_soundbox.core.snap import timestamps, wire

if TYPE_CHECKING:
    from qris_soundbox.core.context import PlatformContext

log = logging.getLogger(__name__)

CHANNEL = "partner_outbox"
BATCH = 100
CHANNEL_ID = "95221"  # the QRIS channel, as SNAP senders fill CHANNEL-ID
_LEASE_MARGIN_S = 10
_ERROR_LENGTH = 300


def notify_path(url: str) -> str:
    """What the signature names of ``url``: its path, with its query string when it has one."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def signed_request(key: PlatformKey, row: Any, timestamp: str) -> tuple[bytes, dict[str, str]]:
    """The body bytes and headers of one attempt for an outbox row."""
    body = msgspec.json.encode(row["body"])
    message = wire.asymmetric_string_to_sign("POST", notify_path(row["notify_url"]), body, timestamp)
    return body, {
        "Content-Type": "application/json",
        "X-TIMESTAMP": timestamp,
        "X-PARTNER-ID": row["client_key"],
        "X-EXTERNAL-ID": str(row["id"]),
        "CHANNEL-ID": CHANNEL_ID,
        "X-KEY-ID": key.key_id,
        "X-SIGNATURE": key.sign(message),
    }


def backoff_s(settings: Settings, attempt: int) -> float:
    """Seconds before the try after ``attempt``: doubled each time, capped, with jitter (half to all of
    it), so receivers coming back from an outage are not hit by every sender at once."""
    ceiling = min(settings.partner_notify_backoff_ms * 2 ** (attempt - 1), settings.partner_notify_backoff_max_ms)
    return ceiling * random.uniform(0.5, 1.0) / 1000


def _outcome(response: httpx.Response) -> tuple[str | None, str | None]:
    """(the answer's responseCode, None when it is a success, else why it is not)."""
    try:
        answer = msgspec.json.decode(response.content)
    except msgspec.DecodeError:
        answer = None
    code = answer.get("responseCode") if isinstance(answer, dict) else None
    code = code if isinstance(code, str) else None
    if not response.is_success:
        return code, f"HTTP {response.status_code}"
    if code is None or not code.startswith("2"):
        return code, f"HTTP {response.status_code} without a SNAP success responseCode ({code})"
    return code, None


class PartnerNotifier:
    def __init__(self, platform: PlatformContext, key: PlatformKey) -> None:
        self._platform = platform
        self._key = key
        settings = platform.settings
        self._client = httpx.AsyncClient(
            follow_redirects=False, timeout=settings.partner_notify_timeout_ms / 1000, trust_env=False
        )
        self._lease_s = settings.partner_notify_timeout_ms / 1000 + _LEASE_MARGIN_S
        self._wake = asyncio.Event()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._listener: asyncpg.pool.PoolConnectionProxy | None = None

    def _notified(self, *_: object) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        interval = self._platform.settings.partner_notify_interval_ms / 1000
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    self._listener = await self._platform.db.pool.acquire()
                    await self._listener.add_listener(CHANNEL, self._notified)
                self._wake.clear()
                await self.tick()
            except Exception:
                log.exception("partner notifier tick failed")
                await self._drop_listener()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)

    async def tick(self) -> int:
        """Lease what is due and start delivering it; how many rows were leased."""
        rows = await self._platform.db.fetch("claim_partner_notifications", BATCH, self._lease_s)
        for row in rows:
            task = asyncio.create_task(self._deliver(row))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        return len(rows)

    async def _deliver(self, row: asyncpg.Record) -> None:
        settings = self._platform.settings
        body, headers = signed_request(self._key, row, timestamps.now_timestamp())
        started = time.monotonic()
        http_status = code = error = None
        try:
            response = await self._client.post(row["notify_url"], content=body, headers=headers)
            http_status = response.status_code
            code, error = _outcome(response)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH] or type(exc).__name__
        latency_ms = int((time.monotonic() - started) * 1000)
        if error is None:
            outcome, delay = "delivered", 0.0
        elif row["attempts"] >= settings.partner_notify_max_attempts:
            outcome, delay = "dead", 0.0
        else:
            outcome, delay = "retry", backoff_s(settings, row["attempts"])
        try:
            await self._platform.db.execute(
                "record_partner_delivery",
                row["id"],
                outcome,
                delay,
                error,
                http_status,
                code,
                latency_ms,
                row["attempts"],
            )
        except Exception:
            # The lease runs out and the row is tried again: at least once, never lost.
            log.exception("partner delivery could not be recorded", extra={"outbox_id": row["id"]})
            return
        self._platform.metrics.partner_notifications.labels(outcome).inc()
        log.info(
            "partner notification attempt",
            extra={"outbox_id": row["id"], "partner_id": row["partner_id"], "outcome": outcome, "error": error},
        )

    async def _drop_listener(self) -> None:
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await self._platform.db.release_listening(listener, self._notified, CHANNEL)

    async def close(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)
        await self._drop_listener()
        await self._client.aclose()


async def delivery_log(conn: Connection, partner_id: str, page: PageQuery) -> s.DeliveryLog:
    """The partner's newest notifications and delivery attempts."""
    await get_partner(conn, partner_id)  # 404 for an unknown partner, not an empty log
    notifications = await conn.fetch(QUERIES["partner_notifications"], partner_id, page.limit)
    attempts = await conn.fetch(QUERIES["partner_delivery_log"], partner_id, page.limit)
    return s.DeliveryLog(
        notifications=[s.PartnerNotification(**dict(row)) for row in notifications],
        attempts=[s.PartnerDelivery(**dict(row)) for row in attempts],
    )


async def resend(conn: Connection, actor: AuditActor, partner_id: str, outbox_id: int) -> None:
    """An operator's resend: the notification is due now, with its tries counted afresh."""
    if await conn.fetchval(QUERIES["resend_partner_notification"], partner_id, outbox_id) is None:
        raise NotificationNotFound(
            f"partner {partner_id} has no notification {outbox_id}", details={"notification_id": outbox_id}
        )
    await conn.execute(QUERIES["notify_partner_outbox"], partner_id)
    await audit.record(
        conn,
        actor,
        "partner.notification.resend",
        entity_type="partner",
        entity_id=partner_id,
        payload={"notification_id": outbox_id},
    )
