"""What every part of one running process shares: settings, database, broker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import Database
from qris_soundbox.core.ratelimit import RateLimiter

if TYPE_CHECKING:
    from qris_soundbox.broker.server import PlatformBroker

ROLES = ("api", "broker", "worker")


class PlatformContext:
    # A plain class, not a dataclass: Litestar would try to validate a dataclass
    # dependency field by field.
    def __init__(
        self,
        settings: Settings,
        db: Database,
        roles: frozenset[str] = frozenset(ROLES),
        instance_id: str = "",
    ) -> None:
        self.settings = settings
        self.db = db
        self.roles = roles
        self.instance_id = instance_id
        self.broker: PlatformBroker | None = None
        # One limiter per process, shared by the HTTP routes and the broker.
        self.rate_limiter = RateLimiter.from_settings(settings)
