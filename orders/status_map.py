"""The status mapping table (状态映射表), declared once.

For every (order type, system status) it gives each audience its projection:
the merchant/store back-office label, the buyer label, the POS status code,
and each delivery platform's own status code (PLATFORMS.md). A platform cell
is ``NOT_CARRIED`` only when that platform never carries the order type.

tests/orders/test_status_map.py fails when any cell of any reachable
(type, status) is missing; the back-office page and docs/status-mapping.md
are rendered from this table.

The refund state (``Order.refund_state``: none / partial / full, written by
after-sales) has its own projection per audience, ``REFUND_STATE_MAP``, shown
beside the status (``status_with_refund_label``): a partial refund keeps the
order's status, a full one usually moves it to ``refunded``.
"""

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from orders.models import OrderRefundState as R
from orders.models import OrderStatus as S
from orders.models import OrderType as T

NOT_CARRIED = "—"


class PosStatus:
    """POS projection codes (CONTRACTS.md ``pos_status``)."""

    UNPAID = "unpaid"  # never delivered to the POS
    NEW = "new"
    ACCEPTED = "accepted"
    READY = "ready"
    DISPATCHED = "dispatched"
    DONE = "done"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    REDEEMABLE = "redeemable"

    ALL = (UNPAID, NEW, ACCEPTED, READY, DISPATCHED, DONE, CANCELLED, REFUNDED, REDEEMABLE)


AUDIENCES = ("merchant", "buyer", "pos", "meituan", "eleme")
AUDIENCE_LABELS = {
    "merchant": _("Merchant / store"),
    "buyer": _("Buyer"),
    "pos": _("POS"),
    "meituan": _("Meituan status code"),
    "eleme": _("Ele.me status"),
}


@dataclass(frozen=True)
class StatusView:
    merchant: str
    buyer: str
    pos: str
    meituan: int | str
    eleme: str

    def for_audience(self, audience: str):
        return getattr(self, audience)


def _v(merchant, buyer, pos, meituan, eleme) -> StatusView:
    return StatusView(merchant=merchant, buyer=buyer, pos=pos, meituan=meituan, eleme=eleme)


# Meituan: 1 submitted, 2 pushable, 3 merchant received, 4 confirmed,
# 6 delivering, 8 completed, 9 cancelled. Ele.me: unprocessed, valid, invalid, settled.
STATUS_MAP: dict[str, dict[str, StatusView]] = {
    T.DELIVERY: {
        S.PENDING_PAYMENT: _v(_("Unpaid"), _("Awaiting payment"), PosStatus.UNPAID, 1, "unprocessed"),
        S.PAID: _v(_("New order"), _("Waiting for the store"), PosStatus.NEW, 2, "unprocessed"),
        S.ACCEPTED: _v(_("Preparing"), _("Preparing"), PosStatus.ACCEPTED, 4, "valid"),
        S.READY: _v(_("Meal ready"), _("Waiting for the courier"), PosStatus.READY, 4, "valid"),
        S.DISPATCHED: _v(_("Out for delivery"), _("On the way"), PosStatus.DISPATCHED, 6, "valid"),
        S.DELIVERED: _v(_("Delivered"), _("Delivered"), PosStatus.DONE, 8, "valid"),
        S.COMPLETED: _v(_("Completed"), _("Completed"), PosStatus.DONE, 8, "settled"),
        S.CANCELLED: _v(_("Cancelled"), _("Cancelled"), PosStatus.CANCELLED, 9, "invalid"),
        S.REFUNDED: _v(_("Refunded"), _("Refunded"), PosStatus.REFUNDED, 9, "invalid"),
    },
    T.PICKUP: {
        S.PENDING_PAYMENT: _v(_("Unpaid"), _("Awaiting payment"), PosStatus.UNPAID, 1, "unprocessed"),
        S.PAID: _v(_("New order"), _("Waiting for the store"), PosStatus.NEW, 2, "unprocessed"),
        S.ACCEPTED: _v(_("Preparing"), _("Preparing"), PosStatus.ACCEPTED, 4, "valid"),
        S.READY: _v(_("Ready for pickup"), _("Ready for pickup"), PosStatus.READY, 4, "valid"),
        S.PICKED_UP: _v(_("Picked up"), _("Picked up"), PosStatus.DONE, 8, "valid"),
        S.COMPLETED: _v(_("Completed"), _("Completed"), PosStatus.DONE, 8, "settled"),
        S.CANCELLED: _v(_("Cancelled"), _("Cancelled"), PosStatus.CANCELLED, 9, "invalid"),
        S.REFUNDED: _v(_("Refunded"), _("Refunded"), PosStatus.REFUNDED, 9, "invalid"),
    },
    T.DINE_IN: {
        S.PENDING_PAYMENT: _v(_("Unpaid"), _("Awaiting payment"), PosStatus.UNPAID, NOT_CARRIED, NOT_CARRIED),
        S.PAID: _v(_("New order"), _("Waiting for the kitchen"), PosStatus.NEW, NOT_CARRIED, NOT_CARRIED),
        S.ACCEPTED: _v(_("Preparing"), _("Preparing"), PosStatus.ACCEPTED, NOT_CARRIED, NOT_CARRIED),
        S.READY: _v(_("Ready to serve"), _("Coming to your table"), PosStatus.READY, NOT_CARRIED, NOT_CARRIED),
        S.SERVED: _v(_("Served"), _("Served"), PosStatus.DONE, NOT_CARRIED, NOT_CARRIED),
        S.COMPLETED: _v(_("Completed"), _("Completed"), PosStatus.DONE, NOT_CARRIED, NOT_CARRIED),
        S.CANCELLED: _v(_("Cancelled"), _("Cancelled"), PosStatus.CANCELLED, NOT_CARRIED, NOT_CARRIED),
        S.REFUNDED: _v(_("Refunded"), _("Refunded"), PosStatus.REFUNDED, NOT_CARRIED, NOT_CARRIED),
    },
    T.VOUCHER: {
        S.PENDING_PAYMENT: _v(_("Unpaid"), _("Awaiting payment"), PosStatus.UNPAID, NOT_CARRIED, NOT_CARRIED),
        S.PAID: _v(_("Paid, issuing"), _("Issuing your voucher"), PosStatus.UNPAID, NOT_CARRIED, NOT_CARRIED),
        S.ISSUED: _v(_("Voucher issued"), _("Ready to use"), PosStatus.REDEEMABLE, NOT_CARRIED, NOT_CARRIED),
        S.REDEEMED: _v(_("Voucher redeemed"), _("Used"), PosStatus.DONE, NOT_CARRIED, NOT_CARRIED),
        S.COMPLETED: _v(_("Completed"), _("Completed"), PosStatus.DONE, NOT_CARRIED, NOT_CARRIED),
        S.CANCELLED: _v(_("Cancelled"), _("Cancelled"), PosStatus.CANCELLED, NOT_CARRIED, NOT_CARRIED),
        S.REFUNDED: _v(_("Refunded"), _("Refunded"), PosStatus.REFUNDED, NOT_CARRIED, NOT_CARRIED),
    },
}

