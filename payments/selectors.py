"""Payment reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from payments.models import REFUND_OPEN_STATUSES, PaymentRefund, PaymentStatus, PaymentTransaction, RefundStatus


def payment_get_for_order(*, order_ref: str) -> PaymentTransaction | None:
    return PaymentTransaction.objects.filter(order_ref=order_ref).first()


def payments_pending_for_reconcile(*, older_than_seconds: int, limit: int,
                                   now: datetime | None = None) -> list[PaymentTransaction]:
    """Payments still ``created`` for at least ``older_than_seconds``: never asked
    about first, then the least recently asked, then the oldest.

    The input of the lost-notify job: for each, call payments.services.payment_reconcile.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=older_than_seconds)
    return list(
        PaymentTransaction.objects.filter(status=PaymentStatus.CREATED, created_at__lte=cutoff)
        .order_by(F("checked_at").asc(nulls_first=True), "created_at", "id")[:limit]
    )


def payments_closed_for_reconcile(*, window_hours: int, every_seconds: int, limit: int,
                                  now: datetime | None = None) -> list[PaymentTransaction]:
    """Payments we closed (the order expired or was cancelled) in the last
    ``window_hours`` after handing the customer payment parameters (a prepay id),
    not asked about for ``every_seconds``: the provider keeps such a payment
    payable, so money may still arrive while its notify is lost. Least recently
    asked first. ``updated_at`` is the closing time: asking only sets
    ``checked_at`` (a queryset update, which leaves ``updated_at`` alone)."""
    now = now or timezone.now()
    return list(
        PaymentTransaction.objects.filter(status=PaymentStatus.CLOSED, updated_at__gte=now - timedelta(hours=window_hours))
        .exclude(prepay_id="")
        .filter(Q(checked_at__isnull=True) | Q(checked_at__lte=now - timedelta(seconds=every_seconds)))
        .order_by(F("checked_at").asc(nulls_first=True), "id")[:limit]
    )


def refunds_due_for_check(*, limit: int, now: datetime | None = None) -> list[PaymentRefund]:
    """Refunds still processing or abnormal whose ``next_check_at`` has come, the
    longest-waiting first: the input of the refund follow-up job, which calls
    payments.services.refund_reconcile for each."""
    return list(
        PaymentRefund.objects.filter(status__in=REFUND_OPEN_STATUSES, next_check_at__lte=now or timezone.now())
        .select_related("transaction").order_by("next_check_at", "id")[:limit]
    )


def refunds_to_retry(*, max_attempts: int, limit: int) -> list[PaymentRefund]:
    """Refunds the provider closed (no money moved), not yet started again, below
    ``max_attempts`` and not handed to a person: payments.services.refund_retry
    starts each again."""
    return list(
        PaymentRefund.objects.filter(status=RefundStatus.FAILED, provider_status="CLOSED", attempt__lt=max_attempts,
                                     escalated_at__isnull=True, retried_by__isnull=True)
        .select_related("transaction").order_by("updated_at", "id")[:limit]
    )


def refunds_to_escalate(*, max_attempts: int, stuck_before: datetime, limit: int) -> list[PaymentRefund]:
    """Refunds a person must look at, not yet handed to one: abnormal; failed and not
    to be retried by the machine (refused, or closed ``max_attempts`` times); still
    processing since before ``stuck_before``."""
    failed_for_good = Q(status=RefundStatus.FAILED, retried_by__isnull=True) & ~Q(
        provider_status="CLOSED", attempt__lt=max_attempts)
    return list(
        PaymentRefund.objects.filter(escalated_at__isnull=True)
        .filter(Q(status=RefundStatus.ABNORMAL) | failed_for_good
                | Q(status=RefundStatus.PROCESSING, created_at__lte=stuck_before))
        .select_related("transaction").order_by("created_at", "id")[:limit]
    )


def refunds_settled_for_person(*, limit: int) -> list[PaymentRefund]:
    """Refunds a person was asked to look at that have since succeeded (their orders'
    flags can be resolved)."""
    return list(
        PaymentRefund.objects.filter(needs_person=True, status=RefundStatus.SUCCEEDED)
        .select_related("transaction").order_by("updated_at", "id")[:limit]
    )


def refunds_needing_person_exist(*, order_ref: str) -> bool:
    """Whether any refund of the order still waits for a person."""
    return PaymentRefund.objects.filter(transaction__order_ref=order_ref, needs_person=True).exists()


def refunds_by_order(*, order_refs: list[str]) -> dict[str, list[PaymentRefund]]:
    """The provider refunds of several orders in one query: order_ref -> refunds, oldest first."""
    found: dict[str, list[PaymentRefund]] = {ref: [] for ref in order_refs}
    refunds = (PaymentRefund.objects.filter(transaction__order_ref__in=order_refs)
               .select_related("transaction").order_by("created_at", "id"))
    for refund in refunds:
        found[refund.transaction.order_ref].append(refund)
    return found


def refund_get_by_out_no(*, out_refund_no: str) -> PaymentRefund | None:
    return PaymentRefund.objects.select_related("transaction").filter(out_refund_no=out_refund_no).first()


def refunds_for_ref(*, refund_ref_root: str) -> list[PaymentRefund]:
    """The attempts of one refund (``refund_ref`` and its retries ``refund_ref#n``), oldest first."""
    return list(PaymentRefund.objects.filter(Q(refund_ref=refund_ref_root) | Q(refund_ref__startswith=f"{refund_ref_root}#"))
                .order_by("attempt", "id"))
