"""Money back for own-channel orders paid through the payment provider.

Deciding: ``order_refund_schedule`` writes an ``OrderEvent`` ``payment_refund``
(amount and ``refund_ref``) in the transaction that decides the refund, and queues
the task ``orders.payment_refund`` after commit. Every path that ends a
provider-paid order comes through it, with one ``refund_ref`` per cause:

- ``cancel-<order no>``: cancelled or rejected after payment (``order_transition``);
- ``as-<after-sales request id>``: an approved after-sales request (refund or return),
  exactly its amount (``orders.services.core.order_refund_commit``, called by aftersales);
- ``late-<transaction id>``: money that arrived for an order already cancelled or
  expired (``order_payment_confirm``);
- ``oos-<transaction id>``: on-payment stock gone when the money arrived.

An order is cancelled at most once (its row lock and its machine); its after-sales
requests together never exceed what was paid, and a cancel after them gives back only
the rest; a provider refund is unique per (payment,
``refund_ref``), and ``payments.services.refund_start`` refuses more than was paid.

Following up (``order_refunds_follow_up``, the job ``retry-owed-refunds``), until
every refund has ended or a person has it:

1. refunds decided in the last days whose provider call never started are started
   (the same ``refund_ref``: never a second refund);
2. refunds still processing or abnormal are asked about with the refund query when
   due (``payments.services.refund_reconcile``: backoff from 120 s to an hour);
3. refunds the provider closed are started again with a new ``out_refund_no``, up to
   ``PAYMENT_REFUND_MAX_ATTEMPTS`` attempts in all;
4. refunds a person must finish are handed over: the order is flagged
   (``refund_attention``) and the refund marked ``escalated_at``: abnormal (the
   money must be moved by hand at the provider), failed for good (refused, or closed
   on every attempt), or still processing ``PAYMENT_REFUND_STUCK_HOURS`` after the
   request. The machine never retries a refund a person has;
5. when such a refund (or its retry) succeeds after all, the order's flag is
   resolved (``refund_settled``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.actors import Actor
from core.errors import NotFound
from core.jobs import job_enqueue
from orders.models import Order, OrderAction, OrderEvent, OrderFlagKind, OrderType, VoucherCode, VoucherCodeState
from orders.services.events import event_write
from orders.services.sync import order_flag
from payments.errors import RefundExceedsPaid
from payments.models import PaymentRefund, RefundStatus
from payments.selectors import (
    payment_get_for_order,
    refund_get_by_out_no,
    refunds_due_for_check,
    refunds_needing_person_exist,
    refunds_settled_for_person,
    refunds_to_escalate,
    refunds_to_retry,
)
from payments.services import (
    refund_person_done,
    refund_reconcile,
    refund_retry,
    refund_start,
    refunds_mark_escalated,
)

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
REFUNDS_ACTOR = "refunds"
# The Celery task that starts one decided refund at the provider (``order_refund_start``).
PAYMENT_REFUND_JOB = "orders.payment_refund"


def refund_attention_label() -> str:
    """The attention reason of an order whose refund a person must finish (and its resolution)."""
    return _("refund not completed")


def order_refund_schedule(*, order: Order, amount: Decimal, refund_ref: str, reason: str, actor: Actor) -> None:
    """Decide a provider refund of ``amount`` for ``order``: the ``payment_refund`` event
    now, in the caller's transaction; the provider call after commit. Precondition:
    inside the transaction of the change that decides it, with the order's row lock.

    An order paid outside the payment provider (imported, or the demo's seeded orders:
    no provider payment) has nothing to send back through it: the event records that
    (``outside_provider``) and no provider call is made."""
    if payment_get_for_order(order_ref=order.order_no) is None:
        event_write(order=order, action=OrderAction.PAYMENT_REFUND, from_status=order.status, actor=actor,
                    reason_code=reason, data={"amount": str(amount), "outside_provider": True})
        logger.info("no provider payment: nothing to refund through the provider", extra={"order": order.order_no})
        return
    event_write(order=order, action=OrderAction.PAYMENT_REFUND, from_status=order.status, actor=actor,
                reason_code=reason, data={"amount": str(amount), "refund_ref": refund_ref})
    # robust: a failing dispatch is logged, never turns the committed change into an error;
    # the follow-up job starts what did not start.
    transaction.on_commit(lambda: job_enqueue(PAYMENT_REFUND_JOB, order_no=order.order_no, amount=str(amount),
                                              refund_ref=refund_ref, reason=reason), robust=True)


def order_refund_start(*, order_no: str, amount: Decimal, refund_ref: str, reason: str) -> str:
    """Start at the provider the refund ``order_refund_schedule`` decided (the job
    ``orders.payment_refund``; idempotent per ``refund_ref``). Returns its
    ``out_refund_no``, or "" for an order with no provider payment. Precondition: no
    open transaction (it calls the provider)."""
    if payment_get_for_order(order_ref=order_no) is None:
        # Paid outside the payment provider (imported or demo orders): nothing to send back.
        logger.warning("refund skipped: no provider payment for order", extra={"order": order_no})
        return ""
    return refund_start(order_ref=order_no, refund_ref=refund_ref, amount=amount, reason=reason).out_refund_no


def order_refundable_amount(*, order: Order) -> Decimal:
    """What an ended order gives back: what was paid, less, for an e-voucher order, the
    share of the codes already redeemed (each code is one unit of its line, worth the
    line total over its quantity, rounded to the fen)."""
    paid = order.paid_amount
    if order.order_type != OrderType.VOUCHER:
        return paid
    redeemed = Counter(VoucherCode.objects.filter(order_id=order.pk, state=VoucherCodeState.REDEEMED)
                       .values_list("line_no", flat=True))
    if not redeemed:
        return paid
    used = sum(((line.line_total * redeemed[line.line_no] / line.quantity).quantize(CENT, ROUND_HALF_UP)
                for line in order.lines.all() if redeemed[line.line_no]), ZERO)
    return max(paid - used, ZERO)


@dataclass(frozen=True)
class RefundFollowUp:
    started: int = 0  # owed refunds whose provider call was (re)started
    checked: int = 0  # refunds asked about with the refund query
    retried: int = 0  # closed refunds started again
    flagged: int = 0  # refunds handed to a person (their orders flagged)
    settled: int = 0  # refunds a person had that succeeded (their flags resolved)


def order_refunds_follow_up(*, now: datetime | None = None, days: int = 7, limit: int = 200) -> RefundFollowUp:
    """The refund follow-up job (see the module docstring). Idempotent; one refund the
    provider cannot answer for is logged and never stops the others. Precondition:
    no open transaction (it calls the provider)."""
    now = now or timezone.now()
    started, touched = _owed_refunds_start(since=now - timedelta(days=days))
    checked = 0
    for refund in refunds_due_for_check(limit=limit, now=now):
        if refund.pk in touched:
            continue
        try:
            refund_reconcile(out_refund_no=refund.out_refund_no, now=now)
            checked += 1
        except Exception:  # logged; asked again at its next check
            logger.exception("refund query failed", extra={"out_refund_no": refund.out_refund_no})
    retried = 0
    for refund in refunds_to_retry(max_attempts=settings.PAYMENT_REFUND_MAX_ATTEMPTS, limit=limit):
        try:
            refund_retry(out_refund_no=refund.out_refund_no)
            retried += 1
        except RefundExceedsPaid:  # money went back another way meanwhile: a person decides
            _escalate(refund=refund, why="exceeds_paid", now=now)
        except Exception:  # logged; the next run tries again
            logger.exception("closed refund could not start again", extra={"out_refund_no": refund.out_refund_no})
    stuck_before = now - timedelta(hours=settings.PAYMENT_REFUND_STUCK_HOURS)
    flagged = sum(
        _escalate(refund=refund, why=refund.status, now=now)
        for refund in refunds_to_escalate(max_attempts=settings.PAYMENT_REFUND_MAX_ATTEMPTS,
                                          stuck_before=stuck_before, limit=limit)
    )
    settled = sum(_settle(refund=refund, now=now, why=RefundStatus.SUCCEEDED)
                  for refund in refunds_settled_for_person(limit=limit))
    return RefundFollowUp(started=started, checked=checked, retried=retried, flagged=flagged, settled=settled)


def _owed_refunds_start(*, since: datetime) -> tuple[int, set[int]]:
    """Refunds decided since ``since`` (``payment_refund`` events) whose provider call
    never started or never got an answer: start them (idempotent per refund_ref).
    Returns how many, and the ids of the refunds touched."""
    started, touched = 0, set()
    events = (OrderEvent.objects.filter(action=OrderAction.PAYMENT_REFUND, created_at__gte=since)
              .select_related("order").order_by("id"))
    for event in events.iterator():
        refund_ref, order_no = event.data.get("refund_ref"), event.order.order_no
        if not refund_ref or payment_get_for_order(order_ref=order_no) is None:
            continue  # nothing owed, or paid outside the provider: nothing to refund through it
        existing = PaymentRefund.objects.filter(transaction__order_ref=order_no, refund_ref=refund_ref).first()
        if existing is not None and (existing.refund_id or existing.status != RefundStatus.PROCESSING):
            continue  # the provider has it (or it ended)
        try:
            refund = refund_start(order_ref=order_no, refund_ref=refund_ref, amount=Decimal(event.data["amount"]),
                                  reason=event.reason_code or "refund")
            started += 1
            touched.add(refund.pk)
        except Exception:  # logged; the next run tries again
            logger.exception("owed refund could not start", extra={"order": order_no})
    return started, touched


def _refund_data(refund: PaymentRefund, why: str) -> dict:
    return {"out_refund_no": refund.out_refund_no, "refund_ref": refund.refund_ref, "amount": str(refund.amount),
            "refund_status": refund.status, "provider_status": refund.provider_status, "why": why}


def _escalate(*, refund: PaymentRefund, why: str, now: datetime) -> bool:
    """Hand ``refund`` to a person: marked escalated and its order flagged, in one
    transaction, once. True for the call that did it."""
    order = Order.objects.filter(order_no=refund.transaction.order_ref).only("pk").first()
    with transaction.atomic():
        if not refunds_mark_escalated(refund_ids=[refund.pk], now=now):
            return False
        if order is not None:
            order_flag(order_id=order.pk, actor=Actor.system(REFUNDS_ACTOR), kind=OrderFlagKind.REFUND_ATTENTION,
                       reason=refund_attention_label(), data=_refund_data(refund, why))
    logger.warning("refund handed to a person", extra={"out_refund_no": refund.out_refund_no, "why": why,
                                                        "order": refund.transaction.order_ref})
    return True


def _settle(*, refund: PaymentRefund, now: datetime, why: str, actor: Actor | None = None, note: str = "") -> bool:
    """A refund a person had is settled: ``needs_person`` off and, when no other refund
    of the order waits for a person, the order's flag resolved. True for the call that did it."""
    order_ref = refund.transaction.order_ref
    order = Order.objects.filter(order_no=order_ref).only("pk").first()
    with transaction.atomic():
        if not refund_person_done(refund_id=refund.pk, now=now):
            return False
        if order is not None and not refunds_needing_person_exist(order_ref=order_ref):
            order_flag(order_id=order.pk, actor=actor or Actor.system(REFUNDS_ACTOR), kind=OrderFlagKind.REFUND_SETTLED,
                       reason=_("refund completed") if why == RefundStatus.SUCCEEDED else _("refund settled by hand"),
                       data={**_refund_data(refund, why), **({"note": note[:255]} if note else {})},
                       attention=False, resolves=refund_attention_label())
    return True


def order_refund_settled_by_hand(*, out_refund_no: str, actor: Actor, note: str) -> bool:
    """A person settled a refund handed to them some other way than through the provider
    (e.g. paid the customer back in cash after the provider closed it): the refund no
    longer needs a person and, when no other refund of the order does, the order's
    flag is resolved. The refund keeps its status (the provider's truth). Returns
    False when it did not need a person."""
    refund = refund_get_by_out_no(out_refund_no=out_refund_no)
    if refund is None:
        raise NotFound(_("Refund not found."), code="refund_not_found")
    return _settle(refund=refund, now=timezone.now(), why="by_hand", actor=actor, note=note)
