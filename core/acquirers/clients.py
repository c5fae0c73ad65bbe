"""The SNAP clients of one process, one per acquirer (``PlatformContext.acquirer_clients``).

A client keeps what must outlive a call: its B2B token, its circuit breaker, its HTTP
connection pool. It is built from the acquirer's registry row (secrets opened with
``SECRETS_ENCRYPTION_KEY``) and rebuilt when that row changed (``updated_at``), so an
operator's edit takes effect on the next call without a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from qris_soundbox.core.acquirers.errors import AcquirerNotUsable
from qris_soundbox.core.acquirers.service import acquirer_row
from qris_soundbox.core.acquirers.snap_out import CircuitBreaker, SnapClient
from qris_soundbox.core.config import Settings
from qris_soundbox.core.db import Connection
from qris_soundbox.core.secrets import SecretBox

if TYPE_CHECKING:
    from qris_soundbox.core.metrics import Metrics


class AcquirerClients:
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self._settings = settings
        self._metrics = metrics
        self._clients: dict[str, tuple[datetime, SnapClient]] = {}

    async def client(self, conn: Connection, code: str, updated_at: datetime | None = None) -> SnapClient:
        """The client of acquirer ``code``; ``updated_at`` (when the caller read it already) saves a read."""
        known = self._clients.get(code)
        if known is not None and updated_at is not None and known[0] == updated_at:
            return known[1]
        row = await acquirer_row(conn, code)
        if known is not None and known[0] == row["updated_at"]:
            return known[1]
        client = self._build(row)
        if known is not None:
            # The breaker's memory is the endpoint's: an edit of the acquirer's other settings does not close an
            # open circuit, a new base_url (the operator moved it) starts with a closed one.
            if known[1].base_url == client.base_url:
                client.breaker = known[1].breaker
            await known[1].aclose()
        self._clients[code] = (row["updated_at"], client)
        return client

    def _build(self, row: asyncpg.Record) -> SnapClient:
        settings = row["settings"]
        code = row["code"]
        if row["protocol"] != "snap":
            raise AcquirerNotUsable(f"acquirer {code} speaks {row['protocol']}, not SNAP", details={"code": code})
        secrets = SecretBox.of(self._settings).open(row["secrets"])
        missing = [name for name in ("base_url",) if name not in settings] + [
            name for name in ("client_secret", "private_key_pem") if name not in secrets
        ]
        if missing:
            raise AcquirerNotUsable(
                f"acquirer {code} cannot be called: settings {', '.join(missing)} are not set",
                details={"code": code, "missing": missing},
            )
        return SnapClient(
            code=code,
            base_url=settings["base_url"],
            client_key=settings["client_key"],
            client_secret=secrets["client_secret"],
            private_key_pem=secrets["private_key_pem"],
            public_key_pem=settings.get("public_key_pem"),
            answer_signature=settings.get("answer_signature", "optional"),
            channel_id=settings.get("channel_id", "95221"),
            timeout_s=self._settings.acquirer_call_timeout_seconds,
            breaker=CircuitBreaker(
                self._settings.acquirer_circuit_failures, self._settings.acquirer_circuit_open_seconds
            ),
            metrics=self._metrics,
        )

    async def aclose(self) -> None:
        for _, client in self._clients.values():
            await client.aclose()
        self._clients.clear()
