"""Tenancy: the scope of each kind of user, applied to every tenant-owned model and
to the back-office order API."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.models import Brand, Customer, StaffRole, Store
from accounts.selectors import scope_for_user
from catalog.models import Sku, StoreSku
from core.models import IdempotencyRecord
from core.tenancy import TenantScope, scope_queryset
from orders.models import Order
from tests.factories import (
    BrandFactory,
    CustomerFactory,
    MembershipFactory,
    SkuFactory,
    StoreFactory,
    StoreSkuFactory,
    UserFactory,
)
from tests.order_helpers import make_order

pytestmark = pytest.mark.django_db

LIST_URL = "/api/backoffice/v1/orders"


@pytest.fixture
def world():
    """Two brands; brand 1 has stores A and B, brand 2 has store C; one order, SKU,
    store SKU and customer each."""
    brand1, brand2 = BrandFactory(code="b1"), BrandFactory(code="b2")
    stores = {"A": StoreFactory(brand=brand1), "B": StoreFactory(brand=brand1), "C": StoreFactory(brand=brand2)}
    skus = {"b1": SkuFactory(brand=brand1), "b2": SkuFactory(brand=brand2)}
    return {
        "brand1": brand1, "brand2": brand2, "stores": stores, "skus": skus,
        "orders": {name: make_order(store=store) for name, store in stores.items()},
        "store_skus": {name: StoreSkuFactory(store=store, sku=skus["b1" if store.brand == brand1 else "b2"])
                       for name, store in stores.items()},
        "customers": {"b1": CustomerFactory(brand=brand1), "b2": CustomerFactory(brand=brand2)},
    }


def _member(world, role, store_name=None):
    store = world["stores"][store_name] if store_name else None
    brand = store.brand if store else world["brand1"]
    return MembershipFactory(brand=brand, store=store, role=role).user


def _visible(world, scope):
    """What ``scope`` sees of each model, as names of the fixture objects."""
    def names(objects, queryset):
        ids = set(queryset.values_list("pk", flat=True))
        return sorted(name for name, obj in objects.items() if obj.pk in ids)

    return {
        "orders": names(world["orders"], scope_queryset(Order.objects.all(), scope)),
        "stores": names(world["stores"], scope_queryset(Store.objects.all(), scope)),
        "store_skus": names(world["store_skus"], scope_queryset(StoreSku.objects.all(), scope)),
        "skus": names(world["skus"], scope_queryset(Sku.objects.all(), scope)),
        "customers": names(world["customers"], scope_queryset(Customer.objects.all(), scope)),
        "brands": names({"b1": world["brand1"], "b2": world["brand2"]}, scope_queryset(Brand.objects.all(), scope)),
    }


# --- scope_for_user --------------------------------------------------------------------


def test_brand_admin_scope_is_the_whole_brand(world):
    user = _member(world, StaffRole.BRAND_ADMIN)

    scope = scope_for_user(user=user)

    assert scope == TenantScope(brand_ids=frozenset({world["brand1"].pk}), store_ids=frozenset(),
                                brand_wide_ids=frozenset({world["brand1"].pk}))


@pytest.mark.parametrize("role", [StaffRole.STORE_MANAGER, StaffRole.CLERK])
def test_store_level_scope_is_the_one_store(world, role):
    user = _member(world, role, "A")

    scope = scope_for_user(user=user)

    assert scope == TenantScope(brand_ids=frozenset({world["brand1"].pk}),
                                store_ids=frozenset({world["stores"]["A"].pk}), brand_wide_ids=frozenset())


def test_user_without_memberships_sees_nothing(world):
    scope = scope_for_user(user=UserFactory())

    assert scope == TenantScope()
    assert scope.is_empty


def test_superuser_sees_everything(world):
    scope = scope_for_user(user=UserFactory(is_superuser=True))

    assert scope.all_access is True
    assert scope.sees_store(store_id=world["stores"]["C"].pk, brand_id=world["brand2"].pk)


def test_anonymous_and_inactive_users_see_nothing(world):
    inactive = _member(world, StaffRole.BRAND_ADMIN)
    inactive.is_active = False

    assert scope_for_user(user=AnonymousUser()) == TenantScope()
    assert scope_for_user(user=inactive) == TenantScope()
    assert scope_for_user(user=None) == TenantScope()


def test_scope_is_cached_on_the_user_object(world, django_assert_num_queries):
    user = _member(world, StaffRole.CLERK, "A")
    first = scope_for_user(user=user)

    with django_assert_num_queries(0):
        again = scope_for_user(user=user)

    assert again is first


# --- scope_queryset over every kind of tenant-owned model --------------------------------


def test_store_manager_sees_own_store_rows_and_brand_level_data(world):
    scope = scope_for_user(user=_member(world, StaffRole.STORE_MANAGER, "A"))

    assert _visible(world, scope) == {
        "orders": ["A"], "stores": ["A"], "store_skus": ["A"], "skus": ["b1"], "customers": ["b1"],
        "brands": ["b1"],
    }


def test_brand_admin_sees_every_store_of_the_brand_and_nothing_of_another(world):
    scope = scope_for_user(user=_member(world, StaffRole.BRAND_ADMIN))

    assert _visible(world, scope) == {
        "orders": ["A", "B"], "stores": ["A", "B"], "store_skus": ["A", "B"], "skus": ["b1"],
        "customers": ["b1"], "brands": ["b1"],
    }


def test_empty_scope_sees_nothing_and_superuser_sees_all(world):
    assert _visible(world, TenantScope()) == {
        "orders": [], "stores": [], "store_skus": [], "skus": [], "customers": [], "brands": []}
    assert _visible(world, TenantScope(all_access=True)) == {
        "orders": ["A", "B", "C"], "stores": ["A", "B", "C"], "store_skus": ["A", "B", "C"],
        "skus": ["b1", "b2"], "customers": ["b1", "b2"], "brands": ["b1", "b2"],
    }


def test_member_of_two_stores_in_two_brands_sees_exactly_those(world):
    user = _member(world, StaffRole.CLERK, "A")
    MembershipFactory(user=user, brand=world["brand2"], store=world["stores"]["C"], role=StaffRole.STORE_MANAGER)

    visible = _visible(world, scope_for_user(user=user))

    assert visible["orders"] == ["A", "C"]
    assert visible["skus"] == ["b1", "b2"]


def test_scoping_a_model_that_is_not_tenant_owned_is_refused():
    with pytest.raises(TypeError, match="IdempotencyRecord is not tenant-owned"):
        scope_queryset(IdempotencyRecord.objects.all(), TenantScope(all_access=True))


# --- the back-office order API -------------------------------------------------------


def _listed(client) -> list[str]:
    response = client.get(LIST_URL)
    assert response.status_code == 200
    return sorted(row["order_no"] for row in response.json()["results"])


def test_manager_of_store_a_lists_only_a(client, world):
    client.force_login(_member(world, StaffRole.STORE_MANAGER, "A"))

    assert _listed(client) == [world["orders"]["A"].order_no]


def test_brand_admin_lists_every_store_of_the_brand_only(client, world):
    client.force_login(_member(world, StaffRole.BRAND_ADMIN))

    assert _listed(client) == sorted([world["orders"]["A"].order_no, world["orders"]["B"].order_no])


def test_filter_by_a_foreign_store_lists_nothing(client, world):
    client.force_login(_member(world, StaffRole.STORE_MANAGER, "A"))

    response = client.get(LIST_URL, {"store": world["stores"]["C"].pk})

    assert response.json()["count"] == 0


@pytest.mark.parametrize(("query", "field"), [({"status": "bogus"}, "status"), ({"store": "abc"}, "store"),
                                              ({"date": "2025-13-45"}, "date")])
def test_an_invalid_filter_is_400_not_a_wider_list(client, world, query, field):
    client.force_login(_member(world, StaffRole.BRAND_ADMIN))

    response = client.get(LIST_URL, query)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert list(response.json()["error"]["detail"]) == [field]


def test_order_of_another_tenant_is_404_with_the_error_shape(client, world):
    client.force_login(_member(world, StaffRole.BRAND_ADMIN))
    own = world["orders"]["B"]
    foreign = world["orders"]["C"]

    assert client.get(f"{LIST_URL}/{own.order_no}").status_code == 200
    response = client.get(f"{LIST_URL}/{foreign.order_no}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "order_not_found", "message": "Not found.", "detail": {}}}


# Session, user, roles, scope, count, page: whatever the number of orders.
LIST_QUERIES = 5


@pytest.mark.parametrize("orders", [3, 30])
def test_order_list_keeps_a_constant_number_of_queries(client, django_assert_num_queries, orders):
    store = StoreFactory()
    for _ in range(orders):
        make_order(store=store)
    client.force_login(MembershipFactory(brand=store.brand, store=store, role=StaffRole.STORE_MANAGER).user)

    with django_assert_num_queries(LIST_QUERIES):
        response = client.get(LIST_URL)

    assert response.status_code == 200
    assert (response.json()["count"], len(response.json()["results"])) == (orders, min(orders, 20))
