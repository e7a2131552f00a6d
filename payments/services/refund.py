"""Refunds: start one, record the provider's refund notify, follow it up with the
refund query until it ends, start a closed one again. Keyword-only,
``<entity>_<verb>``; see the package docstring.

A refund's life (``PaymentRefund.status``):

- ``processing``: committed, then sent to the provider (the same ``out_refund_no``
  may be sent again: the provider treats a repeat as the same refund);
- ``succeeded``: the provider says SUCCESS (notify or query), from processing or
  abnormal;
- ``abnormal``: the provider could not send the money back (ABNORMAL, e.g. a closed
  card); a person finishes it at the provider, which then reports SUCCESS or CLOSED;
- ``failed``: the provider closed it (CLOSED) or refused the request (4xx,
  ``provider_status`` REJECTED). A failed refund stays failed; ``refund_retry`` starts
  a new attempt with a new ``out_refund_no``.

While processing or abnormal, ``next_check_at`` says when the refund query asks
about it next: 120 s after the request, then doubling, at most every hour.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.errors import (
    NotifyMalformed,
    PaymentNotFound,
    PaymentProviderRejected,
    RefundExceedsPaid,
    RefundNotAllowed,
    RefundNotFound,
    RefundRefReused,
)
from payments.models import (
    PAID_STATUSES,
    REFUND_OPEN_STATUSES,
    PaymentRefund,
    PaymentStatus,
    PaymentTransaction,
    RefundStatus,
)
from payments.accounts import client_for_payment
from payments.provider import REFUND_FAILED, REFUND_SUCCEEDED, NotifyEvent, RefundAnswer, fen_to_yuan
from payments.services.payment import VerifiedNotify, notify_verify, positive_fen

logger = logging.getLogger(__name__)

# The refund query asks about an open refund this long after it was requested, then
# twice as long after each answer, never waiting longer than the maximum.
REFUND_CHECK_FIRST_SECONDS = 120
REFUND_CHECK_MAX_SECONDS = 3600
# provider_status values that are ours, not the provider's word.
NOT_FOUND = "NOT_FOUND"
REJECTED = "REJECTED"


@dataclass(frozen=True)
class RefundResult:
    out_refund_no: str
    refund_ref: str
    order_ref: str
    amount: Decimal
    refund_id: str
    status: str  # RefundStatus value after this call
    succeeded_at: datetime | None
    # True only for the one call that moved the refund to this status.
    first_time: bool


def _refund_result(refund: PaymentRefund, *, first_time: bool) -> RefundResult:
    return RefundResult(
        out_refund_no=refund.out_refund_no, refund_ref=refund.refund_ref, order_ref=refund.transaction.order_ref,
        amount=refund.amount, refund_id=refund.refund_id, status=refund.status, succeeded_at=refund.succeeded_at,
        first_time=first_time,
    )


def refund_out_no(*, order_ref: str, refund_ref: str) -> str:
    """The provider-side refund number: a pure function of (order_ref, refund_ref)."""
    digest = hashlib.sha256(f"{order_ref}\x1f{refund_ref}".encode()).hexdigest()
    return f"R{digest[:31]}"


def refund_next_check(*, checks: int, now: datetime) -> datetime:
    """When to ask about an open refund that has been asked about ``checks`` times."""
    return now + timedelta(seconds=min(REFUND_CHECK_FIRST_SECONDS * 2 ** min(checks, 20), REFUND_CHECK_MAX_SECONDS))


def _committed_fen(payment: PaymentTransaction) -> int:
    """What the payment's refunds hold: every refund but the failed ones (no money moved)."""
    return payment.refunds.exclude(status=RefundStatus.FAILED).aggregate(total=Sum("amount_fen"))["total"] or 0


