"""The one error envelope of SPEC §3, for every error the HTTP API can give.

``{"error": {"code", "message", "details", "request_id", "timestamp"}}`` with a
stable machine ``code``: domain errors carry their own, framework errors
(unknown route, wrong method, bad JSON, oversized body) are mapped here,
database failures become ``service_unavailable`` (503 with ``Retry-After``:
PostgreSQL is down) or ``validation_error`` (400: it refused a value from the
request) through ``core.db.error_for_database_failure``, and anything
unexpected is logged with its traceback and answered as ``internal_error``
without one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from qris_soundbox.core.db import DatabaseUnreachable, error_for_database_failure
from qris_soundbox.core.errors import DomainError
from qris_soundbox.core.logging import request_id_var
from qris_soundbox.core.snap import codes as snap_codes

log = logging.getLogger(__name__)

_CODE_BY_STATUS = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "request_id": request_id_var.get(),
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
    }
    return Response(body, status_code=status, headers=headers)


def domain_error_handler(request: Request, exc: DomainError) -> Response[dict[str, Any]]:
    if exc.status == 401:
        # Refused credentials (bearer token, device secret, login): counted for GET /metrics.
        request.app.state["platform"].metrics.auth_failures.labels("http", exc.code).inc()
    # RateLimited, and any other domain error that knows when to come back (idempotency_in_progress).
    retry_after = getattr(exc, "retry_after_s", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return error_response(exc.status, exc.code, exc.message, exc.details, headers)


def http_error_handler(_: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if status >= 500:
        log.error("http error", extra={"status": status, "detail": exc.detail})
        return error_response(status, _CODE_BY_STATUS.get(status, "internal_error"), "internal error")
    details = exc.extra if isinstance(exc, ValidationException) and exc.extra else None
    message = exc.detail or "request failed"
    if status == 404:
        message = "no such resource" if message == "Not Found" else message
    return error_response(status, _CODE_BY_STATUS.get(status, "error"), message, details, exc.headers)


def database_error_handler(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    error = error_for_database_failure(exc)
    if error is None:
        return unexpected_error_handler(request, exc)
    # The class only: a database message may quote the refused value.
    log.warning(
        "database unavailable" if error.status == 503 else "database refused a value from the request",
        extra={"error": type(exc).__name__},
    )
    return domain_error_handler(request, error)


def unexpected_error_handler(_: Request, exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def _snap_aware(handler: Callable[[Request, Any], Response[Any]]) -> Callable[[Request, Any], Response[Any]]:
    """On a SNAP route (``opt["snap_service"]``) the same refusal in SNAP's shape: an acquirer's
    client reads ``responseCode``, never the envelope (wrong content type, body too large or too deep...)."""

    def answer(request: Request, exc: Any) -> Response[Any]:
        response = handler(request, exc)
        route = request.scope.get("route_handler")
        service = route.opt.get("snap_service") if route is not None else None
        if not isinstance(service, int):
            return response
        error = response.content["error"] if isinstance(response.content, dict) else {}
        status = response.status_code or 500
        code = snap_codes.response_code(status, service, 1 if status == 400 else 0)
        body = {"responseCode": code, "responseMessage": str(error.get("message", "error"))}
        return Response(body, status_code=status, headers=response.headers)

    return answer


EXCEPTION_HANDLERS = {
    exception: _snap_aware(handler)  # type: ignore[arg-type]
    for exception, handler in {
        DomainError: domain_error_handler,
        HTTPException: http_error_handler,
        DatabaseUnreachable: database_error_handler,
        asyncpg.PostgresError: database_error_handler,
        asyncpg.InterfaceError: database_error_handler,
        asyncpg.InternalClientError: database_error_handler,
        Exception: unexpected_error_handler,
    }.items()
}
