"""The dashboard's rollups (``backoffice.models``): recomputed from the orders, never edited.

``sales_rollups_refresh`` (the ``sales-rollups`` job) finds the (store, business date) pairs
whose orders changed since its last run (``Order.updated_at``, indexed) and recomputes each
day of those stores whole: two aggregate queries per business date, whatever the number of
stores, then the day's rows are replaced. Recomputing is always right, so a pair looked at twice
costs time, never figures. ``sales_rollups_rebuild`` recomputes a range of days (the backfill
command, the demo seed).
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import Count, DateTimeField, DurationField, ExpressionWrapper, F, Q, Sum
from django.db.models.functions import Coalesce, ExtractHour
from django.utils import timezone

from backoffice.models import ZERO, RollupWatermark, SalesRollup, SkuSalesRollup
from orders.models import Order, OrderLine, OrderStatus

WATERMARK = "sales"
# Orders saved in a transaction that was still open when the last run started carry an
# earlier ``updated_at`` than that start: look that far back again.
MARGIN = datetime.timedelta(minutes=2)

# An order counts once it is paid (or taken by a platform) and while it is not cancelled.
COUNTS = ~Q(status__in=[OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED])


def _seconds(value: datetime.timedelta | None) -> int:
    return int(value.total_seconds()) if value else 0


def _day_rows(*, business_date: datetime.date, store_ids: list[int]) -> tuple[list[SalesRollup], list[SkuSalesRollup]]:
    """The rollup rows of ``store_ids`` for one business date: two aggregate queries."""
    orders = Order.objects.filter(business_date=business_date, store_id__in=store_ids).exclude(
        status=OrderStatus.PENDING_PAYMENT)
    to_accept = ExpressionWrapper(F("accepted_at") - Coalesce("paid_at", "placed_at", output_field=DateTimeField()),
                                  output_field=DurationField())
    to_prepare = ExpressionWrapper(F("ready_at") - F("accepted_at"), output_field=DurationField())
    accepted = COUNTS & Q(accepted_at__isnull=False)
    prepared = accepted & Q(ready_at__isnull=False)
    cells = (orders.annotate(hour=ExtractHour("placed_at"))
             .values("brand_id", "store_id", "channel", "hour")
             .annotate(n=Count("id", filter=COUNTS), takings=Sum("paid_amount", filter=COUNTS),
                       refunded_orders=Count("id", filter=COUNTS & Q(refunded_amount__gt=0)),
                       refunded=Sum("refunded_amount", filter=COUNTS),
                       cancelled=Count("id", filter=Q(status=OrderStatus.CANCELLED, paid_amount__gt=0)),
                       accept_time=Sum(to_accept, filter=accepted), accepted=Count("id", filter=accepted),
                       prep_time=Sum(to_prepare, filter=prepared), prepared=Count("id", filter=prepared))
             .order_by())
    sales = [SalesRollup(brand_id=c["brand_id"], store_id=c["store_id"], business_date=business_date,
                         channel=c["channel"], hour=c["hour"], orders=c["n"], takings=c["takings"] or ZERO,
                         refunded_orders=c["refunded_orders"], refunded=c["refunded"] or ZERO,
                         cancelled=c["cancelled"], accept_seconds=_seconds(c["accept_time"]),
                         accepted=c["accepted"], prep_seconds=_seconds(c["prep_time"]), prepared=c["prepared"])
             for c in cells if c["n"] or c["cancelled"]]
    lines = (OrderLine.objects.filter(order__business_date=business_date, order__store_id__in=store_ids)
             .exclude(order__status__in=[OrderStatus.PENDING_PAYMENT, OrderStatus.CANCELLED])
             .values("order__brand_id", "order__store_id", "sku_code", "name", "spec")
             .annotate(quantity=Sum("quantity"), amount=Sum("line_total")).order_by())
    skus: dict[tuple, SkuSalesRollup] = {}
    for line in lines:
        name = f"{line['name']} {line['spec']}".strip()[:230]
        key = (line["order__store_id"], line["sku_code"], name)
        row = skus.get(key)
        if row is None:
            row = skus[key] = SkuSalesRollup(brand_id=line["order__brand_id"], store_id=line["order__store_id"],
                                             business_date=business_date, sku_code=line["sku_code"], name=name)
        row.quantity += line["quantity"] or 0
        row.amount += line["amount"] or ZERO
    return sales, list(skus.values())


def _days_replace(*, business_date: datetime.date, store_ids: list[int]) -> int:
    """Recompute one business date of ``store_ids``; returns the number of rows written."""
    sales, skus = _day_rows(business_date=business_date, store_ids=store_ids)
    with transaction.atomic():
        SalesRollup.objects.filter(business_date=business_date, store_id__in=store_ids).delete()
        SkuSalesRollup.objects.filter(business_date=business_date, store_id__in=store_ids).delete()
        SalesRollup.objects.bulk_create(sales, batch_size=1000)
        SkuSalesRollup.objects.bulk_create(skus, batch_size=1000)
    return len(sales) + len(skus)


def _pairs_by_date(pairs: Iterable[tuple[int, datetime.date]]) -> dict[datetime.date, list[int]]:
    by_date: dict[datetime.date, set[int]] = defaultdict(set)
    for store_id, business_date in pairs:
        by_date[business_date].add(store_id)
    return {day: sorted(stores) for day, stores in sorted(by_date.items())}


def _watermark_locked() -> RollupWatermark | None:
    """The job's watermark row, locked for the run (one run at a time); None before the first run."""
    return RollupWatermark.objects.select_for_update().filter(name=WATERMARK).first()


