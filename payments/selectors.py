"""Payment reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import F, Q
from django.utils import timezone

from payments.models import PaymentRefund, PaymentStatus, PaymentTransaction, RefundStatus


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


def refunds_pending_for_reconcile(*, older_than_seconds: int, limit: int,
                                  now: datetime | None = None) -> list[PaymentRefund]:
    """Refunds still ``processing`` for at least ``older_than_seconds``, oldest first."""
    cutoff = (now or timezone.now()) - timedelta(seconds=older_than_seconds)
    return list(
        PaymentRefund.objects.filter(status=RefundStatus.PROCESSING, created_at__lte=cutoff)
        .select_related("transaction").order_by("created_at", "id")[:limit]
    )


def refunds_by_order(*, order_refs: list[str]) -> dict[str, list[PaymentRefund]]:
    """The provider refunds of several orders in one query: order_ref -> refunds, oldest first."""
    found: dict[str, list[PaymentRefund]] = {ref: [] for ref in order_refs}
    refunds = (PaymentRefund.objects.filter(transaction__order_ref__in=order_refs)
               .select_related("transaction").order_by("created_at", "id"))
    for refund in refunds:
        found[refund.transaction.order_ref].append(refund)
    return found
