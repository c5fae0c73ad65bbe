"""Listening sockets bound before anything starts, so that a busy port stops start-up with a sentence."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import NamedTuple

# What changes the two ports `make run` listens on, named in the refusal (README's first hour).
HTTP_PORT_FLAG = "--http-port (or PORT; make run PORT=...)"
MQTT_PORT_FLAG = "--mqtt-port (or MQTT_PORT; make run MQTT_PORT=...)"


class PortInUse(Exception):
    pass


class Wanted(NamedTuple):
    """A port to listen on; ``flag`` names the options (and make variables) that change it."""

    host: str
    port: int
    flag: str
    reuse_port: bool = False


def _bind(wanted: Wanted) -> socket.socket:
    family = socket.AF_INET6 if ":" in wanted.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if wanted.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((wanted.host, wanted.port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def bind_listeners(wanted: Sequence[Wanted]) -> list[socket.socket]:
    """Bind and listen on every wanted port, in order.

    Every port is tried before anything is refused: a second server on the default ports hears of all the
    ports it shares with the first at once, not one per attempt. On a refusal nothing stays bound.
    ``reuse_port``: SO_REUSEPORT, so that sibling processes bind the same port and the kernel spreads new
    connections over them (``serve --workers``)."""
    bound: list[socket.socket] = []
    busy: list[str] = []
    for item in wanted:
        try:
            bound.append(_bind(item))
        except OSError as exc:
            busy.append(
                f"port {item.port} on {item.host} is not available ({exc.strerror}); choose another with {item.flag}"
            )
    if busy:
        for sock in bound:
            sock.close()
        raise PortInUse("\n  ".join(busy))
    return bound


def bind_listener(host: str, port: int, flag: str, *, reuse_port: bool = False) -> socket.socket:
    return bind_listeners([Wanted(host, port, flag, reuse_port)])[0]


def ensure_ports_free(wanted: Sequence[Wanted]) -> None:
    for sock in bind_listeners(wanted):
        sock.close()
