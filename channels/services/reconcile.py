"""Reconciling known platform orders: ask the platform where an open order is now.

A push can be lost (a cancellation, a refund), a binding may get no pushes at all,
and Meituan pushes nothing when its own riders deliver, so the periodic job
``reconcile-platform-orders`` (every 15 s) takes platform orders still open (not
completed, cancelled or refunded) placed less than ``CHANNELS_RECONCILE_ORDER_MAX_HOURS``
ago and due for a check: a young one (placed less than
``CHANNELS_RECONCILE_YOUNG_MINUTES`` ago) once ``CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS``
have passed since its last check (or since it was placed), an older one once
``CHANNELS_RECONCILE_ORDER_EVERY_SECONDS`` have; half a job interval early counts as
due (the job's own jitter must not cost a whole interval). Longest-unchecked first, at
most ``CHANNELS_RECONCILE_ORDER_BATCH`` a run. The orders of one binding are fetched
together (Meituan ``order/getOrderDetail`` per order, Ele.me one ``eleme.order.mgetOrders``
for up to 50) and each goes through ``platform_order_ingest``: forward only, so the
order moves on (cancelled, refunded, delivered) or stays; never back.

So a cancellation with no push reaches the POS feed within the young interval plus
one job interval (30 s + 7.5 s by default) of the check before it. The cost is one
platform call per young open order per ``CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS`` on
Meituan, one per binding on Ele.me (docs/channels.md has the figures).

No lock is held during a platform call. An order is claimed by a conditional
UPDATE of its check row (or by inserting it), so two overlapping runs never ask
about the same order twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from channels.adapters import adapter_for
from channels.adapters.base import BindingMismatch, PlatformError, PlatformPayloadError
from channels.models import PlatformOrderCheck, StoreBinding
from channels.selectors import binding_for_store
from channels.services.intake import platform_order_ingest
from core.errors import DomainError
from orders.models import Channel, Order, OrderStatus

logger = logging.getLogger(__name__)

FINAL_STATUSES = (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.REFUNDED)
JOB = "reconcile-platform-orders"


@dataclass
class ReconcileResult:
    checked: int = 0
    changed: int = 0  # orders the platform's answer moved (or flagged)
    errors: list[str] = field(default_factory=list)


def platform_orders_due_for_check(*, now: datetime, limit: int) -> list[tuple[int, datetime | None]]:
    """(order id, last checked at) of open platform orders due for a check, longest-unchecked first."""
    early = timedelta(seconds=float(settings.PERIODIC_JOBS[JOB]["every"]) / 2)
    young_since = now - timedelta(minutes=settings.CHANNELS_RECONCILE_YOUNG_MINUTES)
    young_due = now - timedelta(seconds=settings.CHANNELS_RECONCILE_YOUNG_EVERY_SECONDS) + early
    older_due = now - timedelta(seconds=settings.CHANNELS_RECONCILE_ORDER_EVERY_SECONDS) + early
    unchecked = Q(platform_check__isnull=True)
    young = Q(placed_at__gte=young_since) & (
        (unchecked & Q(placed_at__lte=young_due)) | Q(platform_check__checked_at__lte=young_due))
    older = Q(placed_at__lt=young_since) & (unchecked | Q(platform_check__checked_at__lte=older_due))
    rows = (Order.objects.filter(channel__in=Channel.platforms(),
                                 placed_at__gte=now - timedelta(hours=settings.CHANNELS_RECONCILE_ORDER_MAX_HOURS))
            .exclude(status__in=FINAL_STATUSES).exclude(channel_order_id__isnull=True)
            .filter(young | older)
            .order_by(F("platform_check__checked_at").asc(nulls_first=True), "placed_at", "pk")
            .values_list("pk", "platform_check__checked_at")[:limit])
    return list(rows)


def _claim(*, order_id: int, seen: datetime | None, now: datetime) -> bool:
    """Take the order for this run: only one overlapping run wins."""
    if seen is not None:
        return bool(PlatformOrderCheck.objects.filter(order_id=order_id, checked_at=seen).update(checked_at=now))
    try:
        with transaction.atomic():
            PlatformOrderCheck.objects.create(order_id=order_id, checked_at=now)
    except IntegrityError:
        return False  # another run inserted it first
    return True


def platform_orders_reconcile(*, now: datetime | None = None, limit: int | None = None) -> ReconcileResult:
    """Ask the platforms about open orders due for a check, one batch per binding, and
    apply their answer forward only (see the module docstring). Idempotent; safe to run
    twice at once."""
    now = now or timezone.now()
    limit = settings.CHANNELS_RECONCILE_ORDER_BATCH if limit is None else limit
    result = ReconcileResult()
    claimed = [order_id for order_id, seen in platform_orders_due_for_check(now=now, limit=limit)
               if _claim(order_id=order_id, seen=seen, now=now)]
    groups: dict[tuple[int, str], list[Order]] = defaultdict(list)
    for order in (Order.objects.filter(pk__in=claimed).order_by("pk")
                  .only("id", "store_id", "channel", "channel_order_id", "status")):
        groups[(order.store_id, order.channel)].append(order)
    for (store_id, platform), orders in groups.items():
        binding = binding_for_store(store_id=store_id, platform=platform)
        if binding is None or not binding.enabled:
            errors = dict.fromkeys((order.pk for order in orders), "no enabled binding")
        else:
            errors = _binding_orders_check(binding=binding, orders=orders, result=result)
        for order in orders:
            if errors.get(order.pk):
                result.errors.append(f"{order.pk}: {errors[order.pk]}")
        by_error: dict[str, list[int]] = defaultdict(list)
        for order in orders:
            by_error[errors.get(order.pk, "")[:255]].append(order.pk)
        for error, order_ids in by_error.items():
            PlatformOrderCheck.objects.filter(order_id__in=order_ids).update(last_error=error)
    return result


def _binding_orders_check(*, binding: StoreBinding, orders: list[Order], result: ReconcileResult) -> dict[int, str]:
    """Fetch ``orders`` of one binding from its platform and ingest each answer; returns
    the error per order id for those that failed."""
    errors: dict[int, str] = {}
    found = adapter_for(binding.platform).fetch_orders(binding, [order.channel_order_id for order in orders])
    for order in orders:
        payload = found.get(order.channel_order_id)
        try:
            if isinstance(payload, Exception):
                raise payload
            if payload is None:
                raise PlatformPayloadError(f"order {order.channel_order_id} missing from the answer")
            ingested = platform_order_ingest(binding=binding, payload=payload)
        except (PlatformError, PlatformPayloadError, DomainError, IntegrityError) as exc:
            # The platform's own answer (unknown order, refused, down) is logged as such;
            # anything on our side carries its traceback.
            logger.warning("platform order could not be reconciled",
                           extra={"order_id": order.pk, "error": str(exc)},
                           exc_info=not isinstance(exc, PlatformError | BindingMismatch))
            errors[order.pk] = f"{type(exc).__name__}: {exc}"
        else:
            result.checked += 1
            result.changed += int(bool(ingested.applied))
    return errors
