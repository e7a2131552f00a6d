"""The dashboard's figures, read from the rollups (``backoffice.models``): the number of queries is
fixed and their cost follows the days, stores, channels and hours shown, not the orders.

Definitions (docs/workspace.md): an order *counts* once paid (or taken by a platform) and while not
cancelled; *takings* = what the customers of counted orders paid; *refunds* = money given back
through after-sales on counted orders, on the day of the sale; *net* = takings - refunds; *average
ticket* = takings / orders; *refund rate* = refunded orders / orders; time to accept = from payment
(a platform order: from placing) to acceptance; time to prepare = acceptance to ready.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q, QuerySet, Sum

from backoffice.models import ZERO, SalesRollup, SkuSalesRollup
from backoffice.rollups import sales_rollups_as_of
from catalog.models import StoreSku
from orders.models import Channel, Order

CENT = Decimal("0.01")
TOP_SKUS = 10
SOLD_OUT_SHOWN = 50
MAX_DAYS = 366
DAY_HOURS = (9, 21)  # the hours chart shows at least 09:00-21:00, and every hour with orders


@dataclass(frozen=True)
class DashboardFilter:
    """What the dashboard shows: a brand, the stores (None: all of the brand), a range of business
    dates (inclusive)."""

    brand_id: int
    store_ids: tuple[int, ...] | None
    date_from: datetime.date
    date_to: datetime.date

    @property
    def days(self) -> int:
        return (self.date_to - self.date_from).days + 1

    def rollups(self, model) -> QuerySet:
        rows = model.objects.filter(brand_id=self.brand_id, business_date__gte=self.date_from,
                                    business_date__lte=self.date_to)
        return rows if self.store_ids is None else rows.filter(store_id__in=self.store_ids)

    def orders(self) -> QuerySet[Order]:
        rows = Order.objects.filter(brand_id=self.brand_id, business_date__gte=self.date_from,
                                    business_date__lte=self.date_to)
        return rows if self.store_ids is None else rows.filter(store_id__in=self.store_ids)


SUMS = {"orders": Sum("orders"), "takings": Sum("takings"), "refunded_orders": Sum("refunded_orders"),
        "refunded": Sum("refunded"), "cancelled": Sum("cancelled"), "accept_seconds": Sum("accept_seconds"),
        "accepted": Sum("accepted"), "prep_seconds": Sum("prep_seconds"), "prepared": Sum("prepared")}


@dataclass
class Figures:
    """One set of figures (the whole selection, a channel, a store, a day or an hour)."""

    orders: int = 0
    takings: Decimal = ZERO
    refunded_orders: int = 0
    refunded: Decimal = ZERO
    cancelled: int = 0
    accept_seconds: int = 0
    accepted: int = 0
    prep_seconds: int = 0
    prepared: int = 0
    label: str = ""
    key: object = None

    @classmethod
    def of(cls, row: dict, *, key=None, label: str = "") -> Figures:
        return cls(**{name: row.get(name) or (ZERO if name in ("takings", "refunded") else 0) for name in SUMS},
                   key=key, label=label)

    def add(self, other: Figures) -> None:
        for name in SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def net(self) -> Decimal:
        return self.takings - self.refunded

    @property
    def average_ticket(self) -> Decimal:
        return (self.takings / self.orders).quantize(CENT, ROUND_HALF_UP) if self.orders else ZERO

    @property
    def refund_rate(self) -> Decimal:
        """Per cent of the orders with money given back, one decimal."""
        return (Decimal(100 * self.refunded_orders) / self.orders).quantize(Decimal("0.1"), ROUND_HALF_UP) \
            if self.orders else Decimal("0.0")

    @property
    def accept_minutes(self) -> Decimal | None:
        return (Decimal(self.accept_seconds) / 60 / self.accepted).quantize(Decimal("0.1"), ROUND_HALF_UP) \
            if self.accepted else None

    @property
    def prep_minutes(self) -> Decimal | None:
        return (Decimal(self.prep_seconds) / 60 / self.prepared).quantize(Decimal("0.1"), ROUND_HALF_UP) \
            if self.prepared else None


@dataclass
class Dashboard:
    total: Figures
    channels: list[Figures]
    hours: list[Figures]
    days: list[Figures]
    stores: list[Figures]
    top_skus: list[dict]
    sold_out: list[StoreSku]
    sold_out_count: int
    as_of: datetime.datetime | None


def dashboard_figures(*, selection: DashboardFilter, store_names: dict[int, str]) -> Dashboard:
    """Every figure of the dashboard for ``selection``: seven queries whatever the orders."""
    channel_labels = dict(Channel.choices)
    channels = [Figures.of(row, key=row["channel"], label=str(channel_labels.get(row["channel"], row["channel"])))
                for row in selection.rollups(SalesRollup).values("channel").annotate(**SUMS).order_by("channel")]
    channels.sort(key=lambda f: (-f.takings, -f.orders, f.key))
    total = Figures()
    for row in channels:
        total.add(row)
    by_hour = {row["hour"]: Figures.of(row, key=row["hour"])
               for row in selection.rollups(SalesRollup).values("hour").annotate(**SUMS).order_by()}
    by_day = {row["business_date"]: Figures.of(row, key=row["business_date"])
              for row in selection.rollups(SalesRollup).values("business_date").annotate(**SUMS).order_by()}
    stores = [Figures.of(row, key=row["store_id"], label=store_names.get(row["store_id"], str(row["store_id"])))
              for row in selection.rollups(SalesRollup).values("store_id").annotate(**SUMS).order_by()]
    stores.sort(key=lambda f: (-f.takings, -f.orders, f.label))
    top = list(selection.rollups(SkuSalesRollup).values("sku_code", "name")
               .annotate(quantity=Sum("quantity"), amount=Sum("amount"))
               .order_by("-quantity", "-amount", "sku_code", "name")[:TOP_SKUS])
    sold_out_rows = StoreSku.objects.filter(Q(is_available=False) | Q(stock_out=True), store__brand_id=selection.brand_id)
    if selection.store_ids is not None:
        sold_out_rows = sold_out_rows.filter(store_id__in=selection.store_ids)
    sold_out = list(sold_out_rows.select_related("sku__product", "store")
                    .order_by("store__code", "sku__product__sort_order", "sku__code")[:SOLD_OUT_SHOWN + 1])
    sold_out_count = len(sold_out) if len(sold_out) <= SOLD_OUT_SHOWN else sold_out_rows.count()
    days = [by_day.get(selection.date_from + datetime.timedelta(days=n))
            or Figures(key=selection.date_from + datetime.timedelta(days=n)) for n in range(selection.days)]
    busy = [hour for hour, row in by_hour.items() if row.orders or row.cancelled]
    first, last = min([*busy, DAY_HOURS[0] + 1]) - 1, max([*busy, DAY_HOURS[1] - 1]) + 1
    hours = [by_hour.get(hour) or Figures(key=hour) for hour in range(max(first, 0), min(last, 23) + 1)]
    return Dashboard(total=total, channels=channels, hours=hours, days=days, stores=stores, top_skus=top,
                     sold_out=sold_out[:SOLD_OUT_SHOWN], sold_out_count=sold_out_count, as_of=sales_rollups_as_of())


def dashboard_summary_rows(*, selection: DashboardFilter) -> QuerySet:
    """The flat summary for the exports: one row per business date, store and channel."""
    return (selection.rollups(SalesRollup).values("business_date", "store__code", "store__name", "channel")
            .annotate(**SUMS).order_by("business_date", "store__code", "channel"))


def dashboard_order_rows(*, selection: DashboardFilter) -> QuerySet[Order]:
    """The orders of the selection for the orders export, oldest first (streamed by the caller)."""
    return (selection.orders().select_related("store")
            .only("order_no", "business_date", "day_seq", "placed_at", "channel", "channel_order_id", "order_type",
                  "status", "subtotal", "discount_total", "delivery_fee", "packaging_fee", "total", "paid_amount",
                  "refunded_amount", "accepted_at", "ready_at", "completed_at", "cancelled_at", "store__code",
                  "store__name")
            .order_by("placed_at", "id"))
