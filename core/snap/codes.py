"""SNAP response codes and the errors that carry them.

A response code is seven digits: the HTTP status (3), the service code (2) and
the case (2) — ``4015200`` is 401, service 52 (QR MPM notify), case 00. An
error knows its status and case; the route that raises it knows the service.
"""

from __future__ import annotations

from typing import ClassVar

from qris_soundbox.core.schemas import Struct

# Service codes of the ASPI catalogue the platform speaks (SPEC §13–§14).
ACCESS_TOKEN = 73
QR_MPM_GENERATE = 47
QR_MPM_QUERY = 51
QR_MPM_NOTIFY = 52
QR_MPM_CANCEL = 77
QR_MPM_REFUND = 78


def response_code(status: int, service: int, case: int) -> str:
    """``status`` + ``service`` + ``case`` as SNAP's seven digits."""
    if not (100 <= status <= 599 and 0 <= service <= 99 and 0 <= case <= 99):
        raise ValueError(f"no SNAP response code for status {status}, service {service}, case {case}")
    return f"{status:03d}{service:02d}{case:02d}"


class SnapResponse(Struct):
    """Every SNAP answer's first two fields."""

    responseCode: str
    responseMessage: str


class SnapError(Exception):
    """A refusal in SNAP's terms: HTTP ``status``, ``case`` and the standard's message for it."""

    status: ClassVar[int] = 500
    case: ClassVar[int] = 0
    title: ClassVar[str] = "General Error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.title)
        self.detail = detail

    def code(self, service: int) -> str:
        return response_code(self.status, service, self.case)

    def response(self, service: int) -> SnapResponse:
        """The answer body: the standard's message, with the reason after it when there is one."""
        message = f"{self.title}: {self.detail}" if self.detail else self.title
        return SnapResponse(responseCode=self.code(service), responseMessage=message)


class BadRequest(SnapError):
    status = 400
    case = 0
    title = "Bad Request"


class InvalidFieldFormat(SnapError):
    status = 400
    case = 1
    title = "Invalid Field Format"


class MissingMandatoryField(SnapError):
    status = 400
    case = 2
    title = "Invalid Mandatory Field"


class UnauthorizedSignature(SnapError):
    status = 401
    case = 0
    title = "Unauthorized. Signature"


class InvalidToken(SnapError):
    status = 401
    case = 1
    title = "Invalid Token (B2B)"


class TransactionNotFound(SnapError):
    status = 404
    case = 1
    title = "Transaction Not Found"


class InvalidMerchant(SnapError):
    status = 404
    case = 8
    title = "Invalid Merchant"


class InvalidAmount(SnapError):
    status = 404
    case = 13
    title = "Invalid Amount"


class InconsistentRequest(SnapError):
    status = 404
    case = 18
    title = "Inconsistent Request"


class DuplicateExternalId(SnapError):
    status = 409
    case = 0
    title = "Conflict"


class TooLarge(SnapError):
    status = 413
    case = 0
    title = "Request Entity Too Large"


class UnsupportedMediaType(SnapError):
    status = 415
    case = 0
    title = "Unsupported Media Type"


class TooManyRequests(SnapError):
    status = 429
    case = 0
    title = "Too Many Requests"


class GeneralError(SnapError):
    status = 500
    case = 0
    title = "General Error"


class Unavailable(SnapError):
    status = 503
    case = 0
    title = "Service Unavailable"
