"""Domain errors: each carries a stable machine ``code`` and the HTTP status.

The HTTP control plane turns them into the error envelope; the broker plugins
turn the same errors into error downlinks, so both paths speak the same codes.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]  # a narrower code for one case


class ValidationFailed(DomainError):
    # 400 like the framework's own body/query validation, so one code has one status.
    code = "validation_error"
    status = 400


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class InvalidState(DomainError):
    code = "invalid_state"
    status = 409


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after_s: int, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    code = "service_unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after_s: int | None = None, details: Any = None) -> None:
        super().__init__(message, details=details)
        # Set when waiting helps (the database is down), left out when it does not (a setting is missing).
        self.retry_after_s = retry_after_s
