"""B2B access tokens (SNAP service 73) kept in PostgreSQL, so every API node accepts every node's tokens.

A token is 32 random bytes (URL-safe Base64); only its SHA-256 is stored, so
reading the table gives no usable token. Lookup is by that hash (an index
equality on a hash of a secret leaks nothing useful about the secret); the
holder is then compared with the client presenting it in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Literal

from qris_soundbox.core.db import QUERIES, Connection
from qris_soundbox.core.snap.codes import InvalidToken

LIFETIME_S = 900
ClientKind = Literal["acquirer", "partner"]


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def issue(conn: Connection, kind: ClientKind, client_id: str) -> tuple[str, datetime]:
    """A new token for ``client_id`` and when it expires."""
    token = secrets.token_urlsafe(32)
    expires_at = await conn.fetchval(QUERIES["issue_snap_token"], _hash(token), kind, client_id, LIFETIME_S)
    return token, expires_at


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; ``InvalidToken`` without one."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("Authorization: Bearer <access token> is required")
    return token.strip()


async def check(conn: Connection, token: str, kind: ClientKind, client_id: str) -> None:
    """``InvalidToken`` unless ``token`` is live and was issued to this very client."""
    holder = await conn.fetchrow(QUERIES["snap_token_holder"], _hash(token))
    if holder is None:
        raise InvalidToken("the access token is unknown or expired")
    same = hmac.compare_digest(holder["client_kind"].encode(), kind.encode()) & hmac.compare_digest(
        holder["client_id"].encode(), client_id.encode()
    )
    if not same:
        raise InvalidToken("the access token was issued to another client")


async def purge(conn: Connection, limit: int) -> int:
    """At most ``limit`` rows no longer needed; how many went (job ``snap.purge``, core/jobs.py)."""
    return int((await conn.execute(QUERIES["purge_snap_tokens"], limit)).split()[-1])
