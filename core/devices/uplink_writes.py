"""What a broker node writes for its devices' uplinks, in batches: each uplink's trace row, and MQTT heartbeats.

Measured one at a time, an MQTT heartbeat cost two transactions and 16
statements (its trace row; its UPDATE and a read of the device whose answer
nobody receives) and was nearly all of an idle fleet's database load
(docs/scaling.md). Here a node writes its uplinks' trace rows in one INSERT
and its heartbeats in one UPDATE, in one transaction, at most every ``flush_after_s``; per device
only the newest heartbeat waits. HTTP heartbeats join the same batches
(``presence.record_heartbeat`` answers from a read of the device's state).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from qris_soundbox.core.batching import Batch, BatchWriter
from qris_soundbox.core.db import QUERIES, Connection, Database
from qris_soundbox.core.devices import trace
from qris_soundbox.core.devices.schemas import Heartbeat
from qris_soundbox.core.ids import new_id

Pending = trace.TraceRow | Heartbeat


class UplinkWrites:
    """One writer for both, so a flush is one pooled connection and one transaction, not two."""

    def __init__(self, db: Database, flush_after_s: float = 0.1) -> None:
        self._db = db
        # Keys: ("trace", row id) for a trace row, ("heartbeat", device id) for a device's newest heartbeat.
        self._writer = BatchWriter[tuple[str, str], Pending](self._write, what="uplinks", flush_after_s=flush_after_s)

    def trace_uplink(self, device_id: str, topic: str, payload: bytes, qos: int | None, at: datetime) -> None:
        self._writer.put(("trace", new_id("mqm")), trace.trace_row("uplink", device_id, topic, payload, qos), at)

    def heartbeat(self, device_id: str, heartbeat: Heartbeat, at: datetime) -> None:
        self._writer.put(("heartbeat", device_id), heartbeat, at)

    async def flush(self) -> bool:
        return await self._writer.flush()

    async def close(self) -> None:
        await self._writer.close()

    async def _write(self, batch: Batch[tuple[str, str], Pending]) -> None:
        rows: Batch[str, trace.TraceRow] = {}
        beats: Batch[str, Heartbeat] = {}
        for (_, key), (value, at) in batch.items():
            if isinstance(value, Heartbeat):
                beats[key] = (value, at)
            else:
                rows[key] = (value, at)
        async with self._db.transaction() as conn:
            if rows:
                await trace.record_rows(conn, rows)
            if beats:
                await self._write_heartbeats(conn, beats)

    @staticmethod
    async def _write_heartbeats(conn: Connection, batch: Batch[str, Heartbeat]) -> None:
        beats = [heartbeat for heartbeat, _ in batch.values()]
        await conn.execute(
            QUERIES["device_record_heartbeats"],
            list(batch),
            [at for _, at in batch.values()],
            [beat.battery_level for beat in beats],
            [beat.network_strength for beat in beats],
            [beat.firmware_version for beat in beats],
            [{k: v for k, v in msgspec.to_builtins(beat).items() if v is not None} for beat in beats],
        )
