"""factory-boy factories for the whole suite."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import Brand, Customer, MemberTier, StaffMembership, StaffRole, Store
from catalog.models import Category, Platform, PlatformSkuMapping, Product, Sku, StoreSku
from core.actors import Actor, ActorKind


class ActorFactory(factory.Factory):
    class Meta:
        model = Actor

    kind = ActorKind.SYSTEM
    id = "test"
    name = "test"


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"brand{n}")
    name = factory.Sequence(lambda n: f"Brand {n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"store{n}")
    name = factory.Sequence(lambda n: f"Store {n}")
    address = "上海市黄浦区南京东路1号"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    password = factory.django.Password("pass12345")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    user = factory.SubFactory(UserFactory)
    brand = factory.SubFactory(BrandFactory)
    store = None
    role = StaffRole.BRAND_ADMIN


class MemberTierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MemberTier

    brand = factory.SubFactory(BrandFactory)
    code = factory.Sequence(lambda n: f"tier{n}")
    name = "SUPER"
    price_rate = Decimal("0.980")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    brand = factory.SubFactory(BrandFactory)
    phone = factory.Sequence(lambda n: f"1380000{n:04d}")
    name = "顾客"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"分类{n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    brand = factory.SubFactory(BrandFactory)
    category = factory.SubFactory(CategoryFactory, brand=factory.SelfAttribute("..brand"))
    name = factory.Sequence(lambda n: f"宫保鸡丁{n}")


class SkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sku

    brand = factory.SubFactory(BrandFactory)
    product = factory.SubFactory(ProductFactory, brand=factory.SelfAttribute("..brand"))
    code = factory.Sequence(lambda n: f"SKU{n:04d}")
    price = Decimal("28.00")
    packaging_fee = Decimal("1.00")


class StoreSkuFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoreSku

    store = factory.SubFactory(StoreFactory)
    sku = factory.SubFactory(SkuFactory, brand=factory.SelfAttribute("..store.brand"))


class PlatformSkuMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PlatformSkuMapping

    brand = factory.SubFactory(BrandFactory)
    store = None
    platform = Platform.MEITUAN
    platform_sku_id = factory.Sequence(lambda n: f"mt-{n}")
    sku = factory.SubFactory(SkuFactory, brand=factory.SelfAttribute("..brand"))


def staff_user(*, role, brand=None, store=None, **user_fields):
    """A back-office user with one membership: brand-wide for brand admins, else in ``store``."""
    user = UserFactory(**user_fields)
    if role == StaffRole.BRAND_ADMIN:
        MembershipFactory(user=user, brand=brand, store=None, role=role)
    else:
        MembershipFactory(user=user, brand=store.brand, store=store, role=role)
    return user


# --- promotions ------------------------------------------------------------------


class PromotionFactory(factory.django.DjangoModelFactory):
    """A full reduction 满50减10 for every store, live from 2025-01-01 for a year."""

    class Meta:
        model = "promotions.Promotion"
        skip_postgeneration_save = True

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"满50减10 #{n}")
    kind = "full_reduction"
    tiers = factory.LazyFunction(lambda: [{"threshold": "50.00", "reduction": "10.00"}])
    starts_at = factory.LazyFunction(lambda: _aware(2025, 1, 1))
    ends_at = factory.LazyFunction(lambda: _aware(2026, 1, 1))

    @factory.post_generation
    def target_skus(self, create, extracted, **kwargs):
        if create and extracted:
            self.target_skus.set(extracted)

    @factory.post_generation
    def target_categories(self, create, extracted, **kwargs):
        if create and extracted:
            self.target_categories.set(extracted)

    @factory.post_generation
    def stores(self, create, extracted, **kwargs):
        if create and extracted:
            self.stores.set(extracted)


class CouponTemplateFactory(factory.django.DjangoModelFactory):
    """10.00 off, no minimum spend, valid 30 days after issue."""

    class Meta:
        model = "promotions.CouponTemplate"

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"10元券 #{n}")
    kind = "amount_off"
    value = Decimal("10.00")
    valid_days = 30


class CouponFactory(factory.django.DjangoModelFactory):
    """Valid through 2025 by default; tests pick ``now`` inside that window."""

    class Meta:
        model = "promotions.Coupon"

    template = factory.SubFactory(CouponTemplateFactory)
    customer = factory.SubFactory(CustomerFactory, brand=factory.SelfAttribute("..template.brand"))
    code = factory.Sequence(lambda n: f"TEST{n:06d}")
    valid_from = factory.LazyFunction(lambda: _aware(2025, 1, 1))
    valid_until = factory.LazyFunction(lambda: _aware(2026, 1, 1))
    issued_at = factory.LazyFunction(lambda: _aware(2025, 1, 1))


def _aware(year: int, month: int, day: int):
    from datetime import datetime, timezone

    return datetime(year, month, day, tzinfo=timezone.utc)


# --- channels ------------------------------------------------------------------------


class StoreBindingFactory(factory.django.DjangoModelFactory):
    """A Meituan binding pointing at a simulator that is not running (tests override base_url)."""

    class Meta:
        model = "channels.StoreBinding"

    store = factory.SubFactory(StoreFactory)
    platform = "meituan"
    shop_code = factory.Sequence(lambda n: f"poi{n:04d}")
    app_id = "6001"
    secret = "mt-secret"
    token = ""
    base_url = "http://127.0.0.1:9"


# --- pos ------------------------------------------------------------------------------


def pos_terminal(*, store, role="cashier", name="Counter 1"):
    """A terminal of ``store`` through the real service: (terminal, raw token)."""
    from pos.services import pos_terminal_create

    issued = pos_terminal_create(store=store, name=name, role=role)
    return issued.terminal, issued.token
