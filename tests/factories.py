"""factory-boy factories for the whole suite."""

from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from accounts.models import Brand, Customer, MemberTier, StaffMembership, StaffRole, Store
from catalog.models import Category, Product, Sku, StoreSku
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
    password = factory.PostGenerationMethodCall("set_password", "pass12345")


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
