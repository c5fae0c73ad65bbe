"""amqtt plugin: device presence (online, last_seen) from broker connect/disconnect events.

One UPDATE per event. A broker starting marks devices of brokers that stopped
reporting as offline; a broker stopping marks its own devices offline.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from amqtt.session import Session

from qris_soundbox.core.devices import presence
from qris_soundbox.plugins._platform import PlatformPlugin

log = logging.getLogger("qris_soundbox.broker.presence")


class DevicePresencePlugin(PlatformPlugin):

    async def on_broker_post_start(self) -> None:
        await presence.release_stale(self.platform.db)

    async def on_broker_pre_shutdown(self) -> None:
        try:
            await presence.release_instance(self.platform.db, self.platform.instance_id)
        except Exception as exc:
            log.warning("could not mark this broker's devices offline", extra={"error": repr(exc)})

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        await self._mark(client_id, online=True, at=datetime.now(UTC))

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Session) -> None:
        at = datetime.now(UTC)
        current = self.context.get_session(client_id)
        if current is not None and current is not client_session and current.transitions.is_connected():
            return  # taken over by a newer connection of the same device: still online
        await self._mark(client_id, online=False, at=at)

    async def _mark(self, client_id: str, *, online: bool, at: datetime) -> None:
        try:
            await presence.mark_presence(self.platform.db, client_id, online=online, at=at, instance_id=self.platform.instance_id)
        except Exception as exc:
            log.warning("presence update failed", extra={"device_id": client_id, "error": repr(exc)})
