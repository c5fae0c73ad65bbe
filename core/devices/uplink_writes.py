"""What a broker node writes for its devices' uplinks, in batches: each uplink's trace row, and MQTT heartbeats.

Measured one at a time, an MQTT heartbeat cost two transactions and 16
statements (its trace row; its UPDATE and a read of the device whose answer
nobody receives) and was nearly all of an idle fleet's database load
(docs/scaling.md). Here a node writes its uplinks' trace rows in one INSERT
and its heartbeats in one UPDATE at most every ``flush_after_s``; per device
only the newest heartbeat waits. An HTTP heartbeat, whose caller gets an
answer, is still written at once (``presence.record_heartbeat``).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from qris_soundbox.core.batching import Batch, BatchWriter
from qris_soundbox.core.db import Database
from qris_soundbox.core.devices import trace
from qris_soundbox.core.devices.schemas import Heartbeat
from qris_soundbox.core.ids import new_id


class UplinkWrites:
    def __init__(self, db: Database, flush_after_s: float = 0.1) -> None:
        self._db = db
        self._trace = BatchWriter[str, trace.TraceRow](
            self._write_trace, what="uplink trace", flush_after_s=flush_after_s
        )
        self._heartbeats = BatchWriter[str, Heartbeat](
            self._write_heartbeats, what="heartbeats", flush_after_s=flush_after_s
        )

    def trace_uplink(self, device_id: str, topic: str, payload: bytes, qos: int | None, at: datetime) -> None:
        self._trace.put(new_id("mqm"), trace.trace_row("uplink", device_id, topic, payload, qos), at)

    def heartbeat(self, device_id: str, heartbeat: Heartbeat, at: datetime) -> None:
        self._heartbeats.put(device_id, heartbeat, at)

    async def flush(self) -> bool:
        return all([await self._trace.flush(), await self._heartbeats.flush()])

    async def close(self) -> None:
        await self._trace.close()
        await self._heartbeats.close()

    async def _write_trace(self, batch: Batch[str, trace.TraceRow]) -> None:
        await trace.record_uplinks(self._db, batch)

    async def _write_heartbeats(self, batch: Batch[str, Heartbeat]) -> None:
        beats = [heartbeat for heartbeat, _ in batch.values()]
        await self._db.execute(
            "device_record_heartbeats",
            list(batch),
            [at for _, at in batch.values()],
            [beat.battery_level for beat in beats],
            [beat.network_strength for beat in beats],
            [beat.firmware_version for beat in beats],
            [{k: v for k, v in msgspec.to_builtins(beat).items() if v is not None} for beat in beats],
        )
