"""Users of both kinds, their passwords, and the bearer tokens a login issues.

Tokens are 256 random bits (``secrets``), prefixed ``qsa_`` (admin) or ``qsm_``
(merchant) so a leaked one is recognisable in a log scanner. Only the SHA-256
of a token is stored; a token is found by its hash, then compared in constant
time. A rotated password revokes every token of that user.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

from qris_soundbox.core import audit
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.auth import ADMIN_ROLES, MERCHANT_ROLES, Principal
from qris_soundbox.core.db import QUERIES, Connection, Database, fetch_one
from qris_soundbox.core.errors import RateLimited, Unauthorized, ValidationFailed
from qris_soundbox.core.ids import new_id
from qris_soundbox.core.merchants import identity
from qris_soundbox.core.merchants import service as merchants
from qris_soundbox.core.paging import PageQuery, contains_pattern
from qris_soundbox.core.schemas import Page
from qris_soundbox.core.users.errors import OwnAccount, UserExists, UserNotFound
from qris_soundbox.core.users.passwords import check_policy, hash_password, verify_password
from qris_soundbox.core.users.schemas import IssuedPassword, LoginResult, User, UserInvite, UserUpdate

KINDS = ("admin", "merchant")
_TOKEN_PREFIX = {"admin": "qsa_", "merchant": "qsm_"}
# An account with no failed login for this long starts its backoff count again.
LOGIN_BACKOFF_FORGET_S = 24 * 3600


@dataclass(frozen=True)
class LoginBackoff:
    """Per-account backoff (``LOGIN_BACKOFF_*``): ``free`` failures, then waits of 1, 2, 4 … s up to ``max_s``."""

    free: int
    max_s: int


_ROLES = {"admin": ADMIN_ROLES, "merchant": MERCHANT_ROLES}
_Q = {  # per-kind query names
    "admin": {
        "by_email": "admin_user_by_email",
        "by_id": "admin_user_by_id",
        "set_password": "set_admin_user_password",
        "touch": "touch_admin_user_login",
    },
    "merchant": {
        "by_email": "merchant_user_by_email",
        "by_id": "merchant_user_by_id",
        "set_password": "set_merchant_user_password",
        "touch": "touch_merchant_user_login",
    },
}
# Kept after expiry or revocation so an investigation can still match a token id.
DEAD_TOKEN_RETENTION_S = 7 * 24 * 3600


def user_of(kind: str, row: Any) -> User:
    keys = row.keys()
    return User(
        id=row["id"],
        kind=kind,
        email=row["email"],
        name=row["name"],
        role=row["role"],
        merchant_id=row["merchant_id"] if kind == "merchant" else None,
        status=row["status"],
        last_login_at=row["last_login_at"],
        created_at=row["created_at"],
        merchant_name=row["merchant_name"] if "merchant_name" in keys else None,
    )


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check_role(kind: str, role: str) -> str:
    if role not in _ROLES[kind]:
        raise ValidationFailed(f"role: one of {', '.join(_ROLES[kind])}", details={"field": "role"})
    return role


def _check_identity(email: str, name: str) -> tuple[str, str]:
    cleaned_email = identity.email(email)
    cleaned_name = identity.plain_text("name", name, 100, required=True)
    assert cleaned_email is not None and cleaned_name is not None
    return cleaned_email.lower(), cleaned_name


async def find_user(conn: Connection, kind: str, email: str) -> User | None:
    row = await conn.fetchrow(QUERIES[_Q[kind]["by_email"]], email.strip())
    return user_of(kind, row) if row else None


async def create_user(
    conn: Connection,
    actor: AuditActor,
    kind: str,
    *,
    email: str,
    name: str,
    role: str,
    password: str,
    merchant_id: str | None = None,
) -> User:
    """An admin user (``merchant_id`` None) or a user of ``merchant_id``."""
    email, name = _check_identity(email, name)
    _check_role(kind, role)
    check_policy(password)
    if await conn.fetchrow(QUERIES[_Q[kind]["by_email"]], email) is not None:
        raise UserExists(f"a {kind} user with this email exists", details={"field": "email"})
    password_hash = await hash_password(password)
    user_id = new_id("usr")
    try:
        if kind == "admin":
            row = await conn.fetchrow(QUERIES["insert_admin_user"], user_id, email, name, role, password_hash)
        else:
            row = await conn.fetchrow(
                QUERIES["insert_merchant_user"], user_id, merchant_id, email, name, role, password_hash
            )
    except asyncpg.UniqueViolationError:
        raise UserExists(f"a {kind} user with this email exists", details={"field": "email"}) from None
    user = user_of(kind, row)
    await audit.record(
        conn,
        actor,
        f"{kind}_user.create",
        entity_type=f"{kind}_user",
        entity_id=user.id,
        merchant_id=merchant_id,
        payload={"email": email, "name": name, "role": role},
    )
    return user


async def rotate_password(conn: Connection, actor: AuditActor, kind: str, user_id: str, password: str) -> User:
    """Set a new password and end every session of the user."""
    check_policy(password)
    row = await conn.fetchrow(QUERIES[_Q[kind]["set_password"]], user_id, await hash_password(password))
    if row is None:
        raise UserNotFound(f"no such {kind} user")
    await conn.execute(QUERIES["revoke_user_tokens"], kind, user_id)
    user = user_of(kind, row)
    await audit.record(
        conn,
        actor,
        f"{kind}_user.password_rotate",
        entity_type=f"{kind}_user",
        entity_id=user_id,
        merchant_id=user.merchant_id,
        payload={"email": user.email},
    )
    return user


USER_STATUSES = ("active", "disabled")
# Temporary passwords: 128 random bits, well past the policy's minimum length.
TEMPORARY_PASSWORD_BYTES = 16


async def list_users(
    conn: Connection,
    kind: str,
    page: PageQuery,
    *,
    status: str | None = None,
    role: str | None = None,
    search: str | None = None,
    merchant_id: str | None = None,
) -> Page[User]:
    """Newest first; ``search``: part of the email or the name."""
    if status is not None and status not in USER_STATUSES:
        raise ValidationFailed(f"status: one of {', '.join(USER_STATUSES)}", details={"field": "status"})
    if role is not None:
        _check_role(kind, role)
    pattern = contains_pattern(search)
    if kind == "admin":
        rows = await conn.fetch(QUERIES["list_admin_users"], page.cursor, page.fetch_limit, status, role, pattern)
    else:
        rows = await conn.fetch(
            QUERIES["list_merchant_users"], page.cursor, page.fetch_limit, status, role, pattern, merchant_id
        )
    return page.page(rows, lambda row: user_of(kind, row))


async def invite_user(conn: Connection, actor: AuditActor, kind: str, data: UserInvite) -> IssuedPassword:
    """A new user with a temporary password to hand over (the console shows it once; it is stored hashed)."""
    if kind == "merchant":
        if data.merchant_id is None:
            raise ValidationFailed("merchant_id: required for a merchant user", details={"field": "merchant_id"})
        await merchants.get_merchant(conn, data.merchant_id)  # 404 merchant_not_found, not a foreign key error
    elif data.merchant_id is not None:
        raise ValidationFailed("merchant_id: only for merchant users", details={"field": "merchant_id"})
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    user = await create_user(
        conn,
        actor,
        kind,
        email=data.email,
        name=data.name,
        role=data.role,
        password=password,
        merchant_id=data.merchant_id,
    )
    return IssuedPassword(user=user, temporary_password=password)


async def update_user(
    conn: Connection, actor: AuditActor, acting: Principal, kind: str, user_id: str, data: UserUpdate
) -> User:
    """Change a user's role or status; disabling ends every session of the user at once."""
    if data.role is not None:
        _check_role(kind, data.role)
    if data.status is not None and data.status not in USER_STATUSES:
        raise ValidationFailed(f"status: one of {', '.join(USER_STATUSES)}", details={"field": "status"})
    if (
        acting.kind == kind
        and acting.id == user_id
        and (data.status == "disabled" or (data.role is not None and data.role != acting.role))
    ):
        raise OwnAccount("you cannot disable your own account or change your own role")
    before = await conn.fetchrow(QUERIES[_Q[kind]["by_id"]], user_id)
    if before is None:
        raise UserNotFound(f"no such {kind} user")
    row = await conn.fetchrow(QUERIES[f"update_{kind}_user"], user_id, data.role, data.status)
    user = user_of(kind, row)
    if data.status == "disabled":
        await conn.execute(QUERIES["revoke_user_tokens"], kind, user_id)
    changed = {
        name: {"from": before[name], "to": getattr(user, name)}
        for name in ("role", "status")
        if before[name] != getattr(user, name)
    }
    await audit.record(
        conn,
        actor,
        f"{kind}_user.update",
        entity_type=f"{kind}_user",
        entity_id=user_id,
        merchant_id=user.merchant_id,
        payload={"email": user.email, **changed},
    )
    return user