# Which order types each platform carries; everywhere else its cell is NOT_CARRIED.
PLATFORM_ORDER_TYPES = {"meituan": {T.DELIVERY, T.PICKUP}, "eleme": {T.DELIVERY, T.PICKUP}}


class PosRefundState:
    """POS projection of the refund state (``refund_state`` beside ``pos_status``)."""

    NONE = "none"
    PARTIAL = "partial"
    FULL = "full"

    ALL = (NONE, PARTIAL, FULL)


REFUND_AUDIENCE_LABELS = {
    **AUDIENCE_LABELS,
    "meituan": _("Meituan refund_status"),
    "eleme": _("Ele.me refundStatus"),
}

# Shown where nothing is shown: the buyer sees no refund label on an order nothing went back for.
NOT_SHOWN = ""

# Meituan: ``refund_status`` of the order (0 none, 1 applied, 2 agreed, 3 rejected); Ele.me:
# ``refundStatus`` (noRefund, applied, rejected, successful). Both say "agreed / successful" for
# a part refund as for a whole one; the order's own status tells them apart (a whole refund
# cancels the order there: 9 / invalid). While a customer's application is open the platform
# shows 1 / applied whatever went back before: that is the request's state, not the order's.
# Platform cells apply to the order types the platform carries (PLATFORM_ORDER_TYPES).
REFUND_STATE_MAP: dict[str, StatusView] = {
    R.NONE: _v(_("Not refunded"), NOT_SHOWN, PosRefundState.NONE, 0, "noRefund"),
    R.PARTIAL: _v(_("Partly refunded"), _("Partly refunded"), PosRefundState.PARTIAL, 2, "successful"),
    R.FULL: _v(_("Fully refunded"), _("Refunded"), PosRefundState.FULL, 2, "successful"),
}


def status_view(*, order_type: str, status: str) -> StatusView:
    return STATUS_MAP[order_type][status]


def status_label(*, order_type: str, status: str, audience: str) -> str:
    return str(status_view(order_type=order_type, status=status).for_audience(audience))


def platform_status_to_system(*, platform: str, order_type: str, code) -> list[str]:
    """System statuses a platform code may stand for (a platform code is coarser)."""
    return [status for status, view in STATUS_MAP[order_type].items() if view.for_audience(platform) == code]


def refund_state_view(*, refund_state: str) -> StatusView:
    return REFUND_STATE_MAP[refund_state]


def refund_state_label(*, refund_state: str, audience: str) -> str:
    return str(refund_state_view(refund_state=refund_state).for_audience(audience))


def status_with_refund_label(*, order_type: str, status: str, refund_state: str, audience: str) -> str:
    """The status label, with the refund state's label after it when something went back
    and the status does not already say it ("Delivered · Partly refunded"; a refunded
    order is just "Refunded"; "Cancelled · Refunded" for an order cancelled after a part
    refund). For the people audiences (merchant, buyer)."""
    label = status_label(order_type=order_type, status=status, audience=audience)
    if refund_state == R.NONE or status == S.REFUNDED:
        return label
    refund = refund_state_label(refund_state=refund_state, audience=audience)
    return f"{label} · {refund}" if refund and refund != label else label
