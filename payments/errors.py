"""Payment errors: stable codes for callers (orders, the notify endpoint, jobs)."""

from django.utils.translation import gettext_lazy as _

from core.errors import Conflict, DomainError, InvalidInput, NotFound


class UnknownPaymentProvider(InvalidInput):
    code = "unknown_payment_provider"
    default_message = _("This payment provider is not configured.")


class PaymentProviderError(DomainError):
    """The provider could not be reached or answered with a server error."""

    code = "payment_provider_error"
    status_code = 502
    default_message = _("The payment provider is unavailable. Please try again.")


class PaymentProviderTimeout(PaymentProviderError):
    """The provider did not answer within the timeout; the request may still take effect."""

    code = "payment_provider_timeout"
    status_code = 504
    default_message = _("The payment provider did not answer in time. Please try again.")


class PaymentProviderRejected(PaymentProviderError):
    """The provider refused the request (4xx); detail carries its code and message."""

    code = "payment_provider_rejected"
    status_code = 502
    default_message = _("The payment provider refused the request.")


class NotifyBadSignature(DomainError):
    code = "bad_signature"
    status_code = 401
    default_message = _("The notification signature is not valid.")


class NotifyStaleTimestamp(DomainError):
    code = "stale_timestamp"
    status_code = 400
    default_message = _("The notification timestamp is too old or too far in the future.")


class NotifyMalformed(DomainError):
    code = "malformed_notify"
    status_code = 400
    default_message = _("The notification is malformed.")


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    default_message = _("No such payment.")


class PaymentMismatch(Conflict):
    """A start or notify disagrees with the stored payment (amount, provider, brand)."""

    code = "payment_mismatch"
    default_message = _("The payment does not match the existing payment for this order.")


class PaymentAlreadySucceeded(Conflict):
    code = "payment_already_succeeded"
    default_message = _("This order is already paid.")


class PaymentClosed(Conflict):
    code = "payment_closed"
    default_message = _("The payment for this order was closed.")


class RefundNotAllowed(Conflict):
    code = "refund_not_allowed"
    default_message = _("Only a paid payment can be refunded.")


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"
    default_message = _("The refund is larger than the amount left to refund.")


class RefundRefReused(Conflict):
    code = "refund_ref_reused"
    default_message = _("This refund reference was already used with a different amount.")


class RefundNotFound(NotFound):
    code = "refund_not_found"
    default_message = _("No such refund.")


class PaymentAccountUnknown(NotFound):
    """A notify URL naming a brand with no merchant account of its own."""

    code = "payment_account_not_found"
    default_message = _("No merchant account for this notify URL.")


class NotifyAccountMismatch(DomainError):
    """A notify verified with one merchant account about a payment made to another
    (another brand's key, or the wrong notify URL): changes nothing."""

    code = "payment_account_mismatch"
    status_code = 403
    default_message = _("This notification is not about a payment of this merchant account.")


class PaymentAccountMissing(PaymentProviderError):
    """A payment's merchant account is no longer configured: its queries and refunds
    cannot be signed (a person restores the account or refunds by hand)."""

    code = "payment_account_missing"
    default_message = _("The merchant account of this payment is no longer configured.")
