"""One state machine per order type, declared with django-fsm-2.

Each order type is a proxy of ``Order`` that declares its own transitions on
the one protected ``status`` field. A transition method only checks and
changes fields in memory; orders.services locks the row, calls it, saves, and
writes the audit event in the same transaction.

``custom["actors"]`` says which kinds of actor may trigger a transition (see
core.actors.ActorKind); it feeds ``allowed_actions`` for the POS and buyers.
docs/state-machines.md is generated from these classes
(``manage.py order_docs``).
"""

from django.utils.translation import gettext_lazy as _
from django_fsm import transition

from core.actors import ActorKind
from orders.models.order import ORDER_MACHINES, Order, OrderStatus, OrderType

S = OrderStatus
POS, STAFF, SYSTEM = ActorKind.POS.value, ActorKind.STAFF.value, ActorKind.SYSTEM.value
CUSTOMER, PLATFORM, PAYMENT = ActorKind.CUSTOMER.value, ActorKind.PLATFORM.value, ActorKind.PAYMENT.value

STORE_SIDE = [POS, STAFF, PLATFORM]


def _custom(label, *actors: str) -> dict:
    return {"label": label, "actors": list(actors)}


class SharedTransitions:
    """The transitions every order type has, the same way, declared once: each
    machine below lists it first in its bases. The rest of each graph is
    written out in its own class."""

    @transition(field="status", source=S.PENDING_PAYMENT, target=S.PAID, custom=_custom(_("Pay"), PAYMENT, SYSTEM))
    def pay(self, *, now, provider="", txn_no="", amount=None):
        self._set_paid(now=now, provider=provider, txn_no=txn_no, amount=self.total if amount is None else amount)


