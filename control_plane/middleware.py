"""ASGI middleware: request id on every response, one JSON log line per request,
and the rules every request body must meet before a route sees it (``strict_body``: its types)."""

from __future__ import annotations

import logging
import operator
import re
import time
import uuid
from functools import partial
from itertools import accumulate, count
from typing import Any, cast

import msgspec
from litestar import Request
from litestar.exceptions import ClientException, ValidationException
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from qris_soundbox.control_plane.metrics import observe_request
from qris_soundbox.core.errors import ValidationFailed
from qris_soundbox.core.logging import request_id_var

log = logging.getLogger("qris_soundbox.http")
# A caller's id is echoed only if it is short and plain, so it cannot inject into logs or headers.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Health probes of load balancers and orchestrators.
_PROBES = frozenset({"/health", "/health/deep"})


def request_context_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        method = cast("HTTPScope", scope)["method"]
        supplied = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = supplied if _ACCEPTABLE_ID.match(supplied) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            duration_s = time.perf_counter() - started
            # A load balancer probes /health every second: its good answers would drown the log.
            level = logging.DEBUG if status == 200 and scope["path"] in _PROBES else logging.INFO
            log.log(
                level,
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(duration_s * 1000, 2),
                },
            )
            observe_request(cast("HTTPScope", scope), status, duration_s)
            request_id_var.reset(token)

    return middleware


# Deeper than any body this API takes (the deepest, a device config, is 3 levels);
# far below the depth at which a JSON decoder runs out of stack.
MAX_JSON_DEPTH = 32


def request_body_rules(app: ASGIApp) -> ASGIApp:
    """Route middleware, before the route policies: every request body is JSON, nested at most ``MAX_JSON_DEPTH``.

    - A request that carries a body must say ``Content-Type: application/json``
      (or ``application/<something>+json``), with no charset or ``utf-8``:
      ``415 unsupported_media_type`` otherwise, before anything else is done.
    - A body nested deeper than ``MAX_JSON_DEPTH`` is ``400 validation_error``:
      decoding it (here, in Litestar or in a route) would exhaust the stack.

    Whether the body is valid JSON is left to the route, which answers 400 itself
    (the acquirer callback checks its signature first). A route declaring
    ``opt={"upload": True}`` takes a file upload instead and streams its body itself.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        uploads = handler is not None and handler.opt.get("upload") is True
        if scope["type"] == "http" and _carries_body(scope) and not uploads:
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            if not _is_json(request.headers.get("content-type", "")):
                raise ClientException(
                    status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    detail="request bodies must be JSON: send Content-Type: application/json",
                )
            # Read once; Litestar keeps the body on the scope for the route.
            _check_depth(await request.body())
        await app(scope, receive, send)

    return middleware


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Litestar's ``before_request`` (after the guard, before the route): the body decoded strictly
    into the route's ``data`` type, as the acquirer callbacks and device uplinks are.

    Litestar converts bodies leniently (``"amount": "100"`` becomes 100, ``"true"`` a bool), so an
    admin body took numbers as strings that a callback refuses. Answered as Litestar answers its own
    validation failures (``400 validation_error``, ``details: [{message, key, source}]``); a body
    that is not JSON at all is left to Litestar, which answers it as before.
    """
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    body = await request.body()
    if not body:
        return
    try:
        msgspec.json.decode(body, type=data.annotation, strict=True)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `")
        key = where.rstrip("`").removeprefix("$").removeprefix(".")
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": message, "key": key, "source": "body"}],
        ) from None
    except msgspec.DecodeError:
        return


def _carries_body(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0").strip() not in (b"0", b"")


def _is_json(content_type: str) -> bool:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return False
    charset = next(
        (
            value.strip().strip('"').lower()
            for name, _, value in (p.partition("=") for p in parameters.split(";"))
            if name.strip().lower() == "charset"
        ),
        "utf-8",
    )
    return charset in ("utf-8", "utf8")


def _check_depth(body: bytes) -> None:
    """An upper bound on how deep any JSON decoder would recurse into this body, without
    decoding it: bytes operations and a C-level scan, milliseconds for a megabyte."""
    # Nesting needs an opening bracket per level: most bodies are ruled out here.
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    # Without escapes every quote opens or closes a string, as a decoder reads them:
    # the even pieces between quotes are outside strings, their brackets the structure.
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    weights = b"".join(unescaped.split(b'"')[::2]).translate(_BRACKET_WEIGHT, _NOT_A_BRACKET)
    # After the i-th bracket the depth is opened - closed = 2 * opened - i (an opener weighs 2).
    depths = map(operator.sub, accumulate(weights), count(1))
    if next(filter(partial(operator.lt, MAX_JSON_DEPTH), depths), None) is not None:
        raise ValidationFailed(
            f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels", details={"max_depth": MAX_JSON_DEPTH}
        )


_NOT_A_BRACKET = bytes(set(range(256)) - set(b"[]{}"))
_BRACKET_WEIGHT = bytes.maketrans(b"[{]}", b"\2\2\0\0")
