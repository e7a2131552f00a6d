"""Every admin list, page and dropdown shows only the user's own tenants."""

from django.contrib.messages import get_messages

from accounts.models import StaffRole
from tests.factories import CustomerFactory, MembershipFactory, SkuFactory, StoreSkuFactory
from tests.order_helpers import make_order

ORDERS = "/admin/orders/order/"


def _result_pks(response) -> list[int]:
    return sorted(obj.pk for obj in response.context["cl"].result_list)


def test_store_manager_lists_only_their_store_orders(login, manager_a, store_a, store_b, store_y):
    # given
    own = make_order(store=store_a)
    make_order(store=store_b)
    make_order(store=store_y)
    # when
    response = login(manager_a).get(ORDERS)
    # then
    assert response.status_code == 200
    assert _result_pks(response) == [own.pk]


def test_store_manager_cannot_open_another_store_order(login, manager_a, store_a, store_b):
    # given
    other = make_order(store=store_b)
    # when
    response = login(manager_a).get(f"{ORDERS}{other.pk}/change/")
    # then
    assert response.status_code == 302
    assert response.url == "/admin/"
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"order with ID “{other.pk}” doesn’t exist. Perhaps it was deleted?"
    ]


def test_brand_admin_sees_all_stores_of_their_brand_only(login, admin_x, brand_x, store_a, store_b, store_y):
    # given
    make_order(store=store_a)
    make_order(store=store_b)
    make_order(store=store_y)
    client = login(admin_x)
    # when
    stores = client.get("/admin/accounts/store/")
    orders = client.get(ORDERS)
    # then
    assert _result_pks(stores) == sorted([store_a.pk, store_b.pk])
    assert sorted(o.store_id for o in orders.context["cl"].result_list) == sorted([store_a.pk, store_b.pk])


def test_brand_admin_never_sees_other_brand_rows(login, admin_x, brand_x, brand_y, store_y):
    # given
    own_sku = SkuFactory(brand=brand_x)
    other_sku = SkuFactory(brand=brand_y)
    own_customer = CustomerFactory(brand=brand_x)
    other_customer = CustomerFactory(brand=brand_y)
    client = login(admin_x)
    # when / then
    assert _result_pks(client.get("/admin/catalog/sku/")) == [own_sku.pk]
    assert _result_pks(client.get("/admin/accounts/customer/")) == [own_customer.pk]
    assert _result_pks(client.get("/admin/accounts/brand/")) == [brand_x.pk]
    assert client.get(f"/admin/accounts/store/{store_y.pk}/change/").status_code == 302
    assert client.get(f"/admin/catalog/sku/{other_sku.pk}/change/").status_code == 302
    assert client.get(f"/admin/accounts/customer/{other_customer.pk}/change/").status_code == 302


def test_brand_admin_sees_only_users_of_their_brand(login, admin_x, admin_y, manager_a, clerk_a, superuser):
    # when
    response = login(admin_x).get("/admin/auth/user/")
    # then
    assert sorted(u.username for u in response.context["cl"].result_list) == ["admin_x", "clerk_a", "manager_a"]
    assert login(admin_x).get(f"/admin/auth/user/{admin_y.pk}/change/").status_code == 302


def test_store_manager_cannot_see_users(login, manager_a):
    assert login(manager_a).get("/admin/auth/user/").status_code == 403


def test_foreign_key_dropdowns_offer_own_tenant_rows_only(login, admin_x, brand_x, brand_y, store_a, store_b,
                                                          store_y, manager_a, admin_y):
    # given
    own_sku = SkuFactory(brand=brand_x)
    SkuFactory(brand=brand_y)
    client = login(admin_x)
    # when
    store_sku_form = client.get("/admin/catalog/storesku/add/").context["adminform"].form
    membership_form = client.get("/admin/accounts/staffmembership/add/").context["adminform"].form
    # then
    assert sorted(s.pk for s in store_sku_form.fields["store"].queryset) == sorted([store_a.pk, store_b.pk])
    assert [s.pk for s in store_sku_form.fields["sku"].queryset] == [own_sku.pk]
    assert [b.pk for b in membership_form.fields["brand"].queryset] == [brand_x.pk]
    assert sorted(u.username for u in membership_form.fields["user"].queryset) == ["admin_x", "manager_a"]


def test_store_sku_cannot_mix_brands(login, admin_x, brand_x, store_a):
    # given: admin_x is brand admin of two brands, so both appear in the dropdowns
    other_brand_sku = SkuFactory(brand__code="brand-z")
    MembershipFactory(user=admin_x, brand=other_brand_sku.brand, store=None, role=StaffRole.BRAND_ADMIN)
    # when
    response = login(admin_x).post("/admin/catalog/storesku/add/", {
        "store": store_a.pk, "sku": other_brand_sku.pk, "is_available": "on",
    })
    # then
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["sku"] == [
        "All references of this row must belong to the same brand."
    ]


def test_order_store_filter_lists_only_own_stores(login, manager_a, store_a, store_b, store_y):
    # when
    response = login(manager_a).get(ORDERS)
    # then
    store_filter = next(f for f in response.context["cl"].filter_specs if f.parameter_name == "store")
    assert store_filter.lookup_choices == [(str(store_a.pk), "Store A")]


def test_manager_sees_own_store_skus_only(login, manager_a, store_a, store_b):
    # given
    own = StoreSkuFactory(store=store_a)
    StoreSkuFactory(store=store_b, sku=own.sku)
    # when
    response = login(manager_a).get("/admin/catalog/storesku/")
    # then
    assert _result_pks(response) == [own.pk]


def test_superuser_sees_every_order(login, superuser, store_a, store_y):
    # given
    orders = [make_order(store=store_a), make_order(store=store_y)]
    # when
    response = login(superuser).get(ORDERS)
    # then
    assert _result_pks(response) == sorted(o.pk for o in orders)


def test_brand_admin_rights_do_not_reach_a_brand_where_the_user_is_only_a_clerk(login, admin_x, brand_x, brand_y,
                                                                                 store_y):
    # given: admin_x also works as a clerk in brand Y's store
    MembershipFactory(user=admin_x, brand=brand_y, store=store_y, role=StaffRole.CLERK)
    own_customer = CustomerFactory(brand=brand_x)
    CustomerFactory(brand=brand_y)
    other_sku = SkuFactory(brand=brand_y)
    client = login(admin_x)
    # when
    customers = client.get("/admin/accounts/customer/")
    sku_page = client.get(f"/admin/catalog/sku/{other_sku.pk}/change/")
    sku_post = client.post(f"/admin/catalog/sku/{other_sku.pk}/change/", {"code": "HACK"})
    customer_form = client.get("/admin/accounts/customer/add/").context["adminform"].form
    store_page = client.get(f"/admin/accounts/store/{store_y.pk}/change/")
    # then
    assert _result_pks(customers) == [own_customer.pk]
    assert sku_page.context["has_change_permission"] is False
    assert sku_post.status_code == 403
    assert [b.pk for b in customer_form.fields["brand"].queryset] == [brand_x.pk]
    assert store_page.context["has_change_permission"] is False
