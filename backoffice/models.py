"""Sales rollups: what the dashboard reads, so that its cost follows the days and stores shown,
not the number of orders.

One row per store, business date, channel and hour of placing (``SalesRollup``) and per store,
business date and SKU (``SkuSalesRollup``), recomputed from the orders by
``backoffice.rollups.sales_rollups_refresh`` (the ``sales-rollups`` job, every minute): a
(store, day) whose orders changed since the last run is recomputed whole, so a refund decided a
week later lands on the day of the sale. ``RollupWatermark`` remembers how far the job got.
"""

from decimal import Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Brand, Store
ZERO = Decimal("0.00")
MONEY = {"max_digits": 14, "decimal_places": 2}  # a brand's month of sales fits


class SalesRollup(models.Model):
    """The orders of one store, day, channel and hour of placing (local time).

    ``orders``: orders that count (paid or taken by a platform, not cancelled); ``takings``: what
    their customers paid; ``refunded_orders`` / ``refunded``: those of them with money given back
    through after-sales, and how much (attributed to the day of the sale); ``cancelled``: orders
    cancelled after payment; the sums of seconds from payment to acceptance and from acceptance to
    ready, with the number of orders each sum covers."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", verbose_name=_("brand"))
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    business_date = models.DateField(_("business date"))
    channel = models.CharField(_("channel"), max_length=20)
    hour = models.PositiveSmallIntegerField(_("hour"))
    orders = models.PositiveIntegerField(_("orders"), default=0)
    takings = models.DecimalField(_("takings"), **MONEY, default=ZERO)
    refunded_orders = models.PositiveIntegerField(_("refunded orders"), default=0)
    refunded = models.DecimalField(_("refunded"), **MONEY, default=ZERO)
    cancelled = models.PositiveIntegerField(_("cancelled after payment"), default=0)
    accept_seconds = models.BigIntegerField(_("seconds to accept (sum)"), default=0)
    accepted = models.PositiveIntegerField(_("accepted orders"), default=0)
    prep_seconds = models.BigIntegerField(_("seconds to prepare (sum)"), default=0)
    prepared = models.PositiveIntegerField(_("prepared orders"), default=0)

    tenant_brand_lookup = "brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("sales rollup")
        verbose_name_plural = _("sales rollups")
        constraints = [models.UniqueConstraint(fields=["store", "business_date", "channel", "hour"],
                                               name="sales_rollup_unique_cell")]
        indexes = [models.Index(fields=["brand", "business_date"], name="sales_rollup_brand_day_idx")]


class SkuSalesRollup(models.Model):
    """Units and amount (line totals after discounts) of one SKU sold by one store on one day,
    over the orders that count."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="+", verbose_name=_("brand"))
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    business_date = models.DateField(_("business date"))
    sku_code = models.CharField(_("SKU code"), max_length=64, blank=True)
    name = models.CharField(_("name"), max_length=230)
    quantity = models.PositiveIntegerField(_("quantity"), default=0)
    amount = models.DecimalField(_("amount"), **MONEY, default=ZERO)

    tenant_brand_lookup = "brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("SKU sales rollup")
        verbose_name_plural = _("SKU sales rollups")
        constraints = [models.UniqueConstraint(fields=["store", "business_date", "sku_code", "name"],
                                               name="sku_sales_rollup_unique")]
        indexes = [models.Index(fields=["brand", "business_date"], name="sku_rollup_brand_day_idx")]


class RollupWatermark(models.Model):
    """How far ``sales_rollups_refresh`` got: orders changed at or after ``changed_since`` (less a
    margin for transactions still open then) are looked at next time."""

    name = models.CharField(_("name"), max_length=40, primary_key=True)
    changed_since = models.DateTimeField(_("orders changed since"))
    ran_at = models.DateTimeField(_("ran at"))

    class Meta:
        verbose_name = _("rollup watermark")
        verbose_name_plural = _("rollup watermarks")
