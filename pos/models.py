"""POS terminals (a store's cashier systems) and the walk-in sales they report."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Store


class TerminalRole(models.TextChoices):
    """What a terminal may do. A cashier terminal runs the counter (accept,
    ready, dispatch, complete, walk-in sales, sold-out, vouchers); turning an
    order away (reject) needs a manager terminal. See docs/pos-api.md."""

    CASHIER = "cashier", _("Cashier")
    MANAGER = "manager", _("Manager")


# API verbs only a manager terminal may use.
MANAGER_ONLY_VERBS = frozenset({"reject", "after_sales_approve", "after_sales_reject", "after_sales_goods_received"})


class PosTerminal(models.Model):
    """A POS of one store. Only a SHA-256 of its token is stored; the token is
    shown once, when the terminal is created or its token rotated."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="pos_terminals", verbose_name=_("store"))
    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("role"), max_length=10, choices=TerminalRole.choices, default=TerminalRole.CASHIER,
                            help_text=_("A cashier terminal cannot reject orders; a manager terminal can."))
    key_hash = models.CharField(_("token hash"), max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("token prefix"), max_length=12, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    rotated_at = models.DateTimeField(_("token rotated at"), null=True, blank=True, editable=False)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("POS terminal")
        verbose_name_plural = _("POS terminals")
        ordering = ["store_id", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.store})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def may(self, verb: str) -> bool:
        return self.role == TerminalRole.MANAGER or verb not in MANAGER_ONLY_VERBS


class WalkInSale(models.Model):
    """A sale at the counter reported by a POS; it takes shared stock once per
    receipt (the receipt number is unique per store)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+", verbose_name=_("store"))
    terminal = models.ForeignKey(PosTerminal, on_delete=models.SET_NULL, null=True, blank=True, related_name="sales",
                                 verbose_name=_("terminal"))
    receipt_no = models.CharField(_("receipt number"), max_length=64)
    lines = models.JSONField(_("lines"), default=list)
    shortfall = models.JSONField(_("stock shortfall"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("walk-in sale")
        verbose_name_plural = _("walk-in sales")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["store", "receipt_no"], name="walk_in_sale_unique_receipt")]

    def __str__(self) -> str:
        return f"{self.store} · {self.receipt_no}"
