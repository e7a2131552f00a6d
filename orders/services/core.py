"""Writes to orders. Every state change goes through ``order_transition``.

Preconditions and guarantees of every service here:
- it opens (or joins) a transaction and takes the order's row lock through
  ``orders.locks.order_lock`` before reading the status;
- the transition method of the order type's machine is the only thing that
  changes ``status``; an ``OrderEvent`` row is written in the same transaction;
- a move the machine does not allow raises ``core.errors.TransitionNotAllowed``
  (409) with the current status and the allowed actions in ``detail``.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransition, can_proceed

from accounts.models import Brand
from core.actors import Actor
from core.errors import Conflict, InvalidInput, TransitionNotAllowed
from inventory.services import stock_give_back_part, stock_release
from orders.locks import order_lock
from orders.models import Order, OrderAction, OrderReasonCode, OrderRefundState, OrderStatus, OrderType
from orders.models.machines import machine_actions
from orders.fulfilment.registry import fulfilment_record
from orders.services.events import event_write
from orders.services.refunds import order_refund_schedule
from orders.services.sync import order_sync_enqueue
from payments.services import payment_close
from promotions.services import (
    coupon_release,
    coupon_return,
    flash_sale_limit_release,
    flash_sale_limit_release_units,
)


def order_transition(
    *, order_id: int, action: str, actor: Actor, reason_code: str = "", reason: str = "",
    now: datetime | None = None, expected_store_id: int | None = None, **params,
) -> Order:
    """Apply one transition of the order type's machine and record it.

    Takes the order's row lock; two racing transitions serialize on it and the
    loser sees the winner's status, so exactly one of them happens. Actions
    the actor's kind may not trigger are refused like illegal moves.
    """
    now = now or timezone.now()
    with transaction.atomic():
        order = order_lock(order_id=order_id, store_id=expected_store_id).as_machine()
        method = getattr(order, action, None) if action in TRANSITION_ACTIONS else None
        if method is None or not hasattr(method, "_django_fsm") or not can_proceed(method):
            raise _not_allowed(order, action, actor)
        actors = _transition_actors(order, action)
        if actors is not None and actor.kind not in actors:
            raise _not_allowed(order, action, actor)
        from_status = order.status
        if action in (OrderAction.CANCEL, OrderAction.REJECT, OrderAction.REFUND):
            params.setdefault("reason_code", reason_code)
            params.setdefault("reason", reason)
        before = {name: getattr(order, name) for name in TRANSITION_FIELDS}
        method(now=now, **params)
        changed = [name for name in TRANSITION_FIELDS if getattr(order, name) != before[name]]
        try:
            with transaction.atomic():  # a savepoint, so a refused save leaves the transaction usable
                order.save(update_fields=["status", "updated_at", *changed])
        except ConcurrentTransition:  # someone changed it without the lock: never both
            raise _not_allowed(order, action, actor, reread=True) from None
        event_write(order=order, action=action, from_status=from_status, actor=actor,
                     reason_code=reason_code, reason=reason,
                     data={k: str(v) for k, v in params.items() if k not in ("reason", "reason_code", "now")})
        order_sync_enqueue(order=order, action=action, actor=actor, reason_code=reason_code, reason=reason)
        fulfilment_record(order=order, action=action, from_status=from_status)
        if order.status == OrderStatus.CANCELLED:
            _order_release_resources(order=order, actor=actor, was_paid=from_status != OrderStatus.PENDING_PAYMENT)
        elif order.status == OrderStatus.REFUNDED:
            _order_refund_resources(order=order, actor=actor, from_status=from_status)
    return order


def _order_release_resources(*, order: Order, actor: Actor, was_paid: bool) -> None:
    """A cancelled order gives back its stock, coupons (used ones too, once paid: the
    order is refunded in full) and purchase limits; an own-channel order that was paid
    is refunded after commit: what after-sales has not given back already (the order's
    ``refunded_amount`` becomes what was paid, ``refund_state`` full). Every release is idempotent. Runs inside the cancelling
    transaction."""
    # In the order placement locks them (coupons, flash-sale counters, stock), so a
    # release never waits in a cycle with a placement or a batch of them.
    if was_paid:
        coupon_return(order_ref=order.order_no)
    else:
        coupon_release(order_ref=order.order_no)
    flash_sale_limit_release(order_ref=order.order_no)
    stock_release(store_id=order.store_id, reference=order.order_no)
    if not was_paid:
        payment_close(order_ref=order.order_no)  # a late SUCCESS notify still arrives and is refunded
    left = order.paid_amount - order.refunded_amount  # after-sales may have given part back already
    if was_paid and order.paid_amount > 0:
        # Everything paid goes back: what after-sales refunded, and the rest now.
        order.refunded_amount, order.refund_state = order.paid_amount, OrderRefundState.FULL
        order.save(update_fields=["refunded_amount", "refund_state", "updated_at"])
    if was_paid and not order.is_platform_order and left > 0:
        order_refund_schedule(order=order, amount=left, refund_ref=f"cancel-{order.order_no}",
                              reason=order.cancel_reason_code or OrderReasonCode.ORDER_CANCELLED, actor=actor)


def _order_refund_resources(*, order: Order, actor: Actor, from_status: str) -> None:
    """A refunded order (machine ``refund``: after-sales acting on a decision, or the
    platform once the goods left) gives back, inside the refunding transaction:

    - its on-order stock when it was not yet prepared (paid, accepted): the goods were
      never made; once ready or handed over the goods are gone (a return with restock
      is after-sales' step when the store confirms the goods);
    - its flash-sale units (purchase limits);
    - its coupons, used ones too, while still valid, only when everything paid went
      back (``refund_state`` full): a voucher order whose codes were partly redeemed
      keeps its coupon, since the customer kept part of what it bought.

    The money is after-sales': it decided the amount and starts the refund
    (``order_refund_commit``); a platform order is refunded by its platform."""
    if from_status in NOT_PREPARED:
        stock_release(store_id=order.store_id, reference=order.order_no)
    flash_sale_limit_release(order_ref=order.order_no)
    if order.is_platform_order or order.refund_state == OrderRefundState.FULL:
        coupon_return(order_ref=order.order_no)


# Before the kitchen made anything: a refund gives the stock the order holds back.
NOT_PREPARED = frozenset({OrderStatus.PAID, OrderStatus.ACCEPTED})
# Where a whole-order refund may start (after-sales checks it before it asks).
REFUNDABLE_STATUSES = frozenset({
    OrderStatus.PAID, OrderStatus.ACCEPTED, OrderStatus.READY, OrderStatus.DISPATCHED, OrderStatus.DELIVERED,
    OrderStatus.PICKED_UP, OrderStatus.SERVED, OrderStatus.ISSUED, OrderStatus.REDEEMED,
})


def order_refund_commit(*, order_id: int, amount: Decimal, full: bool, actor: Actor, after_sales_id: int,
                        release: dict[int, int] | None = None, money: bool = True, move_order: bool = True,
                        reason: str = "", decided_by: Actor | None = None,
                        reason_code: str = OrderReasonCode.ORDER_REFUNDED) -> Order:
    """After-sales decided that ``amount`` goes back for the order (its request moves to
    refunding): ``refunded_amount`` grows, ``refund_state`` becomes partial or full.

    - ``full`` (a whole-order refund): with ``move_order`` the order is refunded
      (machine ``refund``; stock, flash-sale units and coupons as
      ``_order_refund_resources`` says);
    - otherwise the order keeps its status; ``release`` (sku id -> units) gives the
      on-order stock of refunded units back while the order is not yet prepared, and
      their flash-sale units back;
    - ``money``: an own-channel order's provider refund of exactly ``amount`` is
      decided here (``payment_refund`` event) and started after commit, with
      ``refund_ref`` ``as-<request id>`` (retries and follow-up: orders.services.refunds);
      its event names ``decided_by`` (the person, POS or job that decided), the order's
      own ``refund`` event the system step that carried the decision out.

    Precondition: inside after-sales' transaction. Takes the order's row lock. Refused
    (409 ``refund_exceeds_paid``) when the order would give back more than was paid."""
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        order = order_lock(order_id=order_id)
        refunded = order.refunded_amount + amount
        if amount < 0 or refunded > order.paid_amount:
            raise Conflict(_("More than was paid would go back."), code="refund_exceeds_paid",
                           detail={"order_no": order.order_no, "paid": str(order.paid_amount),
                                   "refunded": str(order.refunded_amount), "amount": str(amount)})
        order.refunded_amount = refunded
        order.refund_state = OrderRefundState.FULL if refunded >= order.paid_amount else OrderRefundState.PARTIAL
        order.save(update_fields=["refunded_amount", "refund_state", "updated_at"])
        if full and move_order:
            order = order_transition(order_id=order.pk, action=OrderAction.REFUND, actor=actor,
                                     reason_code=reason_code,
                                     reason=(reason or f"after-sales #{after_sales_id}")[:255])
        elif release:
            if order.status in NOT_PREPARED:
                stock_give_back_part(store_id=order.store_id, reference=order.order_no, quantities=release,
                                     note=f"after-sales #{after_sales_id}")
            flash_sale_limit_release_units(order_ref=order.order_no, quantities=release)
        if money and not order.is_platform_order and amount > 0:
            order_refund_schedule(order=order, amount=amount, refund_ref=f"as-{after_sales_id}",
                                  reason=OrderReasonCode.ORDER_REFUNDED, actor=decided_by or actor)
    return order


def order_after_sales_mark(*, order_id: int, open_: bool) -> Order:
    """After-sales says whether a request of the order is open (awaiting a decision or
    the goods): while it is, the after-sales window does not close. Takes the order's
    row lock (inside after-sales' transaction)."""
    with transaction.atomic(savepoint=False):  # nothing here is caught and continued from
        order = order_lock(order_id=order_id)
        if order.after_sales_open != open_:
            order.after_sales_open = open_
            order.save(update_fields=["after_sales_open", "updated_at"])
    return order


# What ``order_transition`` may call: every transition of every machine.
TRANSITION_ACTIONS = machine_actions()
# Fields a transition method may change: every concrete field but the key and the
# status (saved always); the ones it did change are the ones written.
TRANSITION_FIELDS = tuple(field.attname for field in Order._meta.concrete_fields
                          if not field.primary_key and field.name != "status")


def _transition_actors(order: Order, action: str) -> list[str] | None:
    transition = getattr(order, action)._django_fsm.get_transition(order.status)
    return None if transition is None else transition.custom.get("actors")


def _not_allowed(order: Order, action: str, actor: Actor, *, reread: bool = False) -> TransitionNotAllowed:
    """The 409 with the current status. ``reread`` loads a fresh copy (never
    ``refresh_from_db``: django-fsm lifts the field protection for every thread
    while it runs, which breaks concurrent transitions in threaded workers)."""
    if reread:
        order = Order.objects.get(pk=order.pk).as_machine()
    return TransitionNotAllowed(
        _("The order cannot do “%(action)s” in status “%(status)s”.") % {"action": action, "status": order.status},
        detail={"order_no": order.order_no, "status": order.status, "action": action,
                "allowed_actions": order.available_actions(actor_kind=actor.kind)},
    )


def order_accept(*, order_id: int, actor: Actor, prep_minutes: int | None = None, **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.ACCEPT, actor=actor, prep_minutes=prep_minutes, **kw)


def order_reject(*, order_id: int, actor: Actor, reason_code: str, reason: str = "", **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.REJECT, actor=actor,
                            reason_code=reason_code, reason=reason, **kw)


def order_mark_ready(*, order_id: int, actor: Actor, pickup_code: str = "", **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.MARK_READY, actor=actor,
                            pickup_code=pickup_code, **kw)


def order_cancel(*, order_id: int, actor: Actor, reason_code: str = "", reason: str = "", **kw) -> Order:
    return order_transition(order_id=order_id, action=OrderAction.CANCEL, actor=actor,
                            reason_code=reason_code, reason=reason, **kw)


CONFIRM_ACTION = {
    OrderType.DELIVERY: OrderAction.DELIVER,
    OrderType.PICKUP: OrderAction.PICK_UP,
    OrderType.DINE_IN: OrderAction.SERVE,
    OrderType.VOUCHER: OrderAction.REDEEM,
}


def order_confirm(*, order_id: int, order_type: str, actor: Actor, **kw) -> Order:
    """Picked up, delivered, served or redeemed: the type's confirming move."""
    return order_transition(order_id=order_id, action=CONFIRM_ACTION[order_type], actor=actor, **kw)


def orders_complete_after_sales(*, now: datetime | None = None, batch_size: int = 200,
                                max_batches: int = 50) -> int:
    """Close the after-sales window: confirmed orders older than the brand's
    window become ``completed``. Brand by brand, so a brand with a short window
    never waits behind the oldest orders of one with a long window; only orders
    whose window has closed are read. An order with an open after-sales request
    (``after_sales_open``) is left confirmed until the request is decided (checked
    again under the order's lock, so one recorded since the read also holds it).
    Idempotent; safe to run twice at once."""
    now = now or timezone.now()
    confirmed = [OrderStatus.DELIVERED, OrderStatus.PICKED_UP, OrderStatus.SERVED, OrderStatus.REDEEMED]
    actor = Actor.system("after_sales_close")
    done = 0
    for brand_id, days in Brand.objects.order_by("id").values_list("id", "after_sales_days"):
        cutoff = now - timedelta(days=days)
        for _batch in range(max_batches):
            ids = list(
                Order.objects.filter(brand_id=brand_id, status__in=confirmed, confirmed_at__lte=cutoff,
                                     after_sales_open=False)
                .order_by("confirmed_at", "id").values_list("id", flat=True)[:batch_size]
            )
            completed = 0
            for order_id in ids:
                try:
                    with transaction.atomic():
                        if order_lock(order_id=order_id).after_sales_open:
                            continue  # a request since the read: it is decided first
                        order_transition(order_id=order_id, action=OrderAction.COMPLETE, actor=actor, now=now)
                    completed += 1
                except TransitionNotAllowed:
                    continue  # another run (or a refund) got there first
            done += completed
            if len(ids) < batch_size or not completed:
                break
    return done


CONTACT_EDITABLE = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.ACCEPTED, OrderStatus.READY})


