"""In-memory rate limits per bucket (``login``, ``device``, ``admin_write``, ``callback``).

Fixed windows per key, sized by ``RATE_LIMIT_<BUCKET>_WINDOW_MS`` / ``_MAX``:
cheap (one dict entry per active key) and enough to stop password guessing and
runaway clients; a burst of up to 2×max across a window boundary is accepted.
The counts live in the process: with several API processes each one counts its
own share (see docs/merchants.md).

HTTP routes opt in with ``opt={"rate_limit": "<bucket>"}``
(``control_plane/policies.py``); the broker can call ``RateLimiter.hit`` directly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from qris_soundbox.core.config import Settings
from qris_soundbox.core.errors import RateLimited

BUCKETS = ("login", "device", "admin_write", "callback")
_SWEEP_EVERY = 1024  # hits between sweeps of finished windows


@dataclass(frozen=True)
class Limit:
    max: int
    window_s: float


class RateLimiter:
    def __init__(
        self, limits: dict[str, Limit], *, enabled: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.enabled = enabled
        self._clock = clock
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}  # (bucket, key) -> (window start, count)
        self._hits = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        limits = {
            bucket: Limit(
                getattr(settings, f"rate_limit_{bucket}_max"),
                getattr(settings, f"rate_limit_{bucket}_window_ms") / 1000,
            )
            for bucket in BUCKETS
        }
        # The login window also bounds all logins from one IP (counted by the login route's policy).
        limits["login_ip"] = Limit(settings.rate_limit_login_ip_max, settings.rate_limit_login_window_ms / 1000)
        return cls(limits, enabled=settings.rate_limit_enabled)

    def hit(self, bucket: str, key: str) -> None:
        """Count one request; raise ``RateLimited`` (with Retry-After) over the limit."""
        if not self.enabled:
            return
        limit = self.limits[bucket]  # an unknown bucket is a programming error: KeyError
        now = self._clock()
        self._hits += 1
        if self._hits % _SWEEP_EVERY == 0:
            self._sweep(now)
        start, count = self._windows.get((bucket, key), (now, 0))
        if now - start >= limit.window_s:
            start, count = now, 0
        if count >= limit.max:
            retry_after = max(1, math.ceil(start + limit.window_s - now))
            raise RateLimited(
                f"too many requests; retry in {retry_after} s",
                retry_after_s=retry_after,
                details={"bucket": bucket, "limit": limit.max, "window_s": limit.window_s},
            )
        self._windows[(bucket, key)] = (start, count + 1)

    def _sweep(self, now: float) -> None:
        finished = [k for k, (start, _) in self._windows.items() if now - start >= self.limits[k[0]].window_s]
        for k in finished:
            del self._windows[k]
