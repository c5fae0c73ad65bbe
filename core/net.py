"""Listening sockets, with a one-line error when a port is taken."""

from __future__ import annotations

import socket


class PortInUse(Exception):
    pass


def bind_listener(host: str, port: int, flag: str, *, reuse_port: bool = False) -> socket.socket:
    """Bind and listen on ``host:port``; ``flag`` names the option that changes it.

    ``reuse_port``: SO_REUSEPORT, so that sibling processes bind the same port and the kernel
    spreads new connections over them (``serve --workers``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise PortInUse(
            f"port {port} on {host} is not available ({exc.strerror}); choose another with {flag}"
        ) from None
    sock.set_inheritable(True)
    return sock


def ensure_port_free(host: str, port: int, flag: str) -> None:
    bind_listener(host, port, flag).close()
