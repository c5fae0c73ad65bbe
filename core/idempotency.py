"""Idempotency keys for sensitive writes (SPEC §3).

A key belongs to one caller (the principal, or a digest of the credentials on
a public route). The first request with a key *claims* it — ``INSERT ... ON
CONFLICT DO NOTHING`` committed on its own, before the write runs — and, once
answered, stores the exact response (status, headers, body bytes). Then:

- same key, same request (method, path, query, body) → the stored response;
- same key, another request → ``409 idempotency_key_reused``;
- same key while the first is still running → wait for its response (polling,
  up to ``wait_s``), then ``409 idempotency_in_progress`` with Retry-After.

Only 2xx and 4xx answers are stored: after a 5xx the claim is released and a
retry runs the write again. Keys expire after ``IDEMPOTENCY_KEY_TTL_SECONDS``
(job ``idempotency.purge``). The HTTP side is ``control_plane/policies.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import msgspec

from qris_soundbox.core.db import Database
from qris_soundbox.core.errors import Conflict, ValidationFailed

KEY_MAX_LENGTH = 255
POLL_INTERVAL_S = 0.05


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoredResponse(msgspec.Struct, kw_only=True):
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def check_key(key: str) -> str:
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not key.isprintable() or not key.isascii():
        raise ValidationFailed(
            f"Idempotency-Key: 1 to {KEY_MAX_LENGTH} printable ASCII characters", details={"header": "Idempotency-Key"}
        )
    return key


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What "the same request" means. A JSON body is compared by value (key order
    and whitespace do not matter); anything else byte for byte."""
    try:
        canonical = msgspec.json.encode(msgspec.json.decode(body), order="sorted") if body else b""
    except msgspec.DecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def storable(status: int) -> bool:
    return 200 <= status < 500


async def begin(
    db: Database,
    *,
    caller: str,
    key: str,
    request_fingerprint: str,
    method: str,
    path: str,
    ttl_s: int,
    wait_s: float,
) -> StoredResponse | None:
    """None: this request claimed the key and must run, then ``finish`` or ``release``.
    A ``StoredResponse``: the first answer, to replay."""
    deadline = time.monotonic() + wait_s
    while True:
        if await db.fetchval("claim_idempotency_key", caller, key, request_fingerprint, method, path, ttl_s):
            return None
        row = await db.fetchrow("idempotency_key", caller, key)
        if row is not None and row["expired"]:
            await db.execute("delete_expired_idempotency_key", caller, key)
            continue
        if row is not None:
            if row["fingerprint"] != request_fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for another request",
                    details={"first_request": {"method": row["method"], "path": row["path"]}},
                )
            if row["state"] == "completed":
                return StoredResponse(
                    status=row["response_status"],
                    headers=[tuple(h) for h in row["response_headers"]],
                    body=bytes(row["response_body"]),
                )
        # In progress (or released a moment ago): wait for the first request's answer.
        if time.monotonic() >= deadline:
            raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed")
        await asyncio.sleep(POLL_INTERVAL_S)


async def finish(db: Database, *, caller: str, key: str, response: StoredResponse) -> None:
    await db.execute(
        "complete_idempotency_key", caller, key, response.status, [list(h) for h in response.headers], response.body
    )


async def release(db: Database, *, caller: str, key: str) -> None:
    await db.execute("release_idempotency_key", caller, key)


async def purge(db: Database) -> str:
    return await db.execute("purge_idempotency_keys")
