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


class TerminalCodeAmbiguous(Conflict):
    """Terminal codes are unique per merchant: a code two merchants share needs the terminal id."""

    code = "terminal_code_ambiguous"


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


# --- commands (core/devices/commands.py)


class CommandNotSupported(ValidationFailed):
    code = "command_not_supported"
    status = 422


class CommandNotFound(NotFound):
    code = "command_not_found"


class CommandMessageMismatch(ValidationFailed):
    code = "command_message_mismatch"
    status = 422


class CommandClosed(InvalidState):
    """The command already has its outcome (acked, failed or expired); a late or different ack changes nothing."""

    code = "command_closed"


# --- the config shadow (core/devices/config_shadow.py)


class _CannotConfigure(ValidationFailed):
    # 422: well-formed, but this device's model cannot do it.
    status = 422


class VolumeOutOfRange(_CannotConfigure):
    code = "volume_out_of_range"


class ConfigNotSupported(_CannotConfigure):
    code = "config_not_supported"


class UnknownConfigVersion(_CannotConfigure):
    code = "unknown_config_version"


class ConfigVersionMismatch(_CannotConfigure):
    code = "config_version_mismatch"


class UnknownConfigMessage(NotFound):
    code = "unknown_message"
