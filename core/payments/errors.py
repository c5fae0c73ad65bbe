"""Payment errors with their stable codes (HTTP and MQTT error downlinks alike)."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, DomainError, InvalidState, NotFound, Unauthorized, ValidationFailed


class CallbackSignatureInvalid(Unauthorized):
    code = "invalid_signature"


class CallbackTimestampStale(Unauthorized):
    code = "stale_timestamp"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"


class TerminalNotFound(DomainError):
    code = "unknown_terminal"
    status = 422


class MerchantNotActive(InvalidState):
    code = "merchant_not_active"


class AmountMismatch(DomainError):
    code = "amount_mismatch"
    status = 422


class AlreadyPaid(Conflict):
    code = "already_paid"


class TransactionFinal(InvalidState):
    code = "transaction_final"


class PaymentInputInvalid(ValidationFailed):
    pass


class MerchantQrisIncomplete(InvalidState):
    """The merchant lacks what a QRIS payload must carry (NMID, postal code)."""

    code = "merchant_qris_incomplete"


class DeviceNotBound(InvalidState):
    code = "device_not_bound"


class DeviceNotActive(InvalidState):
    code = "device_not_active"


class CapabilityNotSupported(DomainError):
    """The device's model cannot show a dynamic QR."""

    code = "capability_not_supported"
    status = 422


class NothingToRetry(InvalidState):
    """Only a paid transaction with a bound soundbox can be announced again."""

    code = "nothing_to_retry"


class AmountAboveLimit(DomainError):
    """Above ``QRIS_MAX_AMOUNT``, Bank Indonesia's limit for one QRIS payment: no QR is made for it."""

    code = "amount_above_limit"
    status = 422