def sales_rollups_refresh(*, now: datetime.datetime | None = None) -> dict:
    """Recompute the days whose orders changed since the last run (the first run: every day
    with orders). Returns ``{"days": business dates recomputed, "pairs": (store, date) pairs,
    "rows": rows written}``. One run at a time (the watermark row is locked)."""
    started = now or timezone.now()
    with transaction.atomic():
        mark = _watermark_locked()
        changed = Order.objects.exclude(status=OrderStatus.PENDING_PAYMENT)
        if mark is not None:
            changed = Order.objects.filter(updated_at__gte=mark.changed_since - MARGIN)
        pairs = set(changed.values_list("store_id", "business_date").distinct().order_by())
        by_date = _pairs_by_date(pairs)
        rows = sum(_days_replace(business_date=day, store_ids=stores) for day, stores in by_date.items())
        RollupWatermark.objects.update_or_create(name=WATERMARK, defaults={"changed_since": started,
                                                                          "ran_at": timezone.now()})
    return {"days": len(by_date), "pairs": len(pairs), "rows": rows}


def sales_rollups_rebuild(*, date_from: datetime.date | None = None, date_to: datetime.date | None = None,
                          progress: Callable[[int, int, datetime.date], None] | None = None) -> dict:
    """Recompute every day with orders between ``date_from`` and ``date_to`` (inclusive; None =
    open-ended), one business date per transaction, calling ``progress(done, total, day)`` after
    each. For a backfill after an upgrade or a data repair; the job keeps them current after."""
    orders = Order.objects.all()
    if date_from:
        orders = orders.filter(business_date__gte=date_from)
    if date_to:
        orders = orders.filter(business_date__lte=date_to)
    started = timezone.now()
    by_date = _pairs_by_date(orders.values_list("store_id", "business_date").distinct().order_by())
    rows = 0
    for done, (day, stores) in enumerate(by_date.items(), start=1):
        rows += _days_replace(business_date=day, store_ids=stores)
        if progress:
            progress(done, len(by_date), day)
    if date_from is None and date_to is None:
        RollupWatermark.objects.update_or_create(name=WATERMARK, defaults={"changed_since": started,
                                                                          "ran_at": timezone.now()})
    return {"days": len(by_date), "rows": rows}


def sales_rollups_as_of() -> datetime.datetime | None:
    """When the figures were last brought up to date (None: never)."""
    return RollupWatermark.objects.filter(name=WATERMARK).values_list("ran_at", flat=True).first()