def refund_start(*, order_ref: str, refund_ref: str, amount: Decimal, reason: str) -> PaymentRefund:
    """Refund ``amount`` of the payment for ``order_ref``; idempotent per (order_ref, refund_ref).

    The refund row (status processing) commits first, under a lock on the
    payment row so concurrent refunds cannot exceed what was paid; then the
    provider is asked. A repeat with the same refund_ref returns the same refund
    (and sends it to the provider again if the first call never got an answer);
    the same refund_ref with another amount raises RefundRefReused. A failed
    refund stays failed: ``refund_retry`` starts it again.
    Raises PaymentNotFound, RefundNotAllowed (not paid), RefundExceedsPaid,
    InvalidInput, PaymentProvider*. Precondition: no open transaction.
    """
    amount_fen = positive_fen(amount)
    out_refund_no = refund_out_no(order_ref=order_ref, refund_ref=refund_ref)
    with transaction.atomic():
        payment = PaymentTransaction.objects.select_for_update().filter(order_ref=order_ref).first()
        if payment is None:
            raise PaymentNotFound(detail={"order_ref": order_ref})
        refund = PaymentRefund.objects.filter(out_refund_no=out_refund_no).first()
        if refund is not None:
            if refund.amount_fen != amount_fen:
                raise RefundRefReused(detail={"refund_ref": refund_ref, "amount": str(refund.amount)})
        else:
            if payment.status not in PAID_STATUSES:
                raise RefundNotAllowed(detail={"order_ref": order_ref, "status": payment.status})
            committed = _committed_fen(payment)
            if committed + amount_fen > payment.amount_fen:
                raise RefundExceedsPaid(detail={"refundable": str(fen_to_yuan(payment.amount_fen - committed))})
            refund = PaymentRefund.objects.create(
                transaction=payment, refund_ref=refund_ref, out_refund_no=out_refund_no,
                amount=fen_to_yuan(amount_fen), amount_fen=amount_fen, reason=reason[:80],
                next_check_at=refund_next_check(checks=0, now=timezone.now()),
            )
    if refund.status != RefundStatus.PROCESSING or refund.refund_id:
        return refund
    return _refund_send(refund=refund, payment=payment)


def refund_retry(*, out_refund_no: str) -> PaymentRefund:
    """Start a failed refund (closed or refused by the provider) again: a new
    attempt with the same amount and reason, ``refund_ref`` + "#<attempt>", so a
    new ``out_refund_no``. Idempotent: a refund has at most one retry (unique
    ``retry_of``), and asking again returns it (sent again if it never got an
    answer). The retry takes over ``needs_person`` and ``escalated_at``: a refund a
    person is looking at stays theirs.
    Raises RefundNotFound, RefundNotAllowed (not failed), RefundExceedsPaid,
    PaymentProvider*. Precondition: no open transaction.
    """
    with transaction.atomic():
        found = PaymentRefund.objects.filter(out_refund_no=out_refund_no).values_list("transaction_id", flat=True)
        if not found:
            raise RefundNotFound(detail={"out_refund_no": out_refund_no})
        # The payment row first, as refund_start locks it: concurrent refunds of one payment serialize here.
        payment = PaymentTransaction.objects.select_for_update().get(pk=found[0])
        failed = PaymentRefund.objects.select_for_update().get(out_refund_no=out_refund_no)
        retry = PaymentRefund.objects.filter(retry_of=failed).first()
        if retry is None:
            if failed.status != RefundStatus.FAILED:
                raise RefundNotAllowed(_("Only a failed refund can be started again."),
                                       detail={"out_refund_no": out_refund_no, "status": failed.status})
            committed = _committed_fen(payment)
            if committed + failed.amount_fen > payment.amount_fen:
                raise RefundExceedsPaid(detail={"refundable": str(fen_to_yuan(payment.amount_fen - committed))})
            root = failed.refund_ref.rsplit("#", 1)[0] if failed.attempt > 1 else failed.refund_ref
            refund_ref = f"{root}#{failed.attempt + 1}"
            retry = PaymentRefund.objects.create(
                transaction=payment, refund_ref=refund_ref,
                out_refund_no=refund_out_no(order_ref=payment.order_ref, refund_ref=refund_ref),
                amount=failed.amount, amount_fen=failed.amount_fen, reason=failed.reason,
                attempt=failed.attempt + 1, retry_of=failed, needs_person=failed.needs_person,
                escalated_at=failed.escalated_at, next_check_at=refund_next_check(checks=0, now=timezone.now()),
            )
            if failed.needs_person:
                PaymentRefund.objects.filter(pk=failed.pk).update(needs_person=False, updated_at=timezone.now())
    if retry.status != RefundStatus.PROCESSING or retry.refund_id:
        return retry
    return _refund_send(refund=retry, payment=payment)


def _refund_send(*, refund: PaymentRefund, payment: PaymentTransaction) -> PaymentRefund:
    """Ask the provider for ``refund`` (again: the same out_refund_no is the same refund
    there). A request the provider refuses (a 4xx other than 429) can never succeed:
    the refund fails with provider_status REJECTED, and the error is raised."""
    client = client_for_payment(payment)
    try:
        answer = client.refund(out_trade_no=payment.out_trade_no, out_refund_no=refund.out_refund_no,
                               amount=refund.amount, total=payment.amount, reason=refund.reason,
                               notify_url=client.notify_url)
    except PaymentProviderRejected as exc:
        if exc.detail.get("http_status") != 429:  # rate limited: try again later
            logger.error("refund %s refused by the provider: %s", refund.out_refund_no, exc.detail)
            PaymentRefund.objects.filter(pk=refund.pk, status=RefundStatus.PROCESSING).update(
                status=RefundStatus.FAILED, provider_status=REJECTED, updated_at=timezone.now(),
                notify_payload={"source": "refund", "rejected": exc.detail})
        raise
    now = timezone.now()
    PaymentRefund.objects.filter(pk=refund.pk, refund_id="").update(refund_id=answer.refund_id, updated_at=now)
    _refund_apply_answer(refund=refund, answer=answer, source="refund", now=now)
    refund.refresh_from_db()
    return refund


