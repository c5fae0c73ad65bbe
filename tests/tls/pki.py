"""Certificates made in the test: a CA of our own (``trustme``), the files the broker and devices are given."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

SERVER_NAMES = ("localhost", "127.0.0.1")


class Pki:
    """A test CA and a directory holding the PEM files made from it."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.directory = directory
        self.name = name
        self.ca = trustme.CA(organization_name=f"QRIS soundbox test {name}")
        self.ca_file = directory / f"{name}.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def server_files(self, stem: str = "server", *, expired: bool = False) -> tuple[Path, Path]:
        """A server certificate (chain) and key for 127.0.0.1/localhost, written to ``<stem>.crt``/``.key``."""
        when = {}
        if expired:
            now = datetime.now(UTC)
            when = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
        return self._write(self.ca.issue_cert(*SERVER_NAMES, **when), stem)

    def device_files(self, device_id: str) -> tuple[Path, Path]:
        """A device's client certificate naming it in its CN (device ids are not DNS names)."""
        return self._write(self.ca.issue_cert("device.invalid", common_name=device_id), f"device-{device_id}")

    def _write(self, leaf: trustme.LeafCert, stem: str) -> tuple[Path, Path]:
        cert, key = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        leaf.private_key_pem.write_to_path(str(key))
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        return cert, key


def client_context(cafile: Path | None, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """What a device builds: trust ``cafile`` (verifying the name too), present ``cert`` if given."""
    context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context
