"""Access tokens and X-EXTERNAL-IDs in PostgreSQL: shared, hashed, bound, expiring, unique."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from qris_soundbox.core.snap import codes, external_ids, tokens


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def test_token_is_stored_hashed_and_bound_to_its_client(conn: asyncpg.Connection) -> None:
    token, expires_at = await tokens.issue(conn, "acquirer", "bank-a")
    rows = await conn.fetch("SELECT token_hash, expires_at - issued_at AS life FROM snap_access_tokens")
    assert [r["token_hash"] for r in rows] == [hashlib.sha256(token.encode()).digest()]
    assert rows[0]["life"].total_seconds() == pytest.approx(900, abs=1)
    assert token.encode() not in b"".join(r["token_hash"] for r in rows)
    await tokens.check(conn, token, "acquirer", "bank-a")
    for kind, client in (("acquirer", "bank-b"), ("partner", "bank-a")):
        with pytest.raises(codes.InvalidToken, match="another client"):
            await tokens.check(conn, token, kind, client)  # type: ignore[arg-type]
    with pytest.raises(codes.InvalidToken, match="unknown or expired"):
        await tokens.check(conn, token + "x", "acquirer", "bank-a")


async def test_expired_token_refused(conn: asyncpg.Connection) -> None:
    token, _ = await tokens.issue(conn, "acquirer", "bank-a")
    await conn.execute(
        "UPDATE snap_access_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        hashlib.sha256(token.encode()).digest(),
    )
    with pytest.raises(codes.InvalidToken):
        await tokens.check(conn, token, "acquirer", "bank-a")


def test_bearer_header() -> None:
    assert tokens.bearer("Bearer abc") == "abc"
    assert tokens.bearer("bearer  abc ") == "abc"
    for header in (None, "", "Basic abc", "Bearer ", "abc"):
        with pytest.raises(codes.InvalidToken):
            tokens.bearer(header)


async def test_external_id_unique_per_client_per_day(conn: asyncpg.Connection) -> None:
    await external_ids.claim(conn, "acquirer", "bank-a", "ext-1")
    with pytest.raises(codes.DuplicateExternalId):
        await external_ids.claim(conn, "acquirer", "bank-a", "ext-1")
    await external_ids.claim(conn, "acquirer", "bank-b", "ext-1")  # another partner may use it
    await external_ids.claim(conn, "partner", "bank-a", "ext-1")


def test_external_id_format() -> None:
    assert external_ids.check_format("abc-123") == "abc-123"
    with pytest.raises(codes.MissingMandatoryField):
        external_ids.check_format(None)
    for bad in ("x" * 65, "ünï", "a\nb"):
        with pytest.raises(codes.InvalidFieldFormat):
            external_ids.check_format(bad)


async def test_purge_takes_old_tokens_and_claims_a_bounded_batch_at_a_time(conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM snap_access_tokens")
    await conn.execute("DELETE FROM snap_external_ids")
    live, _ = await tokens.issue(conn, "acquirer", "bank-p")
    await conn.execute(
        "INSERT INTO snap_access_tokens (token_hash, client_kind, client_id, issued_at, expires_at)"
        " SELECT sha256(i::text::bytea), 'acquirer', 'bank-p', now() - interval '3 hours', now() - interval '2 hours'"
        " FROM generate_series(1, 5) i"
    )
    await external_ids.claim(conn, "acquirer", "bank-p", "today-1")
    await conn.execute(
        "INSERT INTO snap_external_ids (client_kind, client_id, day, external_id)"
        " SELECT 'acquirer', 'bank-p', (now() AT TIME ZONE 'Asia/Jakarta')::date - d, 'old-' || d"
        " FROM generate_series(1, 5) d"
    )
    # Three a run: the backlog goes over several runs, never in one long DELETE.
    assert await tokens.purge(conn, 3) == 3
    assert await tokens.purge(conn, 3) == 2
    assert await tokens.purge(conn, 3) == 0
    await tokens.check(conn, live, "acquirer", "bank-p")  # a live token stays
    # Yesterday's claims are kept (for investigation), older ones go, today's stay unique.
    assert await external_ids.purge(conn, 3) == 3
    assert await external_ids.purge(conn, 3) == 1
    left = await conn.fetch("SELECT external_id FROM snap_external_ids ORDER BY external_id")
    assert [r["external_id"] for r in left] == ["old-1", "today-1"]
    with pytest.raises(codes.DuplicateExternalId):
        await external_ids.claim(conn, "acquirer", "bank-p", "today-1")


def test_purge_and_poll_are_scheduled() -> None:
    from qris_soundbox.core.context import PlatformContext
    from qris_soundbox.core.jobs import scheduled_jobs
    from tests.support import settings_for_tests

    names = {job.name for job in scheduled_jobs(PlatformContext(settings_for_tests("postgresql://unused/x"), None))}  # type: ignore[arg-type]
    assert {"snap.purge", "acquirers.poll"} <= names
