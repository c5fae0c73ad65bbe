"""Bearer-token authentication and the permission guard.

Every route declares how it is reached, in its ``opt``:

- ``opt={"permission": "merchant:write"}`` — an admin or merchant principal
  whose role has that permission (``core/auth.py``);
- ``opt={"public": True}`` — no bearer token (health, logins, the signed
  acquirer callback);
- ``opt={"device": True}`` — a device's own credentials (``device_auth.py``).

The guard runs on every route and fails closed: a route that declares neither
is refused, and a test walks all routes to keep it that way.

The path also says whose route it is: ``/admin/...`` routes take admin
principals only and ``/merchant/...`` routes merchant principals only, whatever
permission names the two role tables happen to share. A merchant principal is
further limited to its own merchant by ``core.auth.merchant_scope``.
"""

from __future__ import annotations

import hmac

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from qris_soundbox.control_plane.device_auth import authenticate_device
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.auth import STATIC_ADMIN, Principal
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.errors import Forbidden, Unauthorized
from qris_soundbox.core.logging import request_id_var
from qris_soundbox.core.users import service as users


def bearer_token(connection: ASGIConnection) -> str | None:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def resolve_principal(platform: PlatformContext, token: str) -> Principal | None:
    """The principal a bearer token stands for, or None: ``ADMIN_TOKEN``, or a live login token."""
    admin_token = platform.settings.admin_token
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return STATIC_ADMIN
    return await users.principal_for_token(platform.db, token)


def platform_of_connection(connection: ASGIConnection) -> PlatformContext:
    return connection.app.state["platform"]


async def authorize(connection: ASGIConnection, handler: BaseRouteHandler) -> Principal | None:
    """The caller of a route it may call (None on a public route), or Unauthorized / Forbidden.

    The result is kept on the connection: the route policies (rate limits,
    idempotency) run before the guard and need the principal too, and the
    token is looked up once per request.
    """
    if handler.opt.get("public") or _is_generated_options(handler):
        return None
    if handler.opt.get("device"):
        await authenticate_device(connection)  # raises unless a device proved who it is
        return None
    permission = handler.opt.get("permission")
    if not permission:
        raise Forbidden("this route declares no permission")
    principal: Principal | None = connection.state.get("principal")
    if principal is None:
        token = bearer_token(connection)
        if token is None:
            raise Unauthorized("a bearer token is required")
        principal = await resolve_principal(platform_of_connection(connection), token)
        if principal is None:
            raise Unauthorized("the bearer token is invalid or expired")
    audience = route_audience(handler)
    if audience is not None and principal.kind != audience:
        raise Forbidden(f"{principal.kind} users cannot use {audience} routes", details={"permission": permission})
    if not principal.may(permission):
        raise Forbidden(f"role {principal.role!r} lacks permission {permission!r}", details={"permission": permission})
    connection.state["principal"] = principal
    return principal


async def permission_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    await authorize(connection, handler)


def route_audience(handler: BaseRouteHandler) -> str | None:
    """``admin`` for /admin routes, ``merchant`` for /merchant routes, else None (permission decides)."""
    for kind in ("admin", "merchant"):
        if any(path == f"/{kind}" or path.startswith(f"/{kind}/") for path in handler.paths):
            return kind
    return None


def _is_generated_options(handler: BaseRouteHandler) -> bool:
    # Litestar adds an OPTIONS handler per path; it only lists the allowed methods.
    return getattr(handler, "http_methods", None) == {"OPTIONS"}


def principal_of(connection: ASGIConnection) -> Principal:
    return connection.state["principal"]


def client_ip(connection: ASGIConnection) -> str | None:
    if platform_of_connection(connection).settings.trust_proxy:
        forwarded = connection.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return connection.client.host if connection.client else None


def audit_actor(connection: ASGIConnection) -> AuditActor:
    principal: Principal | None = connection.state.get("principal")
    if principal is None:
        return AuditActor(actor_type="anonymous", request_id=request_id_var.get(), ip=client_ip(connection))
    return AuditActor(
        actor_type=principal.kind,
        actor_id=principal.id,
        actor_role=principal.role,
        request_id=request_id_var.get(),
        ip=client_ip(connection),
    )
