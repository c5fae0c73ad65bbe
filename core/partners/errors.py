"""Partner registry errors (the admin API's codes; the SNAP services answer ``core.snap.codes``)."""

from __future__ import annotations

from qris_soundbox.core.errors import Conflict, NotFound, ValidationFailed
from qris_soundbox.core.snap.codes import SnapError


class PartnerNotFound(NotFound):
    pass


class ClientKeyTaken(Conflict):
    """Another partner (or acquirer) already signs with this client key."""

    code = "client_key_taken"


class PartnerInputInvalid(ValidationFailed):
    pass


class NotificationNotFound(NotFound):
    pass


# SNAP refusals of the partner services beyond core.snap.codes' common ones.


class DuplicatePartnerReference(SnapError):
    """The partner already used this partnerReferenceNo for another QR."""

    status = 409
    case = 1
    title = "Duplicate partnerReferenceNo"


class DuplicatePartnerRefund(SnapError):
    """The partner already used this partnerRefundNo for another refund."""

    status = 409
    case = 1
    title = "Duplicate partnerRefundNo"


class RequestInProgress(SnapError):
    """Not a refusal: the acquirer has not answered yet (the refund stays pending, docs/partners.md)."""

    status = 202
    case = 0
    title = "Request In Progress"


class PaidBill(SnapError):
    status = 404
    case = 14
    title = "Paid Bill"


class TransactionExpired(SnapError):
    status = 403
    case = 0
    title = "Transaction Expired"


class FeatureNotAllowed(SnapError):
    """What the standard calls a service the provider does not offer (yet)."""

    status = 403
    case = 15
    title = "Transaction Not Permitted"
