"""Logins, logouts and the merchant's profile: ``/admin/login``, ``/merchant/login`` and friends."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get, patch, post

from qris_soundbox.control_plane.auth import audit_actor, bearer_token, principal_of
from qris_soundbox.control_plane.deps import FromPath, FromQuery, JSONBody, Paging, Platform, search_parameter
from qris_soundbox.core.auth import merchant_scope
from qris_soundbox.core.finance import payout_accounts
from qris_soundbox.core.merchants import service as merchants
from qris_soundbox.core.schemas import Page
from qris_soundbox.core.users import schemas as s
from qris_soundbox.core.users import service as users

_LOGIN = {"public": True, "rate_limit": "login"}


async def _login(platform: Platform, request: Request[Any, Any, Any], kind: str, data: s.LoginRequest) -> s.LoginResult:
    return await users.login(
        platform.db,
        audit_actor(request),
        kind,
        email=data.email,
        password=data.password,
        ttl_s=platform.settings.auth_token_ttl_seconds,
        backoff=users.LoginBackoff(
            platform.settings.login_backoff_free_failures, platform.settings.login_backoff_max_seconds
        ),
    )


@post(
    "/admin/login",
    status_code=200,
    summary="Exchange email + password for an admin bearer token",
    tags=["auth"],
    opt=_LOGIN,
)
async def admin_login(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.LoginRequest]
) -> s.LoginResult:
    return await _login(platform, request, "admin", data)


@post(
    "/merchant/login",
    status_code=200,
    summary="Exchange email + password for a merchant bearer token",
    tags=["auth"],
    opt=_LOGIN,
)
async def merchant_login(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.LoginRequest]
) -> s.LoginResult:
    return await _login(platform, request, "merchant", data)


async def _logout(platform: Platform, request: Request[Any, Any, Any]) -> s.LogoutResult:
    token = bearer_token(request)
    assert token is not None  # the guard let the request through
    async with platform.db.transaction() as conn:
        # False for the static ADMIN_TOKEN: it is configuration, not a session.
        return s.LogoutResult(revoked=await users.logout(conn, audit_actor(request), token))


@post(
    "/admin/logout",
    status_code=200,
    summary="Revoke the admin bearer token of this request",
    tags=["auth"],
    opt={"permission": "session:logout"},
)
async def admin_logout(platform: Platform, request: Request[Any, Any, Any]) -> s.LogoutResult:
    return await _logout(platform, request)


@post(
    "/merchant/logout",
    status_code=200,
    summary="Revoke the merchant bearer token of this request",
    tags=["auth"],
    opt={"permission": "session:logout"},
)
async def merchant_logout(platform: Platform, request: Request[Any, Any, Any]) -> s.LogoutResult:
    return await _logout(platform, request)


@get(
    "/merchant/profile",
    summary="The logged-in merchant user and their merchant",
    tags=["merchant"],
    opt={"permission": "merchant:profile"},
)
async def merchant_profile(platform: Platform, request: Request[Any, Any, Any]) -> s.MerchantProfile:
    principal = principal_of(request)
    scope = merchant_scope(principal)
    assert scope is not None  # the route is for merchant principals only
    async with platform.db.transaction() as conn:
        user = await users.get_user(conn, principal)
        merchant = await merchants.get_merchant(conn, scope, scope)
        payout_account = await payout_accounts.current_account(conn, scope, full=False)
    return s.MerchantProfile(user=user, merchant=merchant, payout_account=payout_account)


# --- user management (admin): both kinds of users, invite, role, disable, reset password ---

_READ_USERS = {"permission": "user:read"}
_WRITE_USERS = {"permission": "user:write", "rate_limit": "admin_write"}
_USER_SEARCH = search_parameter("part of the user's email or name")


@get("/admin/admin-users", summary="List admin users, newest first", tags=["users"], opt=_READ_USERS)
async def list_admin_users(
    platform: Platform,
    page: Paging,
    status: FromQuery[str | None] = None,
    role: FromQuery[str | None] = None,
    search: Annotated[str | None, _USER_SEARCH] = None,
) -> Page[s.User]:
    async with platform.db.transaction() as conn:
        return await users.list_users(conn, "admin", page, status=status, role=role, search=search)


@get("/admin/merchant-users", summary="List merchant users, newest first", tags=["users"], opt=_READ_USERS)
async def list_merchant_users(
    platform: Platform,
    page: Paging,
    merchant_id: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    role: FromQuery[str | None] = None,
    search: Annotated[str | None, _USER_SEARCH] = None,
) -> Page[s.User]:
    async with platform.db.transaction() as conn:
        return await users.list_users(
            conn, "merchant", page, status=status, role=role, search=search, merchant_id=merchant_id
        )


async def _invite(
    platform: Platform, request: Request[Any, Any, Any], kind: str, data: s.UserInvite
) -> s.IssuedPassword:
    async with platform.db.transaction() as conn:
        return await users.invite_user(conn, audit_actor(request), kind, data)


@post(
    "/admin/admin-users",
    summary="Invite an admin user: the answer's temporary password is shown once",
    tags=["users"],
    opt=_WRITE_USERS,
)
async def invite_admin_user(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.UserInvite]
) -> s.IssuedPassword:
    return await _invite(platform, request, "admin", data)


@post(
    "/admin/merchant-users",
    summary="Invite a user of a merchant: the answer's temporary password is shown once",
    tags=["users"],
    opt=_WRITE_USERS,
)
async def invite_merchant_user(
    platform: Platform, request: Request[Any, Any, Any], data: JSONBody[s.UserInvite]
) -> s.IssuedPassword:
    return await _invite(platform, request, "merchant", data)


async def _update(
    platform: Platform, request: Request[Any, Any, Any], kind: str, user_id: str, data: s.UserUpdate
) -> s.User:
    async with platform.db.transaction() as conn:
        return await users.update_user(conn, audit_actor(request), principal_of(request), kind, user_id, data)


@patch(
    "/admin/admin-users/{user_id:str}",
    summary="Change an admin user's role or status (disabled: every session ends)",
    tags=["users"],
    opt=_WRITE_USERS,
)
async def update_admin_user(
    platform: Platform, request: Request[Any, Any, Any], user_id: FromPath[str], data: JSONBody[s.UserUpdate]
) -> s.User:
    return await _update(platform, request, "admin", user_id, data)


@patch(
    "/admin/merchant-users/{user_id:str}",
    summary="Change a merchant user's role or status (disabled: every session ends)",
    tags=["users"],
    opt=_WRITE_USERS,
)
async def update_merchant_user(
    platform: Platform, request: Request[Any, Any, Any], user_id: FromPath[str], data: JSONBody[s.UserUpdate]
) -> s.User:
    return await _update(platform, request, "merchant", user_id, data)


async def _reset(platform: Platform, request: Request[Any, Any, Any], kind: str, user_id: str) -> s.IssuedPassword:
    async with platform.db.transaction() as conn:
        return await users.reset_password(conn, audit_actor(request), kind, user_id)


@post(
    "/admin/admin-users/{user_id:str}/reset-password",
    status_code=200,
    summary="Give an admin user a new temporary password (shown once); every session ends",
    tags=["users"],
    opt=_WRITE_USERS,
)
async def reset_admin_user_password(
    platform: Platform, request: Request[Any, Any, Any], user_id: FromPath[str]
) -> s.IssuedPassword:
    return await _reset(platform, request, "admin", user_id)


@post(
    "/admin/merchant-users/{user_id:str}/reset-password",
    status_code=200,
    summary="Give a merchant user a new temporary password (shown once); every session ends",
    tags=["users"],
    opt=_WRITE_USERS,
)
async def reset_merchant_user_password(
    platform: Platform, request: Request[Any, Any, Any], user_id: FromPath[str]
) -> s.IssuedPassword:
    return await _reset(platform, request, "merchant", user_id)


routes = [
    admin_login,
    merchant_login,
    admin_logout,
    merchant_logout,
    merchant_profile,
    list_admin_users,
    list_merchant_users,
    invite_admin_user,
    invite_merchant_user,
    update_admin_user,
    update_merchant_user,
    reset_admin_user_password,
    reset_merchant_user_password,
]
