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

import functools
import hmac
import ipaddress

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from qris_soundbox.control_plane.device_auth import authenticate_device
from qris_soundbox.core.audit import AuditActor
from qris_soundbox.core.auth import STATIC_ADMIN, Principal, require
from qris_soundbox.core.context import PlatformContext
from qris_soundbox.core.errors import Forbidden, Unauthorized
from qris_soundbox.core.logging import request_id_var
from qris_soundbox.core.users import service as users

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    require(principal, permission)
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
    """The caller's address, for rate limits and audit rows.

    Without ``TRUST_PROXY``, the TCP peer. With it, and only when the peer is
    one of ``TRUSTED_PROXIES``, ``X-Forwarded-For`` is read from the right:
    each trusted proxy appends the address it was connected from, so the
    right-most hop that is not a trusted proxy is the client. The left-most
    hop is whatever the client wrote: taking it would let anyone pick the IP
    the login limit counts and the audit log records.
    """
    peer = connection.client.host if connection.client else None
    settings = platform_of_connection(connection).settings
    if not settings.trust_proxy or peer is None:
        return peer
    hops = ",".join(connection.headers.getall("x-forwarded-for", [])).split(",")
    return forwarded_client(
        peer, [hop.strip() for hop in hops if hop.strip()], trusted_networks(settings.trusted_proxies)
    )


@functools.cache
def trusted_networks(networks: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def forwarded_client(peer: str, hops: list[str], trusted: tuple[IPNetwork, ...]) -> str:
    """The right-most address of ``hops`` + ``peer`` that is not a trusted proxy (see ``client_ip``).

    A hop that is not an address (``unknown``, garbage a proxy passed on)
    ends the walk at the trusted proxy that wrote it. When every hop is
    trusted, the left-most (the request came from inside).
    """
    address = peer
    for hop in reversed(hops):
        if not _is_trusted(address, trusted):
            return address
        parsed = _address_of(hop)
        if parsed is None:
            return address
        address = parsed
    return address


def _is_trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:  # a dual-stack listener's IPv4 peer
        ip = ip.ipv4_mapped
    return any(ip in network for network in trusted)


def _address_of(hop: str) -> str | None:
    """The address of one ``X-Forwarded-For`` hop (``192.0.2.1``, ``192.0.2.1:4711``, ``[2001:db8::1]:4711``)."""
    candidate = hop
    if hop.startswith("["):
        candidate = hop[1 : hop.find("]")] if "]" in hop else hop
    elif hop.count(":") == 1:
        candidate = hop.split(":")[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


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