class DeliveryOrder(SharedTransitions, Order):
    """Delivered by the platform's or the store's own riders."""

    class Meta:
        proxy = True
        verbose_name = _("delivery order")
        verbose_name_plural = _("delivery orders")

    @transition(field="status", source=S.PAID, target=S.ACCEPTED,
                custom=_custom(_("Accept"), POS, STAFF, PLATFORM, SYSTEM))
    def accept(self, *, now, prep_minutes=None):
        self._set_accepted(now=now, prep_minutes=prep_minutes)

    @transition(field="status", source=S.PAID, target=S.CANCELLED,
                custom=_custom(_("Reject"), POS, STAFF, PLATFORM, SYSTEM))
    def reject(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    @transition(field="status", source=S.ACCEPTED, target=S.READY, custom=_custom(_("Meal ready"), *STORE_SIDE))
    def mark_ready(self, *, now, pickup_code=""):
        self._set_ready(now=now, pickup_code=pickup_code)

    @transition(field="status", source=[S.ACCEPTED, S.READY], target=S.DISPATCHED,
                custom=_custom(_("Dispatch"), *STORE_SIDE))
    def dispatch(self, *, now, courier_name="", courier_phone=""):
        self.dispatched_at = now
        self.courier_name = courier_name
        self.courier_phone = courier_phone

    @transition(field="status", source=S.DISPATCHED, target=S.DELIVERED, custom=_custom(_("Delivered"), *STORE_SIDE))
    def deliver(self, *, now):
        self.confirmed_at = now

    @transition(field="status", source=S.DELIVERED, target=S.COMPLETED,
                custom=_custom(_("Complete"), SYSTEM, STAFF, PLATFORM))
    def complete(self, *, now):
        self.completed_at = now

    # The customer may cancel only before the store accepts; after that only
    # the store, the platform or a system job can.
    @transition(field="status", source=[S.PENDING_PAYMENT, S.PAID], target=S.CANCELLED,
                custom=_custom(_("Cancel"), CUSTOMER, STAFF, PLATFORM, SYSTEM))
    @transition(field="status", source=[S.ACCEPTED, S.READY], target=S.CANCELLED,
                custom=_custom(_("Cancel"), STAFF, PLATFORM, SYSTEM))
    def cancel(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    # A whole-order refund: after-sales (a system step acting on a decision) at any time
    # after payment; the platform once the goods left. A person asks through
    # after-sales (aftersales.services), never calls it directly.
    @transition(field="status", source=[S.PAID, S.ACCEPTED, S.READY], target=S.REFUNDED,
                custom=_custom(_("Refund"), SYSTEM))
    @transition(field="status", source=[S.DISPATCHED, S.DELIVERED], target=S.REFUNDED,
                custom=_custom(_("Refund"), PLATFORM, SYSTEM))
    def refund(self, *, now, reason_code="", reason=""):
        self.cancel_reason_code = reason_code
        self.cancel_reason = reason


class PickupOrder(SharedTransitions, Order):
    """Ordered ahead, collected at the counter with a pickup code."""

    class Meta:
        proxy = True
        verbose_name = _("pickup order")
        verbose_name_plural = _("pickup orders")

    @transition(field="status", source=S.PAID, target=S.ACCEPTED,
                custom=_custom(_("Accept"), POS, STAFF, PLATFORM, SYSTEM))
    def accept(self, *, now, prep_minutes=None):
        self._set_accepted(now=now, prep_minutes=prep_minutes)

    @transition(field="status", source=S.PAID, target=S.CANCELLED,
                custom=_custom(_("Reject"), POS, STAFF, PLATFORM, SYSTEM))
    def reject(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    @transition(field="status", source=S.ACCEPTED, target=S.READY, custom=_custom(_("Meal ready"), *STORE_SIDE))
    def mark_ready(self, *, now, pickup_code=""):
        self._set_ready(now=now, pickup_code=pickup_code)

    @transition(field="status", source=S.READY, target=S.PICKED_UP, custom=_custom(_("Picked up"), *STORE_SIDE))
    def pick_up(self, *, now):
        self.confirmed_at = now

    @transition(field="status", source=S.PICKED_UP, target=S.COMPLETED,
                custom=_custom(_("Complete"), SYSTEM, STAFF, PLATFORM))
    def complete(self, *, now):
        self.completed_at = now

    # The customer may cancel only before the store accepts; after that only
    # the store, the platform or a system job can.
    @transition(field="status", source=[S.PENDING_PAYMENT, S.PAID], target=S.CANCELLED,
                custom=_custom(_("Cancel"), CUSTOMER, STAFF, PLATFORM, SYSTEM))
    @transition(field="status", source=[S.ACCEPTED, S.READY], target=S.CANCELLED,
                custom=_custom(_("Cancel"), STAFF, PLATFORM, SYSTEM))
    def cancel(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    @transition(field="status", source=[S.PAID, S.ACCEPTED, S.READY], target=S.REFUNDED,
                custom=_custom(_("Refund"), SYSTEM))
    @transition(field="status", source=S.PICKED_UP, target=S.REFUNDED,
                custom=_custom(_("Refund"), PLATFORM, SYSTEM))
    def refund(self, *, now, reason_code="", reason=""):
        self.cancel_reason_code = reason_code
        self.cancel_reason = reason


class DineInOrder(SharedTransitions, Order):
    """Scanned and ordered at the table; served by the staff."""

    class Meta:
        proxy = True
        verbose_name = _("dine-in order")
        verbose_name_plural = _("dine-in orders")

    @transition(field="status", source=S.PAID, target=S.ACCEPTED, custom=_custom(_("Accept"), POS, STAFF, SYSTEM))
    def accept(self, *, now, prep_minutes=None):
        self._set_accepted(now=now, prep_minutes=prep_minutes)

    @transition(field="status", source=S.PAID, target=S.CANCELLED, custom=_custom(_("Reject"), POS, STAFF, SYSTEM))
    def reject(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    @transition(field="status", source=S.ACCEPTED, target=S.READY, custom=_custom(_("Meal ready"), POS, STAFF))
    def mark_ready(self, *, now, pickup_code=""):
        self._set_ready(now=now, pickup_code=pickup_code)

    @transition(field="status", source=S.READY, target=S.SERVED, custom=_custom(_("Served"), POS, STAFF))
    def serve(self, *, now):
        self.confirmed_at = now

    @transition(field="status", source=S.SERVED, target=S.COMPLETED, custom=_custom(_("Complete"), SYSTEM, STAFF))
    def complete(self, *, now):
        self.completed_at = now

    @transition(field="status", source=[S.PENDING_PAYMENT, S.PAID], target=S.CANCELLED,
                custom=_custom(_("Cancel"), CUSTOMER, STAFF, SYSTEM))
    @transition(field="status", source=S.ACCEPTED, target=S.CANCELLED, custom=_custom(_("Cancel"), STAFF, SYSTEM))
    def cancel(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    @transition(field="status", source=[S.PAID, S.ACCEPTED, S.READY, S.SERVED], target=S.REFUNDED,
                custom=_custom(_("Refund"), SYSTEM))
    def refund(self, *, now, reason_code="", reason=""):
        self.cancel_reason_code = reason_code
        self.cancel_reason = reason


class VoucherOrder(SharedTransitions, Order):
    """E-voucher / gift card: no POS; the OMS issues codes, a redemption uses them."""

    class Meta:
        proxy = True
        verbose_name = _("voucher order")
        verbose_name_plural = _("voucher orders")

    # Only the OMS route issues (orders.services.vouchers records the codes, then
    # runs this): an order issued by hand would have no codes to redeem.
    @transition(field="status", source=S.PAID, target=S.ISSUED, custom=_custom(_("Issue vouchers"), SYSTEM))
    def issue(self, *, now):
        self.accepted_at = now

    @transition(field="status", source=S.ISSUED, target=S.REDEEMED,
                custom=_custom(_("Redeem"), POS, STAFF, SYSTEM))
    def redeem(self, *, now):
        self.confirmed_at = now

    @transition(field="status", source=S.REDEEMED, target=S.COMPLETED, custom=_custom(_("Complete"), SYSTEM, STAFF))
    def complete(self, *, now):
        self.completed_at = now

    @transition(field="status", source=[S.PENDING_PAYMENT, S.PAID], target=S.CANCELLED,
                custom=_custom(_("Cancel"), CUSTOMER, STAFF, SYSTEM))
    def cancel(self, *, now, reason_code="", reason=""):
        self._set_cancelled(now=now, reason_code=reason_code, reason=reason)

    @transition(field="status", source=[S.PAID, S.ISSUED], target=S.REFUNDED, custom=_custom(_("Refund"), SYSTEM))
    def refund(self, *, now, reason_code="", reason=""):
        self.cancel_reason_code = reason_code
        self.cancel_reason = reason


ORDER_MACHINES.update({
    OrderType.DELIVERY: DeliveryOrder,
    OrderType.PICKUP: PickupOrder,
    OrderType.DINE_IN: DineInOrder,
    OrderType.VOUCHER: VoucherOrder,
})

# Where each type starts when created: own channels before payment; platform
# orders arrive paid (orders.services.order_create takes ``paid=True``).
INITIAL_STATUS = S.PENDING_PAYMENT


def machine_class_for(order_type: str) -> type[Order]:
    try:
        return ORDER_MACHINES[order_type]
    except KeyError:
        raise ValueError(f"unknown order type {order_type!r}") from None


def machine_actions() -> frozenset[str]:
    """The names of every transition of every order type (what ``order_transition`` may call)."""
    return frozenset(t.name for machine in ORDER_MACHINES.values()
                     for t in machine._meta.get_field("status").get_all_transitions(machine))


def machine_graph(order_type: str) -> list[tuple[str, str, str]]:
    """(source, action, target) edges of one type's machine, sorted for stable docs."""
    machine = machine_class_for(order_type)
    edges = {
        (str(t.source), t.name, str(t.target))
        for t in machine._meta.get_field("status").get_all_transitions(machine)
    }
    order = [s.value for s in OrderStatus]
    return sorted(edges, key=lambda e: (order.index(e[0]), order.index(e[2]), e[1]))


def machine_states(order_type: str) -> list[str]:
    """Every status an order of this type can be in, in declaration order."""
    states = {INITIAL_STATUS.value}
    for source, _action, target in machine_graph(order_type):
        states.update((source, target))
    return [s.value for s in OrderStatus if s.value in states]
