"""Own-channel payment: before asking the provider, and when its money arrives."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from catalog.models import StockDeductionMode
from core.actors import Actor, ActorKind
from core.errors import Conflict
from inventory.selectors import stock_levels
from inventory.services import OutOfStock, stock_deduct
from orders.locks import order_lock_by_no
from orders.models import Order, OrderAction, OrderReasonCode, OrderStatus
from orders.services.acceptance import order_auto_accept_if_enabled
from orders.services.core import order_transition
from orders.services.refunds import order_refund_schedule
from promotions.services import coupon_use


def order_payable_check(*, order: Order, now: datetime | None = None) -> None:
    """Before asking the provider: the order is unpaid and on-payment stock is
    still there (re-checked; the real deduction happens at notify time)."""
    now = now or timezone.now()
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise Conflict(_("This order cannot be paid in its current status."), code="transition_not_allowed",
                       detail={"status": order.status})
    if order.expires_at and order.expires_at <= now:
        raise Conflict(_("The payment time for this order has run out."), code="order_expired",
                       detail={"status": order.status})
    wanted = {line.sku_id: line.quantity for line in order.lines.all()
              if line.stock_mode == StockDeductionMode.ON_PAYMENT and line.sku_id}
    if wanted:
        levels = stock_levels(store_id=order.store_id, sku_ids=list(wanted))
        short = {str(s): {"wanted": q, "on_hand": levels[s]} for s, q in wanted.items()
                 if s in levels and levels[s] < q}
        if short:
            raise OutOfStock(detail={"skus": short})


class PaymentOutcomeKind(StrEnum):
    PAID = "paid"
    ALREADY_PAID = "already_paid"  # the same transaction again (a replayed notify)
    REFUND_CANCELLED = "refund_cancelled"  # the order ended before the money came: refunded
    REFUND_OUT_OF_STOCK = "refund_out_of_stock"  # on-payment stock gone: cancelled and refunded


@dataclass(frozen=True)
class PaymentOutcome:
    order: Order
    outcome: PaymentOutcomeKind


def order_payment_confirm(*, order_no: str, provider: str, transaction_id: str, amount: Decimal,
                          paid_at: datetime | None = None) -> PaymentOutcome:
    """The provider says the money arrived. Exactly one consistent outcome:
    the order becomes paid, or (cancelled/expired meanwhile, or on-payment
    stock gone) it stays/becomes cancelled and the money is refunded.

    Takes the order row lock first, so a racing expiry job either ran before
    (we refund) or waits for us (it then finds the order paid)."""
    paid_at = paid_at or timezone.now()
    payment_actor = Actor(kind=ActorKind.PAYMENT, id=provider, name=provider)
    with transaction.atomic():
        order = order_lock_by_no(order_no=order_no)
        if order.status != OrderStatus.PENDING_PAYMENT:
            if order.payment_txn_no == transaction_id:
                return PaymentOutcome(order=order, outcome=PaymentOutcomeKind.ALREADY_PAID)
            order_refund_schedule(order=order, amount=amount, refund_ref=f"late-{transaction_id}",
                                 reason=OrderReasonCode.CANCELLED_BEFORE_PAYMENT, actor=payment_actor)
            return PaymentOutcome(order=order, outcome=PaymentOutcomeKind.REFUND_CANCELLED)
        wanted = {line.sku_id: line.quantity for line in order.lines.all()
                  if line.stock_mode == StockDeductionMode.ON_PAYMENT and line.sku_id}
        try:
            if wanted:
                stock_deduct(store_id=order.store_id, quantities=wanted, reference=order.order_no)
        except OutOfStock:
            order = order_transition(order_id=order.pk, action=OrderAction.CANCEL, actor=Actor.system("payment"),
                                     reason_code=OrderReasonCode.OUT_OF_STOCK_AT_PAYMENT,
                                     reason=str(_("Sold out before the payment arrived; the money is refunded.")),
                                     now=paid_at)
            order_refund_schedule(order=order, amount=amount, refund_ref=f"oos-{transaction_id}",
                                 reason=OrderReasonCode.OUT_OF_STOCK_AT_PAYMENT, actor=payment_actor)
            return PaymentOutcome(order=order, outcome=PaymentOutcomeKind.REFUND_OUT_OF_STOCK)
        order = order_transition(order_id=order.pk, action=OrderAction.PAY, actor=payment_actor, now=paid_at,
                                 provider=provider, txn_no=transaction_id, amount=amount)
        order = order_auto_accept_if_enabled(order=order)
        coupon_use(order_ref=order.order_no)
    return PaymentOutcome(order=order, outcome=PaymentOutcomeKind.PAID)
