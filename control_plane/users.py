"""Logins, logouts and the merchant's profile: ``/admin/login``, ``/merchant/login`` and friends."""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post

from qris_soundbox.control_plane.auth import audit_actor, bearer_token, principal_of
from qris_soundbox.control_plane.deps import JSONBody, Platform
from qris_soundbox.core.auth import merchant_scope
from qris_soundbox.core.finance import payout_accounts
from qris_soundbox.core.merchants import service as merchants
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


routes = [admin_login, merchant_login, admin_logout, merchant_logout, merchant_profile]
