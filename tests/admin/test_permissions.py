"""Per-role rights in the admin: who may view, add, change, delete what."""

import pytest
from django.apps import apps
from django.contrib import admin

from accounts.admin_base import TenantAdmin
from accounts.models import StoreMode
from core.models import IdempotencyRecord
from core.tenancy import is_tenant_owned
from orders.models import DaySequence, OrderEvent
from tests.factories import SkuFactory, StoreSkuFactory
from tests.order_helpers import make_order

STORE_SETTINGS = {"mode": StoreMode.BUSY, "auto_accept": "on", "default_prep_minutes": "25",
                  "busy_extra_minutes": "10"}


def test_every_model_of_our_core_apps_has_a_tenant_admin():
    for label in ("core", "accounts", "catalog", "orders"):
        for model in apps.get_app_config(label).get_models():
            assert isinstance(admin.site._registry.get(model), TenantAdmin), model


def test_models_that_are_not_tenant_owned_are_superuser_only(rf, admin_x, superuser):
    # given
    untenanted = [m for label in ("core", "accounts", "catalog", "orders")
                  for m in apps.get_app_config(label).get_models() if not is_tenant_owned(m)]
    request = rf.get("/admin/")
    # then
    assert sorted(m.__name__ for m in untenanted) == ["DaySequence", "IdempotencyRecord"]
    for model in untenanted:
        request.user = admin_x
        assert admin.site._registry[model].has_view_permission(request) is False
        assert admin.site._registry[model].has_module_permission(request) is False
        request.user = superuser
        assert admin.site._registry[model].has_view_permission(request) is True


def test_clerk_cannot_change_store(login, clerk_a, store_a):
    # given
    client = login(clerk_a)
    # when
    page = client.get(f"/admin/accounts/store/{store_a.pk}/change/")
    post = client.post(f"/admin/accounts/store/{store_a.pk}/change/", STORE_SETTINGS)
    # then
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert post.status_code == 403
    store_a.refresh_from_db()
    assert store_a.mode == StoreMode.OPEN


def test_manager_changes_own_store_operating_settings_only(login, manager_a, store_a):
    # when
    response = login(manager_a).post(f"/admin/accounts/store/{store_a.pk}/change/",
                                     {**STORE_SETTINGS, "name": "Renamed", "code": "zz"})
    # then
    assert response.status_code == 302
    store_a.refresh_from_db()
    assert (store_a.mode, store_a.auto_accept, store_a.default_prep_minutes, store_a.busy_extra_minutes) == (
        "busy", True, 25, 10)
    assert (store_a.name, store_a.code) == ("Store A", "a")


def test_manager_cannot_change_another_store(login, manager_a, store_b):
    # when
    response = login(manager_a).post(f"/admin/accounts/store/{store_b.pk}/change/", STORE_SETTINGS)
    # then
    assert response.status_code == 302
    assert response.url == "/admin/"
    store_b.refresh_from_db()
    assert store_b.mode == StoreMode.OPEN


def test_manager_cannot_add_store(login, manager_a):
    assert login(manager_a).get("/admin/accounts/store/add/").status_code == 403


def test_brand_admin_adds_store_to_own_brand_only(login, admin_x, brand_x, brand_y):
    # given
    client = login(admin_x)
    data = {"code": "new", "name": "New store", "mode": "open", "default_prep_minutes": "15",
            "busy_extra_minutes": "15", "business_hours": "[]", "delivery_fee": "5.00"}
    # when
    refused = client.post("/admin/accounts/store/add/", {**data, "brand": brand_y.pk})
    accepted = client.post("/admin/accounts/store/add/", {**data, "brand": brand_x.pk})
    # then
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["brand"] == [
        "Select a valid choice. That choice is not one of the available choices."
    ]
    assert accepted.status_code == 302
    assert list(brand_x.stores.values_list("code", flat=True)) == ["new"]
    assert list(brand_y.stores.values_list("code", flat=True)) == []


def test_manager_switches_store_sku_availability_only(login, manager_a, store_a):
    # given
    store_sku = StoreSkuFactory(store=store_a)
    other_sku = SkuFactory(brand=store_a.brand)
    # when
    response = login(manager_a).post(f"/admin/catalog/storesku/{store_sku.pk}/change/",
                                     {"price": "1.00", "sku": other_sku.pk})
    # then: the unchecked box means sold out; price and SKU are not the manager's to change
    assert response.status_code == 302
    store_sku.refresh_from_db()
    assert (store_sku.is_available, store_sku.price, store_sku.sku_id) == (False, None, store_sku.sku.pk)


