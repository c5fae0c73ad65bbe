"""CONNECT admission: whether a CONNECT is accepted, decided before any session is touched.

amqtt 0.12.1 deleted the existing session of a clean-session CONNECT and took
over a connected one before asking the auth plugins: anyone could knock a
device offline or erase its session with its client id. ``Admission.admit``
runs every check first — MQTT's own (protocol level, [MQTT-3.1.2-22],
[MQTT-3.1.3-8]), the client certificate naming the user on a mutual-TLS
listener, the auth plugins, the will's topic under the PUBLISH rules — and a
refused CONNECT gets its CONNACK code and changes nothing. Installing the
accepted session (take-over, resume) is the broker's (``server.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from amqtt.mqtt.connack import BAD_USERNAME_PASSWORD, IDENTIFIER_REJECTED, NOT_AUTHORIZED, UNACCEPTABLE_PROTOCOL_VERSION
from amqtt.utils import gen_client_id

from qris_soundbox.broker.session import DeviceSession
from qris_soundbox.broker.tls import certificate_names

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from amqtt.session import Session
    from prometheus_client import Counter

    from qris_soundbox.broker.codec import ConnectRequest
    from qris_soundbox.broker.protocol import Connection
    from qris_soundbox.broker.tls import ReloadableContext

log = logging.getLogger(__name__)

MQTT_PROTOCOL_LEVEL = 4

# CONNACK refusal codes as the ``result`` label of ``qris_broker_connects_total``.
_REFUSAL_NAMES = {
    UNACCEPTABLE_PROTOCOL_VERSION: "protocol_version",
    BAD_USERNAME_PASSWORD: "bad_username_password",
    IDENTIFIER_REJECTED: "identifier_rejected",
}


def protocol_refusal(request: ConnectRequest) -> int | None:
    """The CONNACK code MQTT 3.1.1 itself refuses ``request`` with, or None."""
    if request.protocol_level != MQTT_PROTOCOL_LEVEL:
        return UNACCEPTABLE_PROTOCOL_VERSION
    if request.password is not None and request.username is None:
        return BAD_USERNAME_PASSWORD  # [MQTT-3.1.2-22]
    if not request.clean_session and not request.client_id:
        return IDENTIFIER_REJECTED  # [MQTT-3.1.3-8]
    return None


class Admission:
    """The checks of a CONNECT, with what they need from the broker handed in (no reference back to it)."""

    def __init__(
        self,
        *,
        tls: Mapping[str, ReloadableContext],
        authenticate: Callable[[Session, str], Awaitable[bool]],
        may_publish: Callable[[Session, str], Awaitable[bool]],
        connects: Counter,
        max_queued_messages: int,
    ) -> None:
        self._tls = tls
        self._authenticate = authenticate
        self._may_publish = may_publish
        self._connects = connects
        self._max_queued = max_queued_messages

    async def admit(self, connection: Connection, request: ConnectRequest) -> DeviceSession | None:
        """The session a CONNECT asks for, or None once it is refused (CONNACK sent, nothing else changed)."""
        refusal = protocol_refusal(request)
        if refusal is not None:
            log.warning(
                "CONNECT refused",
                extra={"client_id": request.client_id, "peer": connection.peer, "return_code": refusal},
            )
            self._connects.labels(_REFUSAL_NAMES[refusal]).inc()
            connection.refuse(refusal)
            return None
        if not self._certificate_names_user(connection, request.username):
            connection.refuse(NOT_AUTHORIZED)
            return None
        incoming = self.session_for(connection, request)
        if not await self._authenticate(incoming, connection.listener_name):
            log.warning(
                "CONNECT refused: not authorized", extra={"client_id": incoming.client_id, "peer": connection.peer}
            )
            self._connects.labels("not_authorized").inc()
            connection.refuse(NOT_AUTHORIZED)
            return None
        if request.will_topic is not None and not await self._may_publish(incoming, request.will_topic):
            # A will is a message the client leaves for the broker to publish later: a will it may not
            # publish would reach another device's downlink with no PUBLISH check (docs/security.md).
            log.warning(
                "CONNECT refused: will topic not allowed",
                extra={"client_id": incoming.client_id, "peer": connection.peer},
            )
            self._connects.labels("will_not_allowed").inc()
            connection.refuse(NOT_AUTHORIZED)
            return None
        return incoming

    def _certificate_names_user(self, connection: Connection, username: str | None) -> bool:
        """On a mutual-TLS listener, the client certificate (already verified against the client CA in the
        handshake) must name the user logging in, by CN or subjectAltName: a device's certificate cannot
        log in as another device. True on other listeners."""
        tls = self._tls.get(connection.listener_name)
        if tls is None or not tls.requires_client_certificate:
            return True
        peercert = connection.transport.get_extra_info("peercert") if connection.transport else None
        names = certificate_names(peercert)
        if username is not None and username in names:
            return True
        log.warning(
            "CONNECT refused: client certificate does not name the user",
            extra={"client_id": username, "peer": connection.peer, "certificate_names": sorted(names)[:8]},
        )
        return False

    def session_for(self, connection: Connection, request: ConnectRequest) -> DeviceSession:
        """A new session carrying what the CONNECT says, for the auth plugins to judge."""
        incoming = DeviceSession(self._max_queued)
        incoming.client_id = request.client_id or gen_client_id()
        incoming.clean_session = request.clean_session
        incoming.will_flag = request.will_topic is not None
        incoming.will_topic = request.will_topic
        incoming.will_message = request.will_message
        incoming.will_qos = request.will_qos
        incoming.will_retain = request.will_retain
        incoming.username = request.username
        incoming.password = request.password
        incoming.remote_address, incoming.remote_port = connection.peer or (None, None)
        incoming.ssl_object = connection.transport.get_extra_info("ssl_object") if connection.transport else None
        incoming.keep_alive = request.keep_alive
        return incoming
