"""Idempotency keys for sensitive writes (SPEC §3).

A key belongs to one caller (the principal, or a digest of the credentials on
a public route). The first request with a key *claims* it — one ``INSERT ...
ON CONFLICT`` committed on its own, before the write runs — and, once
answered, stores the exact response (status, headers, body bytes). Then:

- same key, same request (method, path, query, body) → the stored response,
  for ``IDEMPOTENCY_KEY_TTL_SECONDS`` (24 h);
- same key, another request → ``409 idempotency_key_reused``;
- same key while the first is still running → wait for its response (one
  poller per key and process, with a back-off; up to ``wait_s``), then
  ``409 idempotency_in_progress`` with Retry-After.

A claim is a *lease* of ``IDEMPOTENCY_LEASE_SECONDS`` (5 s) that its holder
renews while the request runs. A holder that stops renewing — killed, or cut
off from the database — lets it lapse, and a retry of the same request takes
the key over and runs the write. The trade: a holder that committed its write
and died before storing the answer has its write run again by the retry (as
without a key); a live holder renews every third of the lease, so it loses
the lease only when it cannot reach the database for a whole lease.

Only 2xx and 4xx answers are stored: after a 5xx the claim is released and a
retry runs the write again. Keys expire after ``IDEMPOTENCY_KEY_TTL_SECONDS``
(job ``idempotency.purge``). The HTTP side is ``control_plane/policies.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import msgspec

from qris_soundbox.core.db import Database
from qris_soundbox.core.errors import Conflict, ValidationFailed

KEY_MAX_LENGTH = 255
# A waiter's first read of a key in progress, and the longest gap between two.
POLL_FIRST_S = 0.05
POLL_MAX_S = 1.0

log = logging.getLogger(__name__)


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


class Claim(msgspec.Struct, frozen=True):
    """This request holds the key's lease: it runs, then ``finish`` or ``release``."""

    caller: str
    key: str
    holder: uuid.UUID


class IdempotencyKeys:
    """The key store of one process (on the platform context).

    Waiting: every request that finds a key in progress waits on one poller per
    key in this process, which reads the key with a back-off (``POLL_FIRST_S``
    growing to ``POLL_MAX_S``, never past the lease's expiry) — N concurrent
    retries cost the database one poller, not N loops."""

    def __init__(self, db: Database, *, ttl_s: int, lease_s: float) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.lease_s = lease_s
        self._pollers: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def begin(
        self, *, caller: str, key: str, request_fingerprint: str, method: str, path: str, wait_s: float
    ) -> Claim | StoredResponse:
        """A ``Claim``: this request runs. A ``StoredResponse``: the first answer, to replay."""
        deadline = time.monotonic() + wait_s
        holder = uuid.uuid4()
        while True:
            claimed = await self.db.fetchval(
                "claim_idempotency_key",
                caller,
                key,
                request_fingerprint,
                method,
                path,
                holder,
                self.lease_s,
                self.ttl_s,
            )
            if claimed is not None:
                return Claim(caller=caller, key=key, holder=holder)
            row = await self.db.fetchrow("idempotency_key", caller, key)
            if row is None:  # released (or purged) between the two statements: claim again
                continue
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
            if row["lease_left_s"] <= 0:  # lapsed a moment ago: the next claim takes it over
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise IdempotencyInProgress("a request with this Idempotency-Key is still being processed")
            # In progress: wait until it is answered, released or its lease lapses, or our deadline.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._poller(caller, key, row["lease_left_s"])), left)

    def _poller(self, caller: str, key: str, lease_left_s: float) -> asyncio.Task[None]:
        poller = self._pollers.get((caller, key))
        if poller is None or poller.done():
            poller = asyncio.create_task(self._poll(caller, key, lease_left_s))
            self._pollers[(caller, key)] = poller
            poller.add_done_callback(lambda _: self._pollers.pop((caller, key), None))
        return poller

    async def _poll(self, caller: str, key: str, lease_left_s: float) -> None:
        lapses = time.monotonic() + lease_left_s
        interval = POLL_FIRST_S
        while True:
            # Wake just after the lease would lapse, if that comes before the next regular read.
            await asyncio.sleep(max(0.0, min(interval, lapses - time.monotonic() + POLL_FIRST_S)))
            if await self.db.fetchval("idempotency_key_settled", caller, key):
                return
            interval = min(interval * 2, POLL_MAX_S)
            lapses = max(lapses, time.monotonic() + interval)  # renewed: the lease runs on

    @contextlib.asynccontextmanager
    async def leased(self, claim: Claim) -> AsyncIterator[None]:
        """Renew ``claim``'s lease every third of it while the block runs."""
        renewer = asyncio.create_task(self._renew(claim))
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _renew(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                renewed = await self.db.fetchval(
                    "renew_idempotency_lease", claim.caller, claim.key, claim.holder, self.lease_s
                )
            except (OSError, asyncpg.PostgresError) as error:
                # The next renewal tries again; if none gets through, the lease lapses and a retry takes over.
                log.warning("idempotency lease not renewed", extra={"error": type(error).__name__})
                continue
            if renewed is None:
                log.warning("idempotency lease lost to a retry", extra={"path_key": claim.key[:64]})
                return

    async def finish(self, claim: Claim, response: StoredResponse) -> None:
        await self.db.execute(
            "complete_idempotency_key",
            claim.caller,
            claim.key,
            claim.holder,
            response.status,
            [list(h) for h in response.headers],
            response.body,
        )

    async def release(self, claim: Claim) -> None:
        await self.db.execute("release_idempotency_key", claim.caller, claim.key, claim.holder)


async def purge(db: Database) -> str:
    return await db.execute("purge_idempotency_keys")
