"""The OpenAPI document as a working console: how each route is reached, and its real error answers.

Derived from what each route declares in ``opt`` (``control_plane/auth.py``),
so the document cannot drift from the guard:

- ``permission`` → ``bearer`` (``ADMIN_TOKEN`` or a login token);
- ``device`` → ``deviceId`` + ``deviceSecret`` (the ``X-Device-*`` headers);
- the acquirer callback → ``callbackSignature`` + ``callbackTimestamp``;
- ``GET /metrics`` → none, or ``bearer`` when ``METRICS_TOKEN`` is set.

Swagger UI's *Authorize* then offers exactly these, and "Try it out" sends
them. Every route also lists the error answers it can give, each with the
one envelope of ``control_plane/errors.py``.

Next to it, ``GET /schema/asyncapi.json``: the devices' MQTT contract
(``core/mqtt_contract.py``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from litestar import Request, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from qris_soundbox.core.mqtt_contract import asyncapi_document
from qris_soundbox.core.schemas import Struct

CALLBACK_PATH = "/integrations/qris/callback"


class ErrorDetail(Struct, kw_only=True):
    code: str  # stable, machine-readable: validation_error, unauthorized, not_found, rate_limited, ...
    message: str
    details: Any = None
    request_id: str
    timestamp: str  # RFC 3339, UTC, milliseconds


class ErrorEnvelope(Struct, kw_only=True):
    """Every error answer of the API (SPEC §3)."""

    error: ErrorDetail


SECURITY_SCHEMES = {
    "bearer": SecurityScheme(
        type="http",
        scheme="bearer",
        description="ADMIN_TOKEN, or the token of POST /admin/login or POST /merchant/login",
    ),
    "deviceId": SecurityScheme(
        type="apiKey", name="X-Device-Id", security_scheme_in="header", description="The device's id (dev_...)"
    ),
    "deviceSecret": SecurityScheme(
        type="apiKey",
        name="X-Device-Secret",
        security_scheme_in="header",
        description="The device's secret, as its credential rotation handed it out",
    ),
    "callbackSignature": SecurityScheme(
        type="apiKey",
        name="X-Callback-Signature",
        security_scheme_in="header",
        description='hex(HMAC-SHA256(INTEGRATION_WEBHOOK_SECRET, "<X-Callback-Timestamp>.<raw body>"))',
    ),
    "callbackTimestamp": SecurityScheme(
        type="apiKey",
        name="X-Callback-Timestamp",
        security_scheme_in="header",
        description="Unix seconds; within 300 s of the platform's clock",
    ),
}
COMPONENTS = Components(security_schemes=SECURITY_SCHEMES)  # type: ignore[arg-type]

_ERRORS = {
    400: "validation_error: a parameter or the body is invalid (details.field names it)",
    401: "unauthorized: credentials missing, invalid or expired",
    403: "forbidden: the credentials lack the permission (details.permission)",
    404: "not_found: no such object, or not yours",
    409: "conflict: the object's state forbids it, or the Idempotency-Key was used for another request",
    415: "unsupported_media_type: a body that is not JSON",
    429: "rate_limited: too many requests; Retry-After says when to try again",
    500: "internal_error: a fault of the platform (logged with the request id)",
    503: "service_unavailable: the database is unreachable; Retry-After says when to try again",
}


def _security(handler: HTTPRouteHandler) -> list[dict[str, list[str]]] | None:
    opt = handler.opt
    if "/metrics" in handler.paths:
        return [{}, {"bearer": []}]  # open, or METRICS_TOKEN
    if opt.get("device"):
        return [{"deviceId": [], "deviceSecret": []}]
    if opt.get("permission"):
        return [{"bearer": []}]
    if CALLBACK_PATH in handler.paths:
        return [{"callbackSignature": [], "callbackTimestamp": []}]
    return None


def _error_statuses(handler: HTTPRouteHandler) -> list[int]:
    opt = handler.opt
    statuses = [400, 500, 503]
    if _security(handler) is not None:
        statuses.append(401)
    if opt.get("permission") or opt.get("device"):
        statuses.append(403)
    if any("{" in path for path in handler.paths):
        statuses.append(404)
    if opt.get("idempotent") or not handler.http_methods <= {"GET", "HEAD"}:
        statuses += [409, 415]
    if opt.get("rate_limit"):
        statuses.append(429)
    return sorted(statuses)


def document(handlers: Iterable[Any]) -> None:
    """Declare each route's security and error answers (before the app builds its OpenAPI document)."""
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler):
            continue
        handler.security = _security(handler)
        responses: dict[int, ResponseSpec] = {
            status: ResponseSpec(data_container=ErrorEnvelope, description=_ERRORS[status], generate_examples=False)
            for status in _error_statuses(handler)
        }
        handler.responses = responses | dict(handler.responses or {})


@get(
    "/asyncapi.json",  # served by the /schema router, beside openapi.json (control_plane/app.py)
    summary="AsyncAPI document of the device MQTT contract",
    include_in_schema=False,
    opt={"public": True},  # public, as the OpenAPI document beside it
)
async def asyncapi(request: Request) -> dict[str, Any]:
    return _asyncapi(request.app.openapi_config.version if request.app.openapi_config else "")


@functools.cache
def _asyncapi(version: str) -> dict[str, Any]:
    return asyncapi_document(version)