async def reset_password(conn: Connection, actor: AuditActor, kind: str, user_id: str) -> IssuedPassword:
    """A new temporary password (every session of the user ends), to hand over once."""
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    user = await rotate_password(conn, actor, kind, user_id, password)
    return IssuedPassword(user=user, temporary_password=password)


async def get_user(conn: Connection, principal: Principal) -> User:
    row = await conn.fetchrow(QUERIES[_Q[principal.kind]["by_id"]], principal.id)
    if row is None:
        raise UserNotFound("no such user")
    return user_of(principal.kind, row)


async def login(
    db: Database, actor: AuditActor, kind: str, *, email: str, password: str, ttl_s: int, backoff: LoginBackoff
) -> LoginResult:
    """Exchange email + password for a token; success and failure are both audited.

    This service owns its transactions: no connection is held during the
    argon2 verification (tens of milliseconds), and a failure's audit row must
    commit even though the caller gets an error.

    An account in backoff is refused before its password is checked, the
    right one too (a guess then learns nothing); the wait is capped, so the
    owner is never locked out for longer than ``backoff.max_s`` at a time.
    """
    email = email.strip()[:254]
    account = email.lower()
    async with db.pool.acquire() as conn:
        wait_s = await conn.fetchval(QUERIES["login_backoff_wait"], kind, account)
        if wait_s is not None:
            retry_after = max(1, math.ceil(wait_s))
            raise RateLimited(
                f"too many failed logins for this account; retry in {retry_after} s",
                retry_after_s=retry_after,
                details={"bucket": "login_account"},
            )
        row = await conn.fetchrow(QUERIES[_Q[kind]["by_email"]], email)
    matches, new_hash = await verify_password(row["password_hash"] if row else None, password)
    reason = None
    if row is None:
        reason = "unknown_email"
    elif not matches:
        reason = "wrong_password"
    elif row["status"] != "active":
        reason = "user_disabled"
    async with db.transaction() as conn:
        if reason is not None:
            await conn.execute(
                QUERIES["login_backoff_fail"], kind, account, backoff.free, backoff.max_s, LOGIN_BACKOFF_FORGET_S
            )
            await audit.record(
                conn,
                actor,
                f"{kind}.login.failed",
                entity_type=f"{kind}_user",
                entity_id=row["id"] if row else None,
                merchant_id=row["merchant_id"] if row is not None and kind == "merchant" else None,
                payload={"email": email.lower(), "reason": reason},
            )
        else:
            assert row is not None
            token = _TOKEN_PREFIX[kind] + secrets.token_urlsafe(32)
            issued = await fetch_one(
                conn, "insert_auth_token", new_id("tok"), token_digest(token), kind, row["id"], ttl_s, actor.ip
            )
            await conn.execute(QUERIES[_Q[kind]["touch"]], row["id"], new_hash)
            await conn.execute(QUERIES["login_backoff_clear"], kind, account)
            user = user_of(kind, await conn.fetchrow(QUERIES[_Q[kind]["by_id"]], row["id"]))
            principal_actor = AuditActor(
                actor_type=kind, actor_id=user.id, actor_role=user.role, request_id=actor.request_id, ip=actor.ip
            )
            await audit.record(
                conn,
                principal_actor,
                f"{kind}.login.success",
                entity_type=f"{kind}_user",
                entity_id=user.id,
                merchant_id=user.merchant_id,
                payload={"email": user.email, "token_id": issued["id"]},
            )
    if reason is not None:
        # One message for every reason: the caller must not learn which emails exist.
        raise Unauthorized("invalid email or password")
    return LoginResult(token=token, expires_at=issued["expires_at"], user=user)


async def principal_for_token(db: Database, token: str) -> Principal | None:
    """The principal a login token stands for, while it is live and its user active."""
    if not token.startswith(tuple(_TOKEN_PREFIX.values())) or len(token) > 128:
        return None
    digest = token_digest(token)
    row = await db.fetchrow("principal_by_token", digest)
    if row is None or not hmac.compare_digest(bytes(row["token_sha256"]), digest):
        return None
    return Principal(
        kind=row["user_kind"], id=row["user_id"], role=row["role"], merchant_id=row["merchant_id"], email=row["email"]
    )


async def logout(conn: Connection, actor: AuditActor, token: str) -> bool:
    """Revoke the presented token; False if it was not a live login token."""
    row = await conn.fetchrow(QUERIES["revoke_auth_token"], token_digest(token))
    if row is None:
        return False
    await audit.record(
        conn, actor, f"{row['user_kind']}.logout", entity_type="auth_token", entity_id=row["id"], payload={}
    )
    return True


async def purge_tokens(db: Database) -> str:
    await db.execute("login_backoff_purge", LOGIN_BACKOFF_FORGET_S)
    return await db.execute("purge_auth_tokens", DEAD_TOKEN_RETENTION_S)
