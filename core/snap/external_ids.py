"""``X-EXTERNAL-ID``: unique per partner per day, enforced by a primary key so several nodes agree.

Claim it in the same transaction as the write it protects: a notification
refused before anything is written leaves its id unused, one applied keeps it.
"""

from __future__ import annotations

from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.snap.codes import DuplicateExternalId, InvalidFieldFormat, MissingMandatoryField
from qris_soundbox.core.snap.tokens import ClientKind

MAX_LENGTH = 64


def check_format(external_id: str | None) -> str:
    if not external_id:
        raise MissingMandatoryField("X-EXTERNAL-ID is required")
    if len(external_id) > MAX_LENGTH or not external_id.isascii() or not external_id.isprintable():
        raise InvalidFieldFormat(f"X-EXTERNAL-ID must be at most {MAX_LENGTH} printable ASCII characters")
    return external_id


async def claim(conn: Connection, kind: ClientKind, client_id: str, external_id: str) -> None:
    """``DuplicateExternalId`` when this client already used ``external_id`` today (WIB)."""
    if await conn.fetchval(QUERIES["claim_snap_external_id"], kind, client_id, external_id) is None:
        raise DuplicateExternalId(f"X-EXTERNAL-ID {external_id} was already used today")


async def purge(conn: Connection, limit: int) -> int:
    """At most ``limit`` rows no longer needed; how many went (job ``snap.purge``, core/jobs.py)."""
    return int((await conn.execute(QUERIES["purge_snap_external_ids"], limit)).split()[-1])


async def release(conn: Connection, kind: ClientKind, client_id: str, external_id: str) -> None:
    """Undo a claim whose request was then refused, so the sender may retry with the same id."""
    await conn.execute(QUERIES["release_snap_external_id"], kind, client_id, external_id)
