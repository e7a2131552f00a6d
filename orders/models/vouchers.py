"""E-voucher codes issued by the OMS for a voucher order (see docs/fulfilment.md).

One voucher order carries one code per unit bought (a line of quantity 2 gives
two codes). A code is globally unique; it is ``issued`` until it is redeemed (at
the store's POS, or reported by the OMS) and then ``redeemed`` for good. The
order becomes ``redeemed`` when its last code is. A code of a refunded order is
``void``. Written only by orders.services.vouchers.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from core.actors import ActorKind
from orders.models.order import Order


class VoucherCodeState(models.TextChoices):
    ISSUED = "issued", _("Issued")
    REDEEMED = "redeemed", _("Redeemed")
    VOID = "void", _("Void")


class VoucherCode(models.Model):
    code = models.CharField(_("voucher code"), max_length=32, unique=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="voucher_codes", verbose_name=_("order"))
    line_no = models.PositiveSmallIntegerField(_("line no."))
    sku_code = models.CharField(_("SKU code"), max_length=64, blank=True)
    state = models.CharField(_("state"), max_length=12, choices=VoucherCodeState.choices,
                             default=VoucherCodeState.ISSUED)
    issued_at = models.DateTimeField(_("issued at"))
    redeemed_at = models.DateTimeField(_("redeemed at"), null=True, blank=True)
    redeemed_by_kind = models.CharField(_("redeemed by (kind)"), max_length=20, choices=ActorKind.choices,
                                        blank=True)
    redeemed_by_id = models.CharField(_("redeemed by (id)"), max_length=64, blank=True)
    redeemed_by_name = models.CharField(_("redeemed by"), max_length=100, blank=True)
    redeemed_store_ref = models.CharField(
        _("redeemed at store"), max_length=64, blank=True,
        help_text=_("The store the OMS reported the redemption from (an OMS-side reference)."),
    )

    tenant_brand_lookup = "order__brand_id"
    tenant_store_lookup = "order__store_id"

    class Meta:
        verbose_name = _("voucher code")
        verbose_name_plural = _("voucher codes")
        ordering = ["order_id", "line_no", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(state="redeemed", redeemed_at__isnull=False)
                           | (~models.Q(state="redeemed") & models.Q(redeemed_at__isnull=True))),
                name="voucher_code_redeemed_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.code
