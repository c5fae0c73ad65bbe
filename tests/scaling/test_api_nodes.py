"""Several API nodes on one database: with ``RATE_LIMIT_STORE=postgres`` a limit holds across them."""

from __future__ import annotations

from qris_soundbox.core import ratelimit
from tests.support import PlatformFactory

DAY_MS = 86_400_000
LIMIT = 4


async def failed_logins(nodes: list, attempts: int, email: str) -> list[int]:
    statuses = []
    for attempt in range(attempts):
        node = nodes[attempt % len(nodes)]
        response = await node.http.post("/admin/login", json={"email": email, "password": "wrong password"})
        statuses.append(response.status_code)
    return statuses


async def test_a_login_limit_of_n_allows_n_attempts_in_total_across_two_api_nodes(
    platform_factory: PlatformFactory,
) -> None:
    nodes = [
        # Shared windows are aligned on the epoch: a day-long one is not crossed while the test runs.
        await platform_factory.start(
            frozenset({"api"}),
            rate_limit_store="postgres",
            rate_limit_login_max=LIMIT,
            rate_limit_login_window_ms=DAY_MS,
        )
        for _ in range(2)
    ]
    statuses = await failed_logins(nodes, 2 * LIMIT, "spray@example.com")
    assert statuses == [401] * LIMIT + [429] * LIMIT
    refused = await nodes[1].http.post("/admin/login", json={"email": "spray@example.com", "password": "x" * 12})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    # Finished windows are forgotten by the worker's job; the current one stays.
    await ratelimit.purge_shared_counts(nodes[0].platform.db)
    assert await nodes[0].platform.db.pool.fetchval("SELECT count(*) FROM rate_limit_counts") >= 2


async def test_in_memory_each_api_node_counts_its_own_share(platform_factory: PlatformFactory) -> None:
    # The per-account backoff is shared through PostgreSQL whatever the store: off here (free failures
    # above the attempts) so only the windows are counted.
    nodes = [
        await platform_factory.start(frozenset({"api"}), rate_limit_login_max=LIMIT, login_backoff_free_failures=100)
        for _ in range(2)
    ]
    statuses = await failed_logins(nodes, 2 * LIMIT, "alone@example.com")
    assert statuses == [401] * (2 * LIMIT)