def _refund_move(*, refund: PaymentRefund, to: str, refund_id: str, provider_status: str, payload: dict,
                 now: datetime, succeeded_at: datetime | None = None) -> bool:
    """The one conditional UPDATE that ends (or marks abnormal) a refund: of any number
    of notifies, query answers and replays, exactly one changes the row.

    A success commits together with its payment becoming ``refunded`` (when the
    succeeded refunds reach what was paid), under the payment's lock taken first (the
    order of refund_start and refund_retry): no reader sees the last refund ended and
    its payment not, and a failure in between cannot leave the payment ``succeeded``
    for good (the replayed notify would change nothing)."""
    sources = {RefundStatus.SUCCEEDED: REFUND_OPEN_STATUSES, RefundStatus.FAILED: REFUND_OPEN_STATUSES,
               RefundStatus.ABNORMAL: (RefundStatus.PROCESSING,)}[to]
    fields = {"status": to, "provider_status": provider_status, "notify_payload": payload, "updated_at": now}
    if refund_id:
        fields["refund_id"] = refund_id
    if to == RefundStatus.SUCCEEDED:
        fields["succeeded_at"] = succeeded_at or now
    with transaction.atomic():
        payment = PaymentTransaction.objects.select_for_update().get(pk=refund.transaction_id)
        updated = PaymentRefund.objects.filter(pk=refund.pk, status__in=sources).update(**fields)
        if updated and to == RefundStatus.SUCCEEDED:
            _payment_mark_refunded_if_complete(payment=payment, now=now)
    return updated == 1


def _refund_apply_answer(*, refund: PaymentRefund, answer: RefundAnswer, source: str, now: datetime) -> bool:
    """Record what the provider answered about ``refund`` (a refund call or a query).
    True when this changed its status."""
    payload = {"source": source, "answer": answer.raw}
    if answer.refund_fen is not None and answer.refund_fen != refund.amount_fen:
        # Not the refund we asked for: a person must look, whatever the provider's status.
        logger.error("refund %s: the provider reports %s fen, we asked for %s", refund.out_refund_no,
                     answer.refund_fen, refund.amount_fen)
        return _refund_move(refund=refund, to=RefundStatus.ABNORMAL, refund_id=answer.refund_id,
                            provider_status=answer.status, payload={**payload, "amount_mismatch": True}, now=now)
    if answer.succeeded:
        return _refund_move(refund=refund, to=RefundStatus.SUCCEEDED, refund_id=answer.refund_id,
                            provider_status=answer.status, payload=payload, now=now,
                            succeeded_at=answer.succeeded_at)
    if answer.abnormal:
        return _refund_move(refund=refund, to=RefundStatus.ABNORMAL, refund_id=answer.refund_id,
                            provider_status=answer.status, payload=payload, now=now)
    if answer.closed:
        return _refund_move(refund=refund, to=RefundStatus.FAILED, refund_id=answer.refund_id,
                            provider_status=answer.status, payload=payload, now=now)
    PaymentRefund.objects.filter(pk=refund.pk, status__in=REFUND_OPEN_STATUSES).update(
        provider_status=answer.status[:20])
    return False


def _payment_mark_refunded_if_complete(*, payment: PaymentTransaction, now: datetime) -> None:
    """Call with ``payment`` locked, in the transaction that ended one of its refunds."""
    refunded = payment.refunds.filter(status=RefundStatus.SUCCEEDED).aggregate(
        total=Sum("amount_fen"))["total"] or 0
    if refunded >= payment.amount_fen and payment.status == PaymentStatus.SUCCEEDED:
        PaymentTransaction.objects.filter(pk=payment.pk).update(status=PaymentStatus.REFUNDED, updated_at=now)


def refund_record_event(*, provider: str, event: NotifyEvent, now: datetime,
                        verified: VerifiedNotify | None = None) -> RefundResult:
    """Record a refund notify (``verified``: its account is checked against the refund's
    payment before anything changes)."""
    refund = (PaymentRefund.objects.select_related("transaction")
              .filter(out_refund_no=event.out_refund_no, transaction__provider=provider).first())
    if refund is None:
        raise RefundNotFound(detail={"out_refund_no": event.out_refund_no})
    if verified is not None:
        verified.check(refund.transaction)
    if event.kind == REFUND_SUCCEEDED:
        first_time = _refund_move(refund=refund, to=RefundStatus.SUCCEEDED, refund_id=event.refund_id,
                                  provider_status="SUCCESS", payload=event.payload, now=now,
                                  succeeded_at=event.refund_succeeded_at)
    elif event.refund_abnormal:
        first_time = _refund_move(refund=refund, to=RefundStatus.ABNORMAL, refund_id=event.refund_id,
                                  provider_status="ABNORMAL", payload=event.payload, now=now)
    else:
        first_time = _refund_move(refund=refund, to=RefundStatus.FAILED, refund_id=event.refund_id,
                                  provider_status="CLOSED", payload=event.payload, now=now)
    refund.refresh_from_db()
    return _refund_result(refund, first_time=first_time)


