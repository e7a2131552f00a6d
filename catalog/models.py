"""The brand's menu: categories, products, SKUs, per-store prices and platform codes."""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Brand, Store

MONEY = {"max_digits": 10, "decimal_places": 2}


class StockDeductionMode(models.TextChoices):
    ON_ORDER = "on_order", _("On order (下单减库存)")
    ON_PAYMENT = "on_payment", _("On payment (付款减库存)")


class Platform(models.TextChoices):
    """Delivery platforms whose item codes we map to our SKUs."""

    MEITUAN = "meituan", _("Meituan Waimai")
    ELEME = "eleme", _("Ele.me")


class Category(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="categories", verbose_name=_("brand"))
    name = models.CharField(_("name"), max_length=50)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["brand_id", "sort_order", "id"]
        constraints = [models.UniqueConstraint(fields=["brand", "name"], name="category_unique_name_per_brand")]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="products", verbose_name=_("brand"))
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category")
    )
    name = models.CharField(_("name"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    sort_order = models.PositiveIntegerField(_("sort order"), default=0)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["brand_id", "sort_order", "id"]

    def __str__(self) -> str:
        return self.name


class Sku(models.Model):
    """A sellable variant. ``code`` is the merchant's own SKU code."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="skus", verbose_name=_("brand"))
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="skus", verbose_name=_("product"))
    code = models.CharField(_("merchant SKU code"), max_length=40)
    spec = models.CharField(_("specification"), max_length=50, blank=True, help_text=_("e.g. large, spicy"))
    price = models.DecimalField(_("price"), **MONEY, validators=[MinValueValidator(Decimal("0.00"))])
    packaging_fee = models.DecimalField(
        _("packaging fee"), **MONEY, default=Decimal("0.00"), validators=[MinValueValidator(Decimal("0.00"))]
    )
    stock_mode = models.CharField(
        _("stock deduction"), max_length=12, choices=StockDeductionMode.choices, default=StockDeductionMode.ON_PAYMENT
    )
    is_active = models.BooleanField(_("active"), default=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("SKU")
        verbose_name_plural = _("SKUs")
        ordering = ["brand_id", "product_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["brand", "code"], name="sku_unique_code_per_brand"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="sku_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} [{self.code}]"

    @property
    def display_name(self) -> str:
        return f"{self.product.name}({self.spec})" if self.spec else self.product.name


class StoreSku(models.Model):
    """A SKU as one store sells it: its own price (optional) and availability."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="store_skus", verbose_name=_("store"))
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="store_skus", verbose_name=_("SKU"))
    price = models.DecimalField(
        _("store price"), **MONEY, null=True, blank=True, validators=[MinValueValidator(Decimal("0.00"))],
        help_text=_("Leave empty to use the brand price."),
    )
    is_available = models.BooleanField(
        _("available"), default=True,
        help_text=_("Off means sold out by hand (沽清): it stays sold out, even after a restock, until a person "
                    "turns it back on."))
    stock_out = models.BooleanField(
        _("out of stock"), default=False, db_default=False,
        help_text=_("Set by the order center while the store's tracked stock of this SKU is zero."))
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    tenant_brand_lookup = "store__brand_id"
    tenant_store_lookup = "store_id"

    class Meta:
        verbose_name = _("store SKU")
        verbose_name_plural = _("store SKUs")
        constraints = [models.UniqueConstraint(fields=["store", "sku"], name="store_sku_unique")]

    def __str__(self) -> str:
        return f"{self.store} · {self.sku}"

    @property
    def effective_price(self) -> Decimal:
        return self.price if self.price is not None else self.sku.price

    @property
    def on_sale(self) -> bool:
        """What every channel is told: on sale unless sold out by hand or out of stock."""
        return self.is_available and not self.stock_out


class PlatformSkuMapping(models.Model):
    """A platform's item codes (food code / sku id) mapped to our SKU.

    Platforms usually carry the merchant's own code (``app_food_code`` on
    Meituan, ``extendCode`` on Ele.me); this table covers the cases where they
    carry only their own ids, per brand and optionally per store.
    """

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="platform_skus", verbose_name=_("brand"))
    store = models.ForeignKey(
        Store, on_delete=models.CASCADE, null=True, blank=True, related_name="platform_skus",
        verbose_name=_("store"), help_text=_("Empty: the mapping holds for every store of the brand."),
    )
    platform = models.CharField(_("platform"), max_length=20, choices=Platform.choices)
    platform_food_code = models.CharField(_("platform food code"), max_length=64, blank=True)
    platform_sku_id = models.CharField(_("platform SKU id"), max_length=64)
    sku = models.ForeignKey(Sku, on_delete=models.CASCADE, related_name="platform_mappings", verbose_name=_("SKU"))
    learnt = models.BooleanField(
        _("learnt from orders"), default=False,
        help_text=_("Filled in from the platform's codes on an ingested order (matched by our merchant code)."))

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("platform SKU mapping")
        verbose_name_plural = _("platform SKU mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "platform", "platform_sku_id", "store"], name="platform_sku_unique_per_store",
                condition=models.Q(store__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["brand", "platform", "platform_sku_id"], name="platform_sku_unique_brand_wide",
                condition=models.Q(store__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} {self.platform_sku_id} → {self.sku.code}"
