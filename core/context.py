"""What every part of one running process shares: settings, database, broker,
and the per-process state the HTTP routes and the broker both use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qris_soundbox.core.acquirers.clients import AcquirerClients
from qris_soundbox.core.batching import Snapshot
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import Database
from qris_soundbox.core.devices.counters import DeviceCounter
from qris_soundbox.core.devices.credentials import broker_profile
from qris_soundbox.core.devices.legacy_token import LegacyDeviceToken
from qris_soundbox.core.devices.presence import HttpHeartbeats
from qris_soundbox.core.devices.schemas import AnnouncementKeys, BrokerAddress
from qris_soundbox.core.devices.uplink_budget import UplinkBudget
from qris_soundbox.core.devices.uplink_writes import UplinkWrites
from qris_soundbox.core.devices.verifier import CredentialVerifier
from qris_soundbox.core.finance.schemas import ObservabilitySummary, WorkerState
from qris_soundbox.core.idempotency import IdempotencyKeys
from qris_soundbox.core.metrics import Metrics
from qris_soundbox.core.ratelimit import rate_limiter_for

if TYPE_CHECKING:
    from qris_soundbox.broker.server import PlatformBroker
    from qris_soundbox.core.announcement_signing import AnnouncementSigner
    from qris_soundbox.core.partners.platform_key import PlatformKey

ROLES = ("api", "broker", "worker")
# How old the observability summary's database part may be (``generated_at`` says how old it is).
OBSERVABILITY_MAX_AGE_S = 1.0


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
        # The RSA key signing notifications to partners; set by ``serve`` (core/partners/platform_key.py).
        self.platform_key: PlatformKey | None = None
        # The Ed25519 key signing announcements to devices; set by ``serve`` (core/announcement_signing.py).
        self.announcement_signer: AnnouncementSigner | None = None
        # The wire dialects whose payment message cannot carry that signature (set by ``serve`` from
        # acl/dialects/): their devices can be tricked by a forged announcement, and the model list says so.
        self.unsigned_dialects: frozenset[str] = frozenset()
        # host, port this process's broker listens on; set by whoever starts ``broker``.
        self.broker_listener: tuple[str, int] | None = None
        # host, port of its MQTT-over-TLS listener, when it serves one.
        self.broker_tls_listener: tuple[str, int] | None = None
        # The trace rows and heartbeats (its broker's MQTT ones, its HTTP ones) of this process, written in batches.
        self.uplink_writes = UplinkWrites(db)
        self.http_heartbeats = HttpHeartbeats(db, self.uplink_writes)
        # GET /admin/observability/summary's database part, read at most that often (core/finance/dashboard.py).
        self.observability: Snapshot[ObservabilitySummary] = Snapshot(max_age_s=OBSERVABILITY_MAX_AGE_S)
        # What this process's export worker last did (``exports.process``), shown by the observability summary.
        self.export_worker = WorkerState(
            enabled=settings.export_worker_enabled and "worker" in roles,
            interval_ms=settings.export_worker_interval_ms,
            batch_size=settings.export_worker_batch_size,
        )
        # Idempotency-Key claims (leases) and the waiters on keys in progress of this process.
        self.idempotency_keys = IdempotencyKeys(
            db, ttl_s=settings.idempotency_key_ttl_seconds, lease_s=settings.idempotency_lease_seconds
        )
        # One limiter per process (its counts in memory or shared in PostgreSQL: RATE_LIMIT_STORE).
        self.rate_limiter = rate_limiter_for(settings, db)
        # Topic refusals per device, written to devices.acl_denials (the ACL plugin's and the broker's dialect edge's).
        self.acl_denials = DeviceCounter(db, "device_add_acl_denials")
        # One verifier (cache + hashing pool) per process, shared by the broker's auth plugin and /device/*.
        self.device_verifier = CredentialVerifier(db)
        # The shared legacy token on /device/*; its counts are this process's.
        self.legacy_device_token = LegacyDeviceToken(db, settings.device_token, settings.device_auth_allow_legacy_token)
        # This process's Prometheus metrics, on a registry of its own (GET /metrics).
        self.metrics = Metrics()
        self.metrics.attach(self)
        # One SNAP client per acquirer (its token, circuit breaker and connections), for the calls out.
        self.acquirer_clients = AcquirerClients(settings, self.metrics)
        # Each device's MQTT uplinks per kind and window, counted by its broker node (core/devices/uplink_budget.py).
        self.uplink_budget = UplinkBudget(
            max_per_window=settings.mqtt_uplink_budget_max,
            window_s=settings.mqtt_uplink_budget_window_ms / 1000,
            trace_sample=settings.mqtt_uplink_trace_sample,
            dropped=DeviceCounter(db, "device_add_uplinks_dropped"),
            metric=self.metrics.uplinks_dropped,
        )

    def device_announcement_keys(self) -> AnnouncementKeys:
        """The public keys devices verify announcements with (``GET /device/keys``, the connection profile)."""
        if self.announcement_signer is None:
            raise RuntimeError("the announcement signing key is not loaded (serve loads it at start)")
        return self.announcement_signer.published

    def device_broker_address(self) -> BrokerAddress:
        """Where devices are told to connect and how they trust the broker (``credentials.broker_profile``):
        MQTT_PUBLIC_HOST/PORT, else this process's broker listener; MQTT over TLS when it is configured."""
        return broker_profile(self.settings, self.broker_listener, self.broker_tls_listener)
