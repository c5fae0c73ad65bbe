"""One device with a large backlog must not make every device's count scan the outbox.

The HTTP heartbeat's answer counts the device's open downlinks in a
correlated subquery (``device_heartbeat_states``). With few devices in
``device_outbox`` and one holding thousands of open rows, the planner used to
expect thousands of rows for any device and scanned the whole table once per
device: 10 ms per device with 34,000 rows (docs/performance.md). Migration
081 tells it a device has few rows.
"""

from __future__ import annotations

from qris_soundbox.core.db import QUERIES
from qris_soundbox.core.ids import ID_PATTERN
from tests.devices.helpers import register_device
from tests.support import RunningPlatform


def plan_nodes(plan: dict) -> list[dict]:
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


async def test_a_devices_open_downlinks_are_counted_through_the_index_beside_a_large_backlog(
    running: RunningPlatform,
) -> None:
    busy, quiet = await register_device(running), await register_device(running)
    pool = running.platform.db.pool
    await pool.execute(
        "INSERT INTO device_outbox (id, message_id, device_id, kind, topic, payload, expires_at)"
        " SELECT 'obx_backlog' || g, 'msg_backlog' || g, $1, 'payment', 't', '{}'::jsonb, now() + interval '1 day'"
        " FROM generate_series(1, 30000) AS g",
        busy["id"],
    )
    async with pool.acquire() as conn:
        await conn.execute("ANALYZE device_outbox")
        # As a prepared statement is run after a few calls: one plan for any device ids.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        try:
            statement = await conn.prepare(QUERIES["device_heartbeat_states"])
            rows = await statement.fetch([quiet["id"]])
            assert ID_PATTERN.fullmatch(quiet["id"])  # safe to write into the EXPLAIN below
            explained = await conn.fetchval(
                f"EXPLAIN (FORMAT JSON) EXECUTE {statement.get_name()}(ARRAY['{quiet['id']}'])"
            )
        finally:
            await conn.execute("RESET plan_cache_mode")
    assert [row["pending_acks"] for row in rows] == [0]
    nodes = plan_nodes(explained[0]["Plan"])  # json comes decoded (core.db)
    outbox_scans = [node["Node Type"] for node in nodes if node.get("Relation Name") == "device_outbox"]
    assert outbox_scans and "Seq Scan" not in outbox_scans, outbox_scans
