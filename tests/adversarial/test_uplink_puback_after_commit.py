"""A device's PUBACK for its payment ack means the ack is in the database.

The HAProxy test (tests/scaling/test_haproxy_nodes.py) heard a payment again after its ack was
PUBACKed, about one run in three: the node PUBACKed the ack uplink before its handler had written
it, was SIGKILLed in between, and the surviving node rightly sent the still-open announcement again
to a device that, holding its PUBACK, would never ack it a second time. Here the ack's UPDATE is
held on a row lock the test takes: the PUBACK must wait for it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import msgspec

from qris_soundbox.core import outbox
from tests.broker.raw_client import WAIT_S
from tests.devices.helpers import eventually, provisioned_device
from tests.support import RunningPlatform


async def _ack_waits_on_the_lock(running: RunningPlatform) -> bool:
    # The uplink handler's UPDATE of the locked row, waiting for the test's transaction.
    return bool(
        await running.platform.db.pool.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE wait_event_type = 'Lock' AND query LIKE '%UPDATE device_outbox SET status = ''acked''%'
                 AND datname = current_database()"""
        )
    )


async def test_a_payment_ack_is_pubacked_only_once_it_is_committed(running: RunningPlatform) -> None:
    device_id, secret = await provisioned_device(running)
    async with running.platform.db.transaction() as conn:
        message_id = await outbox.enqueue(
            conn,
            device_id=device_id,
            kind="payment",
            body={"transaction_id": "txn_puback_order", "amount": 10_000},
            expires_at=datetime.now(UTC) + timedelta(minutes=5),
        )
    row_id = await running.platform.db.pool.fetchval("SELECT id FROM device_outbox WHERE message_id = $1", message_id)
    async with running.mqtt(device_id, secret) as client:
        lock = await running.platform.db.pool.acquire()
        transaction = lock.transaction()
        await transaction.start()
        try:
            await lock.execute("SELECT 1 FROM device_outbox WHERE id = $1 FOR UPDATE", row_id)
            ack = asyncio.create_task(
                client.publish(
                    f"devices/{device_id}/uplink/payment/ack",
                    msgspec.json.encode({"message_id": message_id}),
                    qos=1,
                    timeout=WAIT_S,
                )
            )
            assert await eventually(lambda: _ack_waits_on_the_lock(running), WAIT_S), "the ack never ran"
            # The PUBACK used to be written before the handler even started: by now it would have arrived.
            assert not ack.done(), "PUBACKed while the ack was not yet written"
        finally:
            await transaction.rollback()
            await running.platform.db.pool.release(lock)
        await asyncio.wait_for(ack, WAIT_S)
        status = await running.platform.db.pool.fetchval("SELECT status FROM device_outbox WHERE id = $1", row_id)
        assert status == "acked"
