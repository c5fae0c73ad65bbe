"""Route policies declared in a route's ``opt``, applied to every route that declares them.

- ``opt={"rate_limit": "login" | "admin_write" | "device" | "callback"}``:
  counted in ``core.ratelimit`` per key — ``login``: client IP + the email in
  the body, and all logins of the client IP (``RATE_LIMIT_LOGIN_IP_MAX``); ``admin_write``: the principal; ``device``: the ``X-Device-Id``
  header (else the IP); ``callback``: the client IP. Over the limit:
  ``429 rate_limited`` with ``Retry-After``.
- ``opt={"idempotent": True}``: an ``Idempotency-Key`` header makes the write
  happen once (``core.idempotency``); replays carry ``Idempotent-Replayed: true``.
  Without the header the route runs as usual.

This is route middleware, so it runs after routing (it can read ``opt``) and
before the guard: it authorizes the caller itself (``authorize`` keeps the
result for the guard), so an unauthenticated request never claims a key or
spends someone else's budget. It wraps Litestar's own exception handling,
so what it captures for replay is the exact response the client got.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from qris_soundbox.control_plane.auth import authorize, client_ip, platform_of_connection
from qris_soundbox.core import idempotency
from qris_soundbox.core.auth import Principal

IDEMPOTENCY_HEADER = "idempotency-key"
REPLAYED_HEADER = (b"idempotent-replayed", b"true")
# How long a request waits for a concurrent first request with the same key.
IDEMPOTENCY_WAIT_S = 10.0


def route_policies(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        opt = handler.opt if handler is not None else {}
        bucket = opt.get("rate_limit")
        idempotent = opt.get("idempotent")
        if scope["type"] != "http" or not (bucket or idempotent):
            await app(scope, receive, send)
            return
        request: Request[Any, Any, Any] = Request(scope, receive, send)
        principal = await authorize(request, handler)
        platform = platform_of_connection(request)
        if bucket:
            await platform.rate_limiter.hit(bucket, await _rate_key(bucket, request, principal))
            if bucket == "login":
                await platform.rate_limiter.hit("login_ip", client_ip(request) or "-")
        key = request.headers.get(IDEMPOTENCY_HEADER) if idempotent else None
        if key is None:
            await app(scope, receive, send)
            return
        await _run_once(app, request, principal, idempotency.check_key(key), send)

    return middleware


async def _rate_key(bucket: str, request: Request[Any, Any, Any], principal: Principal | None) -> str:
    ip = client_ip(request) or "-"
    if bucket == "login":
        return f"{ip}|{await _body_email(request)}"
    if bucket == "admin_write" and principal is not None:
        return f"{principal.kind}:{principal.id}"
    if bucket == "device":
        return request.headers.get("x-device-id") or ip
    return ip


async def _body_email(request: Request[Any, Any, Any]) -> str:
    # The body is cached on the scope: the handler reads it again without a second receive.
    try:
        body = msgspec.json.decode(await request.body())
    except msgspec.DecodeError:
        return ""
    email = body.get("email") if isinstance(body, dict) else None
    return email.strip().lower()[:254] if isinstance(email, str) else ""


def _caller(request: Request[Any, Any, Any], principal: Principal | None) -> str:
    if principal is not None:
        return f"{principal.kind}:{principal.id}"
    # A public route (device credentials, signed callbacks): keys are scoped by the
    # credentials presented, never by IP (a retry may come from another address).
    presented = "\n".join(request.headers.get(h, "") for h in ("authorization", "x-device-id"))
    return "anon:" + hashlib.sha256(presented.encode()).hexdigest()[:32]


async def _run_once(
    app: ASGIApp, request: Request[Any, Any, Any], principal: Principal | None, key: str, send: Send
) -> None:
    scope = request.scope
    caller = _caller(request, principal)
    request_fingerprint = idempotency.fingerprint(
        scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"), await request.body()
    )
    keys = platform_of_connection(request).idempotency_keys
    claim = await keys.begin(
        caller=caller,
        key=key,
        request_fingerprint=request_fingerprint,
        method=scope["method"],
        path=scope["path"],
        wait_s=IDEMPOTENCY_WAIT_S,
    )
    if isinstance(claim, idempotency.StoredResponse):
        await _replay(claim, send)
        return

    status = 0
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
        await send(message)

    finished = False
    try:
        async with keys.leased(claim):
            await app(scope, request.receive, capture)
        if idempotency.storable(status):
            await keys.finish(claim, idempotency.StoredResponse(status=status, headers=headers, body=b"".join(chunks)))
            finished = True
    finally:
        if not finished:
            await keys.release(claim)


async def _replay(stored: idempotency.StoredResponse, send: Send) -> None:
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
    headers.append(REPLAYED_HEADER)
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": stored.body, "more_body": False})
