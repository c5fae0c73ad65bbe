"""The device health summary shown in the registry (``health_summary``).

A score out of 100 with the reasons that lowered it; the rules are documented
in docs/devices.md. Pure: the registry gathers the inputs, this decides.

Pending acknowledgements are the device's unacknowledged downlinks in the
outbox, which carries every downlink that needs an ack (payments, config,
commands); ``PENDING_ACK_SOURCES`` can take other counters (the answer to an
HTTP heartbeat counts the outbox in its one read, ``device_heartbeat_states``:
a new source belongs there too).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from qris_soundbox.core import outbox
from qris_soundbox.core.db import Connection
from qris_soundbox.core.devices.schemas import HealthSummary

# Devices are asked to send a heartbeat every minute; three missed ones make it stale.
HEARTBEAT_INTERVAL_S = 60
HEARTBEAT_STALE_S = 3 * HEARTBEAT_INTERVAL_S

PENALTIES = {
    "offline": 50,
    "never_heartbeat": 30,
    "heartbeat_stale": 30,
    "battery_critical": 30,  # < 10 %
    "battery_low": 15,  # < 20 %
    "signal_very_weak": 25,  # < 15 %
    "signal_weak": 10,  # < 30 %
    "pending_acks": 5,  # per pending ack, at most 20
}
MAX_PENDING_ACK_PENALTY = 20

# (conn, device ids) -> {device id: downlinks still waiting for the device's ack}
PendingAckCounter = Callable[[Connection, list[str]], Awaitable[dict[str, int]]]
PENDING_ACK_SOURCES: list[PendingAckCounter] = [outbox.unacked_counts]


async def pending_acks(conn: Connection, device_ids: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for source in PENDING_ACK_SOURCES:
        for device_id, count in (await source(conn, device_ids)).items():
            totals[device_id] = totals.get(device_id, 0) + count
    return totals


def health_summary(
    *,
    status: str,
    has_credential: bool,
    online: bool,
    last_seen_at: datetime | None,
    last_heartbeat_at: datetime | None,
    battery_level: int | None,
    network_strength: int | None,
    pending_acks: int,
    now: datetime,
) -> HealthSummary:
    age = int((now - last_seen_at).total_seconds()) if last_seen_at else None
    age = max(age, 0) if age is not None else None
    if status in ("disabled", "retired"):
        return HealthSummary(status=status, score=0, age_seconds=age, reasons=[f"device_{status}"])
    if status == "registered" or not has_credential:
        return HealthSummary(status="unprovisioned", score=0, age_seconds=age, reasons=["no_credential"])

    reasons: list[str] = []
    if not online:
        reasons.append("offline")
    if last_heartbeat_at is None:
        reasons.append("never_heartbeat")
    elif (now - last_heartbeat_at).total_seconds() > HEARTBEAT_STALE_S:
        reasons.append("heartbeat_stale")
    if battery_level is not None:
        if battery_level < 10:
            reasons.append("battery_critical")
        elif battery_level < 20:
            reasons.append("battery_low")
    if network_strength is not None:
        if network_strength < 15:
            reasons.append("signal_very_weak")
        elif network_strength < 30:
            reasons.append("signal_weak")
    penalty = sum(PENALTIES[reason] for reason in reasons)
    if pending_acks > 0:
        reasons.append("pending_acks")
        penalty += min(pending_acks * PENALTIES["pending_acks"], MAX_PENDING_ACK_PENALTY)
    score = max(0, 100 - penalty)
    if not online:
        label = "offline"
    elif score >= 80:
        label = "healthy"
    elif score >= 50:
        label = "degraded"
    else:
        label = "critical"
    return HealthSummary(status=label, score=score, age_seconds=age, reasons=reasons)
