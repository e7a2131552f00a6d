"""Reconciling known platform orders: ask the platform where an open order is now.

A push can be lost (a cancellation, a refund) and Meituan pushes nothing when its
own riders deliver, so the periodic job ``reconcile-platform-orders`` takes
platform orders still open (not completed, cancelled or refunded) that were placed
more than ``CHANNELS_RECONCILE_ORDER_MINUTES`` ago and less than
``CHANNELS_RECONCILE_ORDER_MAX_HOURS`` ago, longest-unchecked first, each at most
every ``CHANNELS_RECONCILE_ORDER_EVERY_SECONDS``, at most
``CHANNELS_RECONCILE_ORDER_BATCH`` a run. Each is fetched from the platform
(Meituan ``order/getOrderDetail``, Ele.me ``eleme.order.getOrder``) and goes through
``platform_order_ingest``: forward only, so the order moves on (cancelled, refunded,
delivered) or stays; never back.

No lock is held during a platform call. An order is claimed by a conditional
UPDATE of its check row (or by inserting it), so two overlapping runs never ask
about the same order twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from channels.adapters import adapter_for
from channels.adapters.base import BindingMismatch, PlatformError, PlatformPayloadError
from channels.models import PlatformOrderCheck
from channels.selectors import binding_for_store
from channels.services.intake import platform_order_ingest
from core.errors import DomainError
from orders.models import Channel, Order, OrderStatus

logger = logging.getLogger(__name__)

FINAL_STATUSES = (OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.REFUNDED)


@dataclass
class ReconcileResult:
    checked: int = 0
    changed: int = 0  # orders the platform's answer moved (or flagged)
    errors: list[str] = field(default_factory=list)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def platform_orders_due_for_check(*, now: datetime, limit: int) -> list[tuple[int, datetime | None]]:
    """(order id, last checked at) of open platform orders due for a check, longest-unchecked first."""
    older_than = now - timedelta(minutes=_setting("CHANNELS_RECONCILE_ORDER_MINUTES", 10))
    newer_than = now - timedelta(hours=_setting("CHANNELS_RECONCILE_ORDER_MAX_HOURS", 24))
    checked_before = now - timedelta(seconds=_setting("CHANNELS_RECONCILE_ORDER_EVERY_SECONDS", 300))
    rows = (Order.objects.filter(channel__in=Channel.platforms(), placed_at__lte=older_than,
                                 placed_at__gte=newer_than)
            .exclude(status__in=FINAL_STATUSES).exclude(channel_order_id__isnull=True)
            .filter(Q(platform_check__isnull=True) | Q(platform_check__checked_at__lte=checked_before))
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
    """Ask the platforms about open orders due for a check and apply their answer
    forward only (see the module docstring). Idempotent; safe to run twice at once."""
    now = now or timezone.now()
    limit = _setting("CHANNELS_RECONCILE_ORDER_BATCH", 100) if limit is None else limit
    result = ReconcileResult()
    for order_id, seen in platform_orders_due_for_check(now=now, limit=limit):
        if not _claim(order_id=order_id, seen=seen, now=now):
            continue
        order = Order.objects.only("id", "store_id", "channel", "channel_order_id", "status").get(pk=order_id)
        error = ""
        binding = binding_for_store(store_id=order.store_id, platform=order.channel)
        if binding is None or not binding.enabled:
            error = "no enabled binding"
        else:
            try:
                payload = adapter_for(binding.platform).fetch_order(binding, order.channel_order_id)
                ingested = platform_order_ingest(binding=binding, payload=payload)
            except (PlatformError, PlatformPayloadError, DomainError, IntegrityError) as exc:
                # The platform's own answer (unknown order, refused, down) is logged as such;
                # anything on our side carries its traceback.
                logger.warning("platform order could not be reconciled",
                               extra={"order_id": order_id, "error": str(exc)},
                               exc_info=not isinstance(exc, PlatformError | BindingMismatch))
                error = f"{type(exc).__name__}: {exc}"
            else:
                result.checked += 1
                result.changed += int(bool(ingested.applied))
        if error:
            result.errors.append(f"{order_id}: {error}")
        PlatformOrderCheck.objects.filter(order_id=order_id).update(last_error=error[:255])
    return result
