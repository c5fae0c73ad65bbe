"""The fee split keeps every rupiah: fee + payable = gross, fee rounded half up.

The split is the database's (``payment_fee`` in sql/migrations/080, used by
``payment_transition`` for the ledger rows), so it is checked there.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import asyncpg
import pytest


@pytest.fixture(scope="module")
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def fees(conn: asyncpg.Connection, pairs: list[tuple[int, int]]) -> list[int]:
    rows = await conn.fetch(
        "SELECT payment_fee(g, b) AS fee FROM unnest($1::bigint[], $2::int[]) WITH ORDINALITY AS x(g, b, n) ORDER BY n",
        [g for g, _ in pairs],
        [b for _, b in pairs],
    )
    return [row["fee"] for row in rows]


async def test_fee_is_within_half_a_rupiah_and_never_more_than_gross(conn: asyncpg.Connection) -> None:
    rng = random.Random(17)
    pairs = [(0, 0), (10**13, 10_000), (10**13, 1), (1, 5_000), (1, 4_999)]
    pairs += [(rng.randint(0, 10**13), rng.randint(0, 10_000)) for _ in range(5_000)]
    for (gross, bps), fee in zip(pairs, await fees(conn, pairs), strict=True):
        assert 0 <= fee <= gross
        # Within half a rupiah of the exact fee, and half up: 2 × (fee − exact) ∈ (−1, 1].
        assert -10_000 < 2 * (fee * 10_000 - gross * bps) <= 10_000


async def test_rounding_examples(conn: asyncpg.Connection) -> None:
    assert await fees(conn, [(25_000, 70), (1_000, 70), (1_500, 70), (1_499, 70), (10_000, 0), (10_000, 10_000)]) == [
        175,
        7,
        11,  # 10.5 rounds half up
        10,  # 10.493
        0,
        10_000,
    ]
