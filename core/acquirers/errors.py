"""Acquirer registry errors (docs/acquirers.md)."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, NotFound, ValidationFailed


class AcquirerNotFound(NotFound):
    pass


class AcquirerTaken(Conflict):
    """The code, or a SNAP acquirer's client_key, already names another acquirer."""

    code = "acquirer_taken"


class AcquirerSettingsInvalid(ValidationFailed):
    pass
