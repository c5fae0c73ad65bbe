"""Finance errors with their stable codes."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, DomainError, InvalidState, NotFound, ValidationFailed


class MerchantNotFound(NotFound):
    code = "merchant_not_found"


class SettlementBatchNotFound(NotFound):
    code = "settlement_batch_not_found"


class SettlementStateInvalid(InvalidState):
    """A lifecycle move the batch's status does not allow (stable code ``invalid_state``)."""


class NothingToReprocess(InvalidState):
    code = "nothing_to_reprocess"


class AdjustedPayableNegative(DomainError):
    """An adjustment (or a reprocess carrying adjustments) would pay the merchant less than zero."""

    code = "adjusted_payable_negative"
    status = 422


class SettlementConflict(Conflict):
    code = "settlement_conflict"


class FinanceInputInvalid(ValidationFailed):
    pass


class ExportJobNotFound(NotFound):
    code = "export_job_not_found"


class ExportNotReady(InvalidState):
    code = "export_not_ready"


class ExportExpired(DomainError):
    code = "export_expired"
    status = 410


class ExportTooLarge(DomainError):
    code = "export_too_large"
    status = 422


class BankCodeUnknown(ValidationFailed):
    code = "bank_code_unknown"


class PayoutAccountChangeBlocked(Conflict):
    """The merchant has a pending batch: changing where it is paid now is how payouts get redirected."""

    code = "payout_account_change_blocked"


class PayoutAccountMissing(InvalidState):
    code = "payout_account_missing"


class ReportMalformed(ValidationFailed):
    """An acquirer report that cannot be imported; ``code`` says why (``report_bad_header``,
    ``report_bad_amount``, ``report_bad_date``, ``report_bad_line``, ``report_duplicate_reference``,
    ``report_empty``, ``report_not_csv``) and ``details.line`` where. Nothing of it is stored."""

    code = "report_malformed"


class ReportTooLarge(DomainError):
    code = "report_too_large"
    status = 413


class AcquirerReportNotFound(NotFound):
    code = "acquirer_report_not_found"


class ReportExceptionNotFound(NotFound):
    code = "report_exception_not_found"


class UnknownMdrCategory(ValidationFailed):
    code = "unknown_mdr_category"


class MdrScheduleOverlap(Conflict):
    """Another schedule already prices some of these payments (the same category, day and amount)."""

    code = "mdr_schedule_overlap"


class MdrScheduleInPast(ValidationFailed):
    """A schedule starts today or later: repricing days already paid would rewrite history."""

    code = "mdr_schedule_in_past"


class SettlementHolidayInPast(ValidationFailed):
    """An added non-working day must be after today (Jakarta): the past has been paid by its own calendar."""

    code = "settlement_holiday_in_past"


class SettlementHolidayBatched(ValidationFailed):
    """A batch already made pays on or after this day: adding it would make that batch's value date wrong."""

    code = "settlement_holiday_batched"


class SettlementHolidayExists(Conflict):
    code = "settlement_holiday_exists"
