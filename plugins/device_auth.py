"""amqtt auth plugin: a device connects with username = client id = device id
and password = its secret, checked against the argon2id hash in PostgreSQL.

Refused (CONNACK "not authorized"): unknown device, wrong secret, disabled,
retired, no credential yet, a client id other than the username. Usernames
that are not device ids are left to other plugins (None); with no plugin
saying yes, amqtt refuses them too.

When a credential is rotated or a device disabled/retired (in this process or
an ``--only api`` one), PostgreSQL ``NOTIFY device_credentials`` reaches
``_on_change`` and sessions using a secret that is no longer valid are closed.

When a device connects on another broker node while this one still holds its
session (a half-open TCP connection after a cellular handover), that node's
``NOTIFY device_sessions`` reaches ``_on_session_moved`` and this copy is
closed, if it is older: one live session per client id across nodes. The
other node announces only after authenticating the new connection, so a
refused CONNECT there never disturbs the session here. The closed copy's
will is not published: the device did not go offline, it moved.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amqtt.broker import BrokerContext
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from qris_soundbox.core.devices.changes import DeviceChange, DeviceChangeListener, SessionMoved
from qris_soundbox.core.logging import device_id_var
from qris_soundbox.plugins._platform import broker_of, platform_of_broker_context

log = logging.getLogger("qris_soundbox.broker.auth")
DEVICE_ID_PREFIX = "dev_"
RESYNC_BATCH = 1000


class DeviceAuthPlugin(BaseAuthPlugin):
    context: BrokerContext  # what amqtt's broker gives its plugins

    @dataclass
    class Config:
        listen_for_changes: bool = True
        """LISTEN for credential/status changes and drop sessions whose secret stopped being valid."""

    def __init__(self, context: BrokerContext) -> None:
        super().__init__(context)
        self.platform = platform_of_broker_context(context)
        self.verifier = self.platform.device_verifier
        # device id -> fingerprint of the secret its current session authenticated with
        self._session_fingerprint: dict[str, str | None] = {}
        # device id -> (fingerprint, status) last announced by NOTIFY
        self._announced: dict[str, tuple[str | None, str]] = {}
        # device id -> count of announcements, to notice one landing during a verification
        self._generation: dict[str, int] = {}
        self._listener: DeviceChangeListener | None = None

    async def on_broker_pre_start(self) -> None:
        if self.config.listen_for_changes:
            self._listener = DeviceChangeListener(
                self.platform.db, self._on_change, self._on_resync, self._on_session_moved
            )
            await self._listener.start()

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None

    async def authenticate(self, *, session: Session) -> bool | None:
        username = session.username
        if not username or not username.startswith(DEVICE_ID_PREFIX):
            return None
        token = device_id_var.set(username)
        try:
            return await self._authenticate_device(session, username)
        except Exception:
            log.exception("device authentication failed with an error; refusing")
            self._failed("error")
            return False
        finally:
            device_id_var.reset(token)

    async def _authenticate_device(self, session: Session, device_id: str) -> bool:
        if session.client_id != device_id:
            log.warning("connect refused: client id differs from username", extra={"client_id": session.client_id})
            self._failed("client_id_mismatch")
            return False
        for _ in range(3):
            generation = self._generation.get(device_id, 0)
            verified = await self.verifier.verify(device_id, session.password or "")
            if verified is None:
                log.warning("connect refused: unknown device, wrong secret, or device not active")
                self._failed("bad_credentials")
                return False
            if self._generation.get(device_id, 0) == generation:
                self._session_fingerprint[device_id] = verified.fingerprint
                # The broker translates this device's messages at its edge (broker/dialects).
                session.attributes["dialect"] = verified.dialect
                return True
            # a change was announced while verifying: check again against the new state
        self._failed("credential_changing")
        return False

    def _failed(self, reason: str) -> None:
        self.platform.metrics.auth_failures.labels("mqtt", reason).inc()

    async def on_broker_client_connected(self, *, client_id: str, client_session: Session) -> None:
        # A change announced between authentication and the session going live would otherwise be missed.
        announced = self._announced.get(client_id)
        if announced is not None and not self._still_valid(client_id, announced):
            await self._disconnect(client_id, "credential changed while connecting")

    def _still_valid(self, device_id: str, announced: tuple[str | None, str]) -> bool:
        fingerprint, status = announced
        return (
            status == "active" and fingerprint is not None and self._session_fingerprint.get(device_id) == fingerprint
        )

    async def _on_change(self, change: DeviceChange) -> None:
        device_id = change.device_id
        self._generation[device_id] = self._generation.get(device_id, 0) + 1
        self._announced[device_id] = (change.fingerprint, change.status)
        self.verifier.forget(device_id)
        if not self._still_valid(device_id, self._announced[device_id]):
            await self._disconnect(device_id, f"credential or status changed ({change.status})")

    async def _on_session_moved(self, moved: SessionMoved) -> None:
        if moved.instance_id == self.platform.instance_id:
            return
        since = broker_of(self.context).connected_since(moved.device_id)
        if since is not None and since < moved.connected_at:
            await self._disconnect(moved.device_id, "session moved to another broker node")

    async def _on_resync(self) -> None:
        """Notifications may have been lost: re-check every live device session against the database,
        its credential and whether it has moved to another node since (a batch of ids per query)."""
        self.verifier.forget()
        live = [
            session.client_id
            for session in list(self.context.sessions)
            if session.client_id
            and session.client_id.startswith(DEVICE_ID_PREFIX)
            and session.transitions.is_connected()
        ]
        for start in range(0, len(live), RESYNC_BATCH):
            batch = live[start : start + RESYNC_BATCH]
            rows = {row["id"]: row for row in await self.platform.db.fetch("device_session_states", batch)}
            for device_id in batch:
                row = rows.get(device_id)
                current = (row["credential_fingerprint"], row["status"]) if row else (None, "unknown")
                self._announced[device_id] = current
                if not self._still_valid(device_id, current):
                    await self._disconnect(device_id, "credential no longer valid (resync)")
                elif row is not None and row["online"] and row["broker_instance_id"] is not None:
                    moved = SessionMoved(
                        device_id=device_id,
                        instance_id=row["broker_instance_id"],
                        connected_at=row["presence_changed_at"],
                    )
                    await self._on_session_moved(moved)

    async def _disconnect(self, device_id: str, reason: str) -> None:
        session = self.context.get_session(device_id)
        if session is None or not session.transitions.is_connected():
            return
        token = device_id_var.set(device_id)
        try:
            log.info("disconnecting device session", extra={"reason": reason})
            await broker_of(self.context).disconnect_client(device_id)
        finally:
            device_id_var.reset(token)
