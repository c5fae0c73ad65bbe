"""MQTT over TLS: the listener's SSL context, its reload, and the device identity a client certificate carries.

- TLS 1.2 at least; the server's certificate chain and key from files (PEM).
  A key protected by a passphrase is refused at start rather than prompting on
  the terminal.
- With a client CA file, every client must present a certificate signed by it
  (mutual TLS); ``PlatformBroker`` then checks at CONNECT that the
  certificate names the device the client logs in as (``certificate_names``).
- Reload without dropping anyone: the listener's context only chooses, at
  each handshake (its SNI callback, called with or without a server name), the
  context built from the files last loaded. Connections already made keep the
  TLS session they negotiated; new handshakes see the new certificate. A
  reload that fails (missing file, key not matching) leaves the served
  context as it was.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


class TlsConfigError(Exception):
    """The certificate, key or client CA cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    certfile: str
    """The server's certificate chain (PEM: the certificate, then any intermediates)."""
    keyfile: str
    """Its private key (PEM, not passphrase-protected)."""
    client_cafile: str | None = None
    """CA(s) that sign device certificates; given, a client certificate is required (mutual TLS)."""


def _no_passphrase() -> str:
    raise TlsConfigError("the key is passphrase-protected; give an unencrypted key file (mode 600)")


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A server context for ``files``; raises ``TlsConfigError`` naming what cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    try:
        context.load_cert_chain(files.certfile, files.keyfile, password=_no_passphrase)
    except TlsConfigError as exc:
        raise TlsConfigError(f"{files.keyfile}: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot use certificate {files.certfile} with key {files.keyfile}: {exc.strerror or exc}"
        ) from None
    if files.client_cafile is not None:
        try:
            context.load_verify_locations(cafile=files.client_cafile)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot use client CA file {files.client_cafile}: {exc.strerror or exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class ReloadableContext:
    """The context a TLS listener serves with; ``reload`` swaps the certificate for new handshakes only."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._current = server_context(files)
        # Handed to the server once; it switches each new handshake to the current context.
        self.listener_context = server_context(files)
        self.listener_context.sni_callback = self._choose
        self.reloads = 0

    @property
    def requires_client_certificate(self) -> bool:
        return self.files.client_cafile is not None

    def _choose(self, ssl_object: Any, _server_name: str | None, _context: ssl.SSLContext) -> None:
        ssl_object.context = self._current

    async def reload(self) -> None:
        """Read the files again (in a thread: file reads and key parsing stay off the event loop).
        Raises ``TlsConfigError`` and keeps serving the previous certificate if they cannot be used."""
        self._current = await asyncio.to_thread(server_context, self.files)
        self.reloads += 1


def certificate_names(peercert: dict[str, Any] | None) -> set[str]:
    """The names a verified client certificate gives its holder: subject CN and DNS/URI subjectAltNames."""
    if not peercert:
        return set()
    names = {value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"}
    names.update(value for kind, value in peercert.get("subjectAltName", ()) if kind in ("DNS", "URI"))
    return names
