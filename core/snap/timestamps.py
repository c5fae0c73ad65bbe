"""``X-TIMESTAMP``: ISO-8601 with ``Z`` or an offset, milliseconds optional, within ±300 s of now."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from qris_soundbox.core.snap.codes import UnauthorizedSignature

WINDOW_S = 300
WIB = timezone(timedelta(hours=7))
# Seconds are required and a zone is required: a time without a zone means
# nothing across Jakarta, Makassar and Jayapura.
_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")


def parse(timestamp: str) -> datetime | None:
    """The aware instant ``timestamp`` names, or ``None`` when it is not SNAP's format."""
    if not _FORMAT.fullmatch(timestamp):
        return None
    try:
        return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None


def check_window(timestamp: str | None, now: datetime | None = None) -> datetime:
    """The instant of ``timestamp``; ``4xx..00`` when it is malformed or more than 300 s from now.

    SPEC §13 answers a stale timestamp as an unauthorized signature: the timestamp
    is part of what was signed, and a replay outside the window is refused as such."""
    sent_at = parse(timestamp) if timestamp else None
    if sent_at is None:
        raise UnauthorizedSignature("X-TIMESTAMP must be ISO-8601 with Z or an offset")
    current = now or datetime.now(UTC)
    if abs((current - sent_at).total_seconds()) > WINDOW_S:
        raise UnauthorizedSignature(f"X-TIMESTAMP is more than {WINDOW_S} s away from now")
    return sent_at


def now_timestamp(now: datetime | None = None) -> str:
    """Now as SNAP senders write it: ``2026-12-07T10:55:00+07:00`` (WIB, seconds)."""
    return (now or datetime.now(UTC)).astimezone(WIB).isoformat(timespec="seconds")
