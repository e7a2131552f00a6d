"""The store feed: what a store's POS must hear about, acknowledged by the POS.

One row per event, written by ``orders.services.feed.feed_record`` in the same
transaction as the change it announces. The POS reads the unacknowledged rows
of its store (oldest first) and acknowledges them; delivery is at least once
and the POS de-duplicates by event id. ``acked_by`` is the acknowledging
terminal's id as an opaque string: pos sits above orders, so no foreign key.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Store
from orders.models.order import Order


class StoreFeedEventType(models.TextChoices):
    ORDER_CREATED = "order.created", _("New order")
    ORDER_CANCELLED = "order.cancelled", _("Order cancelled")
    ORDER_UPDATED = "order.updated", _("Order details changed")
    ORDER_REFUND_REQUESTED = "order.refund_requested", _("Refund requested")
    ORDER_REFUNDED = "order.refunded", _("Order refunded")
    AFTERSALES_REQUESTED = "aftersales.requested", _("After-sales request")
    AFTERSALES_DECIDED = "aftersales.decided", _("After-sales request decided")
    AFTERSALES_REFUNDED = "aftersales.refunded", _("After-sales refund completed")


class StoreFeedEvent(models.Model):
    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="feed_events", verbose_name=_("order"))
    type = models.CharField(_("type"), max_length=30, choices=StoreFeedEventType.choices)
    # ``aftersales.*`` events: the after-sales request's id (aftersales sits above
    # orders, so an opaque id, no foreign key).
    after_sales_id = models.PositiveIntegerField(_("after-sales request id"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    acked_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acked_by = models.CharField(_("acknowledged by terminal"), max_length=64, blank=True)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("store feed event")
        verbose_name_plural = _("store feed events")
        ordering = ["id"]
        constraints = [
            # An order becomes the store's to handle once; the POS hears it once.
            models.UniqueConstraint(fields=["order"], condition=models.Q(type="order.created"),
                                    name="store_feed_one_created_per_order"),
        ]
        indexes = [
            models.Index(fields=["store", "id"], condition=models.Q(acked_at__isnull=True),
                         name="store_feed_unacked_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.store_id} #{self.pk} {self.type} {self.order_id}"