def order_contact_update(*, order_id: int, actor: Actor, contact_name: str | None = None,
                         contact_phone: str | None = None, address: dict | None = None,
                         note: str | None = None) -> Order:
    """Change address / phone / note while the order is not yet dispatched
    (409 with the current status afterwards). Records a ``modify`` event."""
    with transaction.atomic():
        order = order_lock(order_id=order_id)
        if order.status not in CONTACT_EDITABLE:
            raise TransitionNotAllowed(
                _("The contact details cannot be changed any more."), code="contact_change_not_allowed",
                detail={"order_no": order.order_no, "status": order.status},
            )
        if address is not None and order.order_type != OrderType.DELIVERY:
            raise InvalidInput(_("Only delivery orders have an address."), code="address_not_applicable")
        changed = {}
        for name, value in (("contact_name", contact_name), ("contact_phone", contact_phone),
                            ("address", address), ("customer_note", note)):
            if value is not None and getattr(order, name) != value:
                changed[name] = value
                setattr(order, name, value)
        if "contact_phone" in changed:
            order.phone_last4 = order.contact_phone[-4:]
        if changed:
            order.save(update_fields=[*changed, *(["phone_last4"] if "contact_phone" in changed else []),
                                      "updated_at"])
            event_write(order=order, action=OrderAction.MODIFY, from_status=order.status, actor=actor,
                        data={"changed": sorted(changed)})
            fulfilment_record(order=order, action=OrderAction.MODIFY, from_status=order.status)
    return order
