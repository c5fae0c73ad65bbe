"""Device domain errors, each with a stable code and HTTP status."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, InvalidState, NotFound, Unauthorized, ValidationFailed


class DeviceNotFound(NotFound):
    def __init__(self, device_id: str) -> None:
        super().__init__(f"device {device_id!r} does not exist", details={"device_id": device_id})


class DeviceModelNotFound(ValidationFailed):
    """Naming an unknown model in a request body is bad input, not a missing resource."""

    code = "unknown_device_model"
    status = 422

    def __init__(self, model_id: str) -> None:
        super().__init__(f"device model {model_id!r} does not exist", details={"field": "model", "model": model_id})


class DeviceModelExists(Conflict):
    code = "device_model_exists"


class SerialNumberTaken(Conflict):
    code = "serial_number_taken"


class TerminalNotFound(NotFound):
    code = "terminal_not_found"


class DeviceAlreadyBound(Conflict):
    code = "device_already_bound"


class TerminalOccupied(Conflict):
    code = "terminal_occupied"


class DeviceStateInvalid(InvalidState):
    """The device's status does not allow this change (e.g. binding a retired device)."""


class DeviceAuthFailed(Unauthorized):
    """Wrong, unknown, disabled or retired: one answer, so a caller learns nothing."""


class MalformedUplink(ValidationFailed):
    """An uplink payload that is not the JSON its topic expects; logged and ignored."""

    code = "malformed_uplink"
