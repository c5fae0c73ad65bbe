"""What every part of one running process shares: settings, database, broker,
and the per-process state the HTTP routes and the broker both use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import Database
from qris_soundbox.core.devices.legacy_token import LegacyDeviceToken
from qris_soundbox.core.devices.schemas import BrokerAddress
from qris_soundbox.core.devices.verifier import CredentialVerifier
from qris_soundbox.core.metrics import Metrics
from qris_soundbox.core.ratelimit import RateLimiter

if TYPE_CHECKING:
    from qris_soundbox.broker.server import PlatformBroker

ROLES = ("api", "broker", "worker")
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
DEFAULT_BROKER_ADDRESS = ("127.0.0.1", 1883)


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
        # host, port this process's broker listens on; set by whoever starts ``broker``.
        self.broker_listener: tuple[str, int] | None = None
        # One limiter per process, shared by the HTTP routes and the broker.
        self.rate_limiter = RateLimiter.from_settings(settings)
        # One verifier (cache + hashing pool) per process, shared by the broker's auth plugin and /device/*.
        self.device_verifier = CredentialVerifier(db)
        # The shared legacy token on /device/*; its counts are this process's.
        self.legacy_device_token = LegacyDeviceToken(db, settings.device_token, settings.device_auth_allow_legacy_token)
        # This process's Prometheus metrics, on a registry of its own (GET /metrics).
        self.metrics = Metrics()
        self.metrics.attach(self)

    def device_broker_address(self) -> BrokerAddress:
        """Where devices are told to connect: MQTT_PUBLIC_HOST/PORT, else this process's broker listener."""
        host, port = self.broker_listener or DEFAULT_BROKER_ADDRESS
        if host in WILDCARD_HOSTS:
            host = DEFAULT_BROKER_ADDRESS[0]
        return BrokerAddress(host=self.settings.mqtt_public_host or host, port=self.settings.mqtt_public_port or port)
