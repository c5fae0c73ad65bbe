"""Merchant onboarding errors, each with its stable code and HTTP status (docs/merchants.md)."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, Forbidden, InvalidState, NotFound, ValidationFailed


class MerchantNotFound(NotFound):
    pass


class OutletNotFound(NotFound):
    pass


class TerminalNotFound(NotFound):
    pass


class NmidTaken(Conflict):
    """Another merchant already has this NMID (the QRIS national merchant id is unique)."""

    code = "nmid_taken"

    def __init__(self) -> None:
        super().__init__("another merchant already has this NMID", details={"field": "nmid"})


class MerchantNotEditable(InvalidState):
    """A rejected merchant is final: its details no longer change."""


class MerchantNotPendingReview(InvalidState):
    """Approve and reject decide a merchant pending review, and only that."""


class MerchantClosedToChildren(InvalidState):
    """Outlets and terminals are added while a merchant is pending review or active."""


class FeeAboveSchedule(ValidationFailed):
    """A merchant's fee_bps contract may only be below its MDR category's schedule (SPEC §15)."""

    code = "fee_above_schedule"


class IdentityChangeNeedsApproval(Conflict):
    """An approved merchant's identity changes only through a proposal a second person applies."""

    code = "identity_change_needs_approval"


class IdentityChangePending(Conflict):
    """The merchant already has an open identity change: decide it first."""

    code = "identity_change_pending"


class IdentityChangeNotFound(NotFound):
    pass


class IdentityChangeDecided(InvalidState):
    """The change was already applied or rejected."""

    code = "identity_change_decided"


class IdentityChangeStale(Conflict):
    """The merchant's identity moved since the proposal: reject it and propose again."""

    code = "identity_change_stale"


class SecondApproverRequired(Forbidden):
    """Who proposed an identity change cannot apply it (four eyes)."""

    code = "second_approver_required"
