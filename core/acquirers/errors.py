"""Acquirer registry errors (docs/acquirers.md)."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, DomainError, InvalidState, NotFound, ValidationFailed


class AcquirerNotFound(NotFound):
    pass


class AcquirerTaken(Conflict):
    """The code, or a SNAP acquirer's client_key, already names another acquirer."""

    code = "acquirer_taken"


class AcquirerSettingsInvalid(ValidationFailed):
    pass


class AcquirerNotUsable(InvalidState):
    """The merchant's acquirer issues its QRs, but its registry entry lacks what a call out needs."""

    code = "acquirer_not_usable"


class AcquirerAnswerInvalid(DomainError):
    """The acquirer's generate answer is not a QR the platform can show (no referenceNo, wrong QRIS)."""

    code = "acquirer_answer_invalid"
    status = 502
