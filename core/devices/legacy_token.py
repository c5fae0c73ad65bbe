"""The earlier implementation's shared ``DEVICE_TOKEN`` on ``/device/*`` (HTTP only).

One token for the whole fleet: whoever holds it can act as any device id. It is
kept so that old firmware keeps working while it is replaced, and therefore:

- it is off unless ``DEVICE_AUTH_ALLOW_LEGACY_TOKEN=true`` (``serve --demo``
  turns it on);
- every presentation of the right token is logged with the device id it
  claims (never the token) and counted, accepted or refused; the counts of
  this process are in ``GET /admin/observability/summary``;
- the broker never accepts it: MQTT needs the device's own secret.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from qris_soundbox.core.db import Database
from qris_soundbox.core.devices.errors import DeviceAuthFailed
from qris_soundbox.core.devices.verifier import VerifiedDevice
from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.schemas import Struct

log = logging.getLogger(__name__)
# A device that has no credential yet may use the shared token, as it could before.
LEGACY_USABLE_STATUSES = frozenset({"registered", "active"})
DISABLED = "the shared device token is disabled; use X-Device-Id and X-Device-Secret"


class LegacyTokenUsage(Struct, kw_only=True):
    """The shared device token in this process since it started."""

    enabled: bool
    accepted: int = 0
    # the right token, refused: switched off, no device named, unknown or unusable device
    refused: int = 0
    last_accepted_at: datetime | None = None
    last_accepted_device_id: str | None = None


class LegacyDeviceToken:
    """One per process (``PlatformContext.legacy_device_token``): its counts are this process's."""

    def __init__(self, db: Database, token: str | None, allowed: bool) -> None:
        self._db = db
        self._token = token.encode() if token else None
        self.usage = LegacyTokenUsage(enabled=allowed and self._token is not None)

    async def authenticate(self, token: str, claimed_device_id: Callable[[], Awaitable[str | None]]) -> VerifiedDevice:
        """``token`` came as ``Authorization: Bearer``; the device id the caller claims is read
        (from a header or the body) only once the token is the right one."""
        if self._token is None or not hmac.compare_digest(token.encode(), self._token):
            raise DeviceAuthFailed("the device token is invalid" if self.usage.enabled else DISABLED)
        device_id = await claimed_device_id()
        if not self.usage.enabled:
            self._refuse(device_id, "DEVICE_AUTH_ALLOW_LEGACY_TOKEN is off")
            raise DeviceAuthFailed(DISABLED)
        if not device_id:
            self._refuse(None, "no device named")
            raise ValidationFailed(
                "with the shared device token, name the device in X-Device-Id or the body's device_id",
                details={"field": "device_id"},
            )
        row = await self._db.fetchrow("device_credential", device_id)
        if row is None or row["status"] not in LEGACY_USABLE_STATUSES:
            self._refuse(device_id, "unknown device, or the device is not usable")
            raise DeviceAuthFailed("unknown device, or the device is not active")
        self.usage.accepted += 1
        self.usage.last_accepted_at = datetime.now(UTC)
        self.usage.last_accepted_device_id = device_id
        log.info("shared device token accepted", extra={"device_id": device_id, "auth": "legacy_token"})
        return VerifiedDevice(device_id=device_id, fingerprint=None, method="legacy_token")

    def _refuse(self, device_id: str | None, reason: str) -> None:
        self.usage.refused += 1
        log.warning(
            "shared device token refused", extra={"device_id": device_id, "auth": "legacy_token", "reason": reason}
        )
