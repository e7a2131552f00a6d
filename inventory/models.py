"""Stock per store per SKU, shared by every channel, with a ledger of every change.

Invariant (checked by ``manage.py stock_check``): for every Stock row,
``on_hand == sum(movement.delta)``; the first movement is the initial count.
A SKU of a store without a Stock row is not stock-tracked (made to order).
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Store
from catalog.models import Sku


class Stock(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="stocks", verbose_name=_("store"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="stocks", verbose_name=_("SKU"))
    on_hand = models.IntegerField(_("on hand"), default=0)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("stock")
        verbose_name_plural = _("stock")
        constraints = [
            models.UniqueConstraint(fields=["store", "sku"], name="stock_unique_store_sku"),
            # The last line of defence against oversell: the database refuses it.
            models.CheckConstraint(condition=models.Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.store} · {self.sku.code}: {self.on_hand}"


class MovementReason(models.TextChoices):
    INITIAL = "initial", _("Initial count")
    ADJUSTMENT = "adjustment", _("Adjustment")
    ORDER = "order", _("Order")
    ORDER_RELEASE = "order_release", _("Order cancelled or expired")
    RETURN = "return", _("Return (restock)")
    WALK_IN_SALE = "walk_in_sale", _("Walk-in sale")
    ORDER_PART_RELEASE = "order_part_release", _("Part of an order refunded before it was prepared")
    WRITE_OFF = "write_off", _("Returned goods written off")


class StockMovement(models.Model):
    """One ledger row per change. ``reference`` is opaque: an order number, a
    receipt number or a note; (stock, reason, reference) is unique for orders
    and releases so an order can never deduct or give back twice."""

    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="movements", verbose_name=_("stock"))
    delta = models.IntegerField(_("change"))
    reason = models.CharField(_("reason"), max_length=20, choices=MovementReason.choices)
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    note = models.CharField(_("note"), max_length=255, blank=True)
    # Write-off rows: the units that came back and were thrown away (``delta`` 0: the
    # stock was taken when they were sold).
    written_off = models.PositiveIntegerField(_("written off"), default=0, db_default=0)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    tenant_brand_lookup = "stock__store__brand_id"
    tenant_store_lookup = "stock__store_id"

    class Meta:
        verbose_name = _("stock movement")
        verbose_name_plural = _("stock movements")
        ordering = ["stock_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stock", "reason", "reference"], name="stock_movement_once_per_reference",
                condition=models.Q(reason__in=["order", "order_release", "walk_in_sale"]),
            ),
        ]
        indexes = [models.Index(fields=["reference"], name="stock_movement_reference_idx")]

    def __str__(self) -> str:
        return f"{self.stock_id} {self.delta:+d} {self.reason} {self.reference}"


class StockShortfall(models.Model):
    """Stock a platform order needed but the store did not have (the order was
    still taken: platform orders are already paid). The store is alerted."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="+", verbose_name=_("SKU"))
    reference = models.CharField(_("reference"), max_length=64)
    quantity = models.PositiveIntegerField(_("missing quantity"))
    resolved = models.BooleanField(_("resolved"), default=False)
    created_at = models.DateTimeField(_("time"), auto_now_add=True)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("stock shortfall")
        verbose_name_plural = _("stock shortfalls")

    def __str__(self) -> str:
        return f"{self.reference}: {self.sku_id} -{self.quantity}"
