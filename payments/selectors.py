"""Payment reads."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from payments.models import PaymentRefund, PaymentStatus, PaymentTransaction, RefundStatus


def payment_get_for_order(*, order_ref: str) -> PaymentTransaction | None:
    return PaymentTransaction.objects.filter(order_ref=order_ref).first()


def payments_pending_for_reconcile(*, older_than_seconds: int, limit: int,
                                   now: datetime | None = None) -> list[PaymentTransaction]:
    """Payments still ``created`` for at least ``older_than_seconds``, oldest first.

    The input of the lost-notify job: for each, call payments.services.payment_reconcile.
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=older_than_seconds)
    return list(
        PaymentTransaction.objects.filter(status=PaymentStatus.CREATED, created_at__lte=cutoff)
        .order_by("created_at", "id")[:limit]
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
