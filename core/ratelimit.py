"""Rate limits per bucket (``login``, ``device``, ``device_auth``, ``admin_write``, ``callback``, ``partner``).

Fixed windows per key, sized by ``RATE_LIMIT_<BUCKET>_WINDOW_MS`` / ``_MAX``:
enough to stop password guessing and runaway clients; a burst of up to 2×max
across a window boundary is accepted.

Where the counts live is ``RATE_LIMIT_STORE``:

- ``memory`` (default): in the process, one dict entry per active key, no I/O.
  With several API processes each one counts its own share.
- ``postgres``: one UNLOGGED table shared by every API node, so N nodes
  enforce one limit; one upsert (one round trip) per limited request
  (docs/scaling.md has its measured cost). Unlogged: counts are not worth
  WAL, and a crash of PostgreSQL forgetting them is harmless.

HTTP routes opt in with ``opt={"rate_limit": "<bucket>"}``
(``control_plane/policies.py``). ``device_auth`` counts failures only: a
wrong ``X-Device-Secret`` is counted with ``hit`` and every attempt first
passes ``check`` (``control_plane/device_auth.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import QUERIES, Database
from qris_soundbox.core.errors import RateLimited

BUCKETS = ("login", "device", "device_auth", "admin_write", "callback", "partner")
_SWEEP_EVERY = 1024  # hits between sweeps of finished windows


@dataclass(frozen=True)
class Limit:
    max: int
    window_s: float


def _refused(bucket: str, limit: Limit, retry_after_s: float) -> RateLimited:
    retry_after = max(1, math.ceil(retry_after_s))
    return RateLimited(
        f"too many requests; retry in {retry_after} s",
        retry_after_s=retry_after,
        details={"bucket": bucket, "limit": limit.max, "window_s": limit.window_s},
    )


def limits_from_settings(settings: Settings) -> dict[str, Limit]:
    limits = {
        bucket: Limit(
            getattr(settings, f"rate_limit_{bucket}_max"),
            getattr(settings, f"rate_limit_{bucket}_window_ms") / 1000,
        )
        for bucket in BUCKETS
    }
    # The login window also bounds all logins from one IP (counted by the login route's policy).
    limits["login_ip"] = Limit(settings.rate_limit_login_ip_max, settings.rate_limit_login_window_ms / 1000)
    return limits


def rate_limiter_for(settings: Settings, db: Database) -> RateLimiter | SharedRateLimiter:
    """The limiter ``RATE_LIMIT_STORE`` asks for."""
    limits = limits_from_settings(settings)
    if settings.rate_limit_store == "postgres":
        return SharedRateLimiter(limits, db, enabled=settings.rate_limit_enabled)
    return RateLimiter(limits, enabled=settings.rate_limit_enabled)


class RateLimiter:
    """Counts in this process."""

    def __init__(
        self, limits: dict[str, Limit], *, enabled: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.enabled = enabled
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}  # (bucket, key) -> (window start, count)
        self._hits = 0

    async def hit(self, bucket: str, key: str) -> None:
        self.count(bucket, key)

    async def check(self, bucket: str, key: str) -> None:
        """Raise ``RateLimited`` if the key has used its window up, without counting."""
        if self.enabled:
            self._current(bucket, key, self._clock())

    def count(self, bucket: str, key: str) -> None:
        """Count one request; raise ``RateLimited`` (with Retry-After) over the limit."""
        if not self.enabled:
            return
        now = self._clock()
        self._hits += 1
        if self._hits % _SWEEP_EVERY == 0:
            self._sweep(now)
        start, count = self._current(bucket, key, now)
        self._windows[(bucket, key)] = (start, count + 1)

    def _current(self, bucket: str, key: str, now: float) -> tuple[float, int]:
        limit = self.limits[bucket]  # an unknown bucket is a programming error: KeyError
        start, count = self._windows.get((bucket, key), (now, 0))
        if now - start >= limit.window_s:
            start, count = now, 0
        if count >= limit.max:
            raise _refused(bucket, limit, start + limit.window_s - now)
        return start, count

    def _sweep(self, now: float) -> None:
        finished = [k for k, (start, _) in self._windows.items() if now - start >= self.limits[k[0]].window_s]
        for k in finished:
            del self._windows[k]


class SharedRateLimiter:
    """Counts in PostgreSQL, shared by every process on the database."""

    def __init__(self, limits: dict[str, Limit], db: Database, *, enabled: bool = True) -> None:
        self.limits = limits
        self.enabled = enabled
        self._db = db

    async def hit(self, bucket: str, key: str) -> None:
        """Count one request; raise ``RateLimited`` (with Retry-After) over the limit."""
        if not self.enabled:
            return
        limit = self.limits[bucket]
        row = await self._db.pool.fetchrow(QUERIES["rate_limit_hit"], bucket, key, limit.window_s)
        assert row is not None  # an upsert with RETURNING always returns its row
        if row["hits"] > limit.max:
            raise _refused(bucket, limit, row["retry_after_s"])

    async def check(self, bucket: str, key: str) -> None:
        """Raise ``RateLimited`` if the key has used its window up, without counting."""
        if not self.enabled:
            return
        limit = self.limits[bucket]
        row = await self._db.pool.fetchrow(QUERIES["rate_limit_current"], bucket, key)
        if row is not None and row["hits"] >= limit.max:
            raise _refused(bucket, limit, row["retry_after_s"])


async def purge_shared_counts(db: Database) -> None:
    """Job ``ratelimit.purge``: forget finished windows (a no-op with the in-memory store)."""
    await db.execute("rate_limit_purge")
