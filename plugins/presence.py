"""amqtt plugin: device presence (online, last_seen) from broker connect/disconnect events.

Events go to a ``PresenceWriter``, which writes them in one UPDATE every
``flush_after_s`` (a reconnect storm must not turn into a commit per
device). A broker starting marks devices of brokers that stopped reporting
as offline; a broker stopping writes what is pending and marks its own
devices offline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from amqtt.broker import BrokerContext
from amqtt.session import Session

from qris_soundbox.core.devices import presence
from qris_soundbox.plugins._platform import PlatformPlugin

log = logging.getLogger("qris_soundbox.broker.presence")


class DevicePresencePlugin(PlatformPlugin):
    @dataclass
    class Config:
        flush_after_s: float = 0.1
        """Presence changes are written to PostgreSQL at most this often (and this late)."""

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        self.writer = presence.PresenceWriter(self.platform.db, self.platform.instance_id, self.config.flush_after_s)

    async def on_broker_post_start(self) -> None:
        await presence.release_stale(self.platform.db)

    async def on_broker_pre_shutdown(self) -> None:
        try:
            await self.writer.flush()
            await presence.release_instance(self.platform.db, self.platform.instance_id)
        except Exception as exc:
            log.warning("could not mark this broker's devices offline", extra={"error": repr(exc)})

    async def close(self) -> None:
        # The disconnects of the sessions closed by the shutdown are still pending.
        await self.writer.close()

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        self.writer.mark(client_id, online=True, at=datetime.now(UTC))

    async def on_broker_client_disconnected(self, *, client_id: str, client_session: Session) -> None:
        at = datetime.now(UTC)
        current = self.context.get_session(client_id)
        if current is not None and current is not client_session and current.transitions.is_connected():
            return  # taken over by a newer connection of the same device: still online
        self.writer.mark(client_id, online=False, at=at)
