"""Unpaid own-channel orders whose payment time ran out."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.actors import Actor
from inventory.services import stock_release_many
from orders.models import Order, OrderAction, OrderEvent, OrderReasonCode, OrderStatus
from payments.services import payments_close_for_orders
from promotions.services import coupons_release_for_orders, flash_sale_limits_release_for_orders


def orders_expire_unpaid(*, now: datetime | None = None, batch_size: int = 500, max_batches: int = 1000) -> int:
    """Cancel unpaid orders whose payment time ran out, a batch per transaction;
    their stock, coupons and purchase limits go back.

    Each batch locks its orders with ``FOR UPDATE SKIP LOCKED`` (still unpaid,
    still expired), so two sweeps at once take disjoint batches and a payment
    holding an order's lock is never waited for: it wins, and the next sweep
    finds the order paid. The cancel itself is the machine's ``cancel``
    transition, run in memory on every order (so the graph is still what
    decides), then written with one UPDATE, one event insert and one release
    per resource kind: the same effects as ``order_transition(cancel)`` for
    orders that no platform and no POS has heard of yet."""
    now = now or timezone.now()
    actor = Actor.system("expiry")
    reason = str(_("Not paid in time."))
    cancelled = 0
    for _batch in range(max_batches):
        with transaction.atomic():
            orders = [
                order.as_machine() for order in
                Order.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(status=OrderStatus.PENDING_PAYMENT, expires_at__lte=now)
                .order_by("expires_at", "id")[:batch_size]
            ]
            if not orders:
                break
            for order in orders:
                order.cancel(now=now, reason_code=OrderReasonCode.PAYMENT_TIMEOUT, reason=reason)
            ids = [order.pk for order in orders]
            Order.objects.filter(pk__in=ids, status=OrderStatus.PENDING_PAYMENT).update(
                status=OrderStatus.CANCELLED, cancelled_at=now, cancel_reason_code=OrderReasonCode.PAYMENT_TIMEOUT,
                cancel_reason=reason, updated_at=now,
            )
            OrderEvent.objects.bulk_create([
                OrderEvent(order_id=order.pk, action=OrderAction.CANCEL, from_status=OrderStatus.PENDING_PAYMENT,
                           to_status=OrderStatus.CANCELLED, actor_kind=actor.kind, actor_id=actor.id,
                           actor_name=actor.name, reason_code=OrderReasonCode.PAYMENT_TIMEOUT, reason=reason)
                for order in orders
            ])
            refs = [order.order_no for order in orders]
            # In the order placement locks them: coupons, flash-sale counters, stock.
            coupons_release_for_orders(order_refs=refs)
            flash_sale_limits_release_for_orders(order_refs=refs)
            stock_release_many(references=refs)
            # Stop expecting their payments, so the lost-notify reconciliation
            # only asks about live ones (a late SUCCESS still arrives and is refunded).
            payments_close_for_orders(order_refs=refs)
        cancelled += len(orders)
    return cancelled