def test_clerk_cannot_change_store_sku(login, clerk_a, store_a):
    # given
    store_sku = StoreSkuFactory(store=store_a)
    # when
    response = login(clerk_a).post(f"/admin/catalog/storesku/{store_sku.pk}/change/", {})
    # then
    assert response.status_code == 403
    store_sku.refresh_from_db()
    assert store_sku.is_available is True


@pytest.mark.parametrize("path", ["/admin/catalog/sku/add/", "/admin/accounts/customer/",
                                  "/admin/accounts/staffmembership/", "/admin/catalog/platformskumapping/"])
def test_brand_data_is_for_brand_admins(login, manager_a, path):
    assert login(manager_a).get(path).status_code == 403


def test_idempotency_records_are_superuser_only_and_read_only(login, admin_x, superuser):
    # given
    record = IdempotencyRecord.objects.create(credential="pos:1", key="k1", fingerprint="f")
    # when / then
    assert login(admin_x).get("/admin/core/idempotencyrecord/").status_code == 403
    client = login(superuser)
    assert client.get("/admin/core/idempotencyrecord/").status_code == 200
    assert client.get("/admin/core/idempotencyrecord/add/").status_code == 403
    assert client.post(f"/admin/core/idempotencyrecord/{record.pk}/change/", {"key": "k2"}).status_code == 403
    assert client.post(f"/admin/core/idempotencyrecord/{record.pk}/delete/", {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.key == "k1"


def test_day_sequences_are_superuser_only(login, admin_x, superuser, store_a):
    # given
    make_order(store=store_a)
    # when / then
    assert login(admin_x).get("/admin/orders/daysequence/").status_code == 403
    response = login(superuser).get("/admin/orders/daysequence/")
    assert [(s.store_id, s.last_value) for s in response.context["cl"].result_list] == [(store_a.pk, 1)]
    assert DaySequence.objects.count() == 1


def test_order_events_cannot_be_added_changed_or_deleted_by_anyone(login, superuser, rf, store_a):
    # given
    order = make_order(store=store_a)
    event = OrderEvent.objects.get(order=order)
    client = login(superuser)
    request = rf.get("/admin/")
    request.user = superuser
    event_admin = admin.site._registry[OrderEvent]
    # when / then
    assert client.get("/admin/orders/orderevent/").status_code == 200
    assert client.get("/admin/orders/orderevent/add/").status_code == 403
    assert client.post(f"/admin/orders/orderevent/{event.pk}/change/", {"reason": "x"}).status_code == 403
    assert client.post(f"/admin/orders/orderevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post("/admin/orders/orderevent/", {"action": "delete_selected", "_selected_action": [event.pk],
                                                     "post": "yes"}).status_code == 200
    assert (event_admin.has_add_permission(request), event_admin.has_change_permission(request, event),
            event_admin.has_delete_permission(request, event)) == (False, False, False)
    assert "delete_selected" not in event_admin.get_actions(request)
    assert list(OrderEvent.objects.filter(order=order).values_list("action", "reason")) == [("create", "")]


def test_nobody_adds_or_deletes_orders_in_the_admin(login, superuser, store_a):
    # given
    order = make_order(store=store_a)
    client = login(superuser)
    # when / then
    assert client.get("/admin/orders/order/add/").status_code == 403
    assert client.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/orders/order/{order.pk}/change/", {"total": "0"}).status_code == 403


def test_sold_out_set_in_the_admin_reaches_the_platforms_through_the_outbox(login, manager_a, store_a):
    from catalog.models import StoreSku
    from core.models import OutboxMessage
    from tests.factories import SkuFactory, StoreSkuFactory

    store_sku = StoreSkuFactory(store=store_a, sku=SkuFactory(brand=store_a.brand, code="TOFU"))
    client = login(manager_a)
    url = f"/admin/catalog/storesku/{store_sku.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200

    response = client.post(url, {"is_available": ""}, follow=True)

    assert response.status_code == 200
    assert StoreSku.objects.get(pk=store_sku.pk).is_available is False
    message = OutboxMessage.objects.get(topic="platform.item_availability")
    assert message.payload["sku_ids"] == [store_sku.sku_id]
    assert message.payload["available"] is False
    assert message.payload["actor_kind"] == "staff"