def refund_notify_record(*, provider: str, headers: Mapping[str, str], body: bytes,
                         now: datetime | None = None) -> RefundResult:
    """Verify a refund notify and record it: REFUND.SUCCESS -> succeeded, REFUND.ABNORMAL
    -> abnormal, REFUND.CLOSED -> failed.

    A replay returns first_time=False and changes nothing; so does a notify that
    arrives after the refund query recorded the same end. When the succeeded
    refunds reach the amount paid, the payment becomes ``refunded``.
    """
    now = now or timezone.now()
    verified = notify_verify(provider=provider, headers=headers, body=body, now=now)
    event = verified.event
    if event.kind not in (REFUND_SUCCEEDED, REFUND_FAILED):
        raise NotifyMalformed(_("This is not a refund notification."), detail={"event_type": event.event_type})
    return refund_record_event(provider=provider, event=event, now=now, verified=verified)


def refund_reconcile(*, out_refund_no: str, now: datetime | None = None) -> RefundResult | None:
    """Ask the provider about a refund still processing or abnormal (a lost notify, a
    request that never arrived, a refund a person is finishing at the provider).

    - SUCCESS: succeeded, exactly as the notify would (a late notify then changes nothing);
    - ABNORMAL: abnormal (from processing); CLOSED: failed;
    - PROCESSING (or ABNORMAL again): nothing changes; asked again later, with backoff;
    - unknown to the provider (404): the request never reached it; it is sent again
      with the same out_refund_no (the same refund at the provider).

    Every call moves ``next_check_at`` on (``refund_next_check``). Returns None while
    nothing ended; otherwise the RefundResult (first_time=True for the call that
    recorded the change). A refund already ended returns first_time=False without
    asking. Precondition: no open transaction.
    """
    now = now or timezone.now()
    refund = PaymentRefund.objects.select_related("transaction").filter(out_refund_no=out_refund_no).first()
    if refund is None:
        raise RefundNotFound(detail={"out_refund_no": out_refund_no})
    if refund.status not in REFUND_OPEN_STATUSES:
        return _refund_result(refund, first_time=False)
    # Recorded before asking, so a provider that fails for this refund does not keep it
    # at the head of the next run's list.
    PaymentRefund.objects.filter(pk=refund.pk).update(
        checks=F("checks") + 1, checked_at=now, next_check_at=refund_next_check(checks=refund.checks + 1, now=now))
    answer = client_for_payment(refund.transaction).refund_query(out_refund_no=out_refund_no)
    if answer is None:
        PaymentRefund.objects.filter(pk=refund.pk, status__in=REFUND_OPEN_STATUSES).update(provider_status=NOT_FOUND)
        if refund.status == RefundStatus.PROCESSING:
            logger.warning("refund %s unknown to the provider: sending it again", out_refund_no)
            refund = _refund_send(refund=refund, payment=refund.transaction)
        return None if refund.status in REFUND_OPEN_STATUSES else _refund_result(refund, first_time=True)
    if not refund.refund_id:
        PaymentRefund.objects.filter(pk=refund.pk, refund_id="").update(refund_id=answer.refund_id)
    first_time = _refund_apply_answer(refund=refund, answer=answer, source="query", now=now)
    refund.refresh_from_db()
    if first_time or refund.status not in REFUND_OPEN_STATUSES:
        return _refund_result(refund, first_time=first_time)
    return None


def refunds_mark_escalated(*, refund_ids: list[int], now: datetime) -> int:
    """A person was asked to look at these refunds (their orders are flagged):
    ``escalated_at`` and ``needs_person`` set, once per refund. Returns how many this
    call marked (a refund already escalated is left alone)."""
    return PaymentRefund.objects.filter(pk__in=refund_ids, escalated_at__isnull=True).update(
        escalated_at=now, needs_person=True, updated_at=now)


def refund_person_done(*, refund_id: int, now: datetime) -> bool:
    """The refund a person was looking at is settled: ``needs_person`` off. True for the
    one call that turned it off."""
    return PaymentRefund.objects.filter(pk=refund_id, needs_person=True).update(
        needs_person=False, updated_at=now) == 1
