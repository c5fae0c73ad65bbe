"""Refund errors with their stable codes (the admin API's; partners hear SNAP's, core/partners/services.py)."""

from __future__ import annotations

from qris_soundbox.core.errors import Forbidden, InvalidState, NotFound, ValidationFailed


class RefundInputInvalid(ValidationFailed):
    pass


class RefundAmountInvalid(ValidationFailed):
    code = "refund_amount_invalid"


class TransactionNotRefundable(InvalidState):
    """Only a paid or partially refunded payment can be refunded."""

    code = "transaction_not_refundable"


class RefundExceedsRemaining(InvalidState):
    """The refund is above what is left once every refund not failed or rejected is counted."""

    code = "refund_exceeds_remaining"


class RefundNotFound(NotFound):
    code = "refund_not_found"


class RefundStateInvalid(InvalidState):
    code = "refund_state_invalid"


class RefundSelfApproval(Forbidden):
    """Four eyes: whoever asked for a refund cannot approve it."""

    code = "refund_self_approval"
