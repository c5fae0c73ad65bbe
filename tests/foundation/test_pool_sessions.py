"""The pool hands connections back without asyncpg's reset query (``core.db._keep_session``):
that is only right while nothing leaves session state on a pooled connection.

After a real workload (device changes heard by the LISTEN connection, a paid
callback announced through the outbox publisher, its NOTIFY, the expiry
sweep), every idle connection of the platform's pool must listen to nothing,
hold no advisory lock, no open cursor and no changed setting. (asyncpg itself
turns ``jit`` off and back on around its type introspection: a setting put back
to its reset value is not a change.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from tests.devices.helpers import first_message
from tests.payments.helpers import callback_body, post_callback
from tests.payments.test_announcements import bound_soundbox, subscribed
from tests.support import RunningPlatform

SESSION_STATE = """
SELECT (SELECT count(*) FROM pg_listening_channels()) AS listening,
       (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks,
       (SELECT count(*) FROM pg_cursors WHERE name <> '') AS cursors,
       (SELECT count(*) FROM pg_settings WHERE source = 'session' AND setting IS DISTINCT FROM reset_val) AS session_settings
"""


@asynccontextmanager
async def idle_connections(pool: asyncpg.Pool) -> AsyncIterator[list[asyncpg.pool.PoolConnectionProxy]]:
    """Every connection the pool can lend now, each once (all held until the block ends)."""
    held = []
    try:
        while pool.get_idle_size() > 0:
            held.append(await asyncio.wait_for(pool.acquire(), 5))
        yield held
    finally:
        for conn in held:
            await pool.release(conn)


async def idle_session_states(pool: asyncpg.Pool) -> list[dict[str, int]]:
    async with idle_connections(pool) as held:
        return [dict(await conn.fetchrow(SESSION_STATE)) for conn in held]


async def test_no_session_state_is_left_on_pooled_connections(running: RunningPlatform) -> None:
    platform = running.platform
    ids, device_id, secret = await bound_soundbox(running)
    async with running.mqtt(device_id, secret) as device:
        await subscribed(device, device_id)
        paid = await post_callback(running, callback_body(amount=12_000, terminal_id=ids["terminal_id"]))
        assert paid.status_code == 200, paid.text
        assert await first_message(device, timeout=5) is not None
    rotated = await running.http.post(f"/admin/devices/{device_id}/credentials/rotate", headers=running.admin_headers)
    assert rotated.status_code == 200, rotated.text
    expired = await running.http.post("/admin/transactions/expire-due", headers=running.admin_headers)
    assert expired.status_code == 200, expired.text

    states = await idle_session_states(platform.db.pool)
    assert states, "the pool lent no idle connection to check"
    assert all(
        state == {"listening": 0, "advisory_locks": 0, "cursors": 0, "session_settings": 0} for state in states
    ), states


async def test_the_check_sees_state_a_caller_leaves_behind(running: RunningPlatform) -> None:
    """The same check on the same pool finds a LISTEN and a SET left on a released connection:
    the reset really is gone, so the test above can fail."""
    pool = running.platform.db.pool
    async with pool.acquire() as conn:
        await conn.execute("LISTEN test_leftover; SET application_name = 'leftover'")
    try:
        states = await idle_session_states(pool)
        assert any(state["listening"] == 1 and state["session_settings"] >= 1 for state in states), states
    finally:
        async with idle_connections(pool) as held:
            for conn in held:
                await conn.execute("UNLISTEN *; RESET ALL")
