"""Store controls in the workspace: business hours, mode, and sold-out toggles for many SKUs at once,
each through the services that tell every channel."""

import pytest

from accounts.store_state import STORE_STATE_TOPIC
from catalog.models import StoreSku
from catalog.services import ITEM_AVAILABILITY_TOPIC
from core.models import OutboxMessage
from inventory.services import stock_set
from tests.factories import ProductFactory, SkuFactory, StoreSkuFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def menu(store_a):
    chicken = SkuFactory(brand=store_a.brand, code="HC001", product=ProductFactory(brand=store_a.brand, name="宫保鸡丁"))
    rice = SkuFactory(brand=store_a.brand, code="ZS001", product=ProductFactory(brand=store_a.brand, name="扬州炒饭"))
    tea = SkuFactory(brand=store_a.brand, code="DR001", product=ProductFactory(brand=store_a.brand, name="柠檬茶"))
    for sku in (chicken, rice, tea):
        StoreSkuFactory(store=store_a, sku=sku)
    stock_set(store_id=store_a.pk, sku_id=rice.pk, on_hand=0)
    return {"chicken": chicken, "rice": rice, "tea": tea}


def codes(response) -> list[str]:
    return [row.sku.code for row in response.context["skus"]]


def test_the_page_lists_the_stores_skus_with_their_channel_state(login, clerk_a, store_a, menu):
    page = login(clerk_a).get(f"/workspace/stores/{store_a.pk}/")

    assert page.status_code == 200
    assert sorted(codes(page)) == ["DR001", "HC001", "ZS001"]
    html = page.content.decode()
    assert 'data-sku="ZS001"' in html and "Out of stock" in html
    assert page.context["may_edit_hours"] is False  # a clerk switches the mode and sells out, not the hours


def test_search_and_state_filters(login, manager_a, store_a, menu):
    client = login(manager_a)
    StoreSku.objects.filter(store=store_a, sku=menu["tea"]).update(is_available=False)

    by_name = client.get(f"/workspace/stores/{store_a.pk}/", {"q": "鸡丁"}, HTTP_HX_REQUEST="true",
                         HTTP_HX_TARGET="sku-table")
    by_code = client.get(f"/workspace/stores/{store_a.pk}/", {"q": "zs0"})
    by_hand = client.get(f"/workspace/stores/{store_a.pk}/", {"state": "by_hand"})
    out = client.get(f"/workspace/stores/{store_a.pk}/", {"state": "out_of_stock"})
    on_sale = client.get(f"/workspace/stores/{store_a.pk}/", {"state": "on_sale"})

    assert by_name.templates[0].name == "workspace/_sku_table.html"
    assert (codes(by_name), codes(by_code), codes(by_hand), codes(out), codes(on_sale)) == (
        ["HC001"], ["ZS001"], ["DR001"], ["ZS001"], ["HC001"])


def test_many_skus_sold_out_at_once_reach_every_channel(login, clerk_a, store_a, menu):
    answer = login(clerk_a).post(f"/workspace/stores/{store_a.pk}/availability/",
                                 {"available": "0", "sku": [menu["chicken"].pk, menu["tea"].pk]}, **HX)

    assert answer.status_code == 200
    assert answer.context["done"] == "2 SKUs sold out."
    assert set(StoreSku.objects.filter(store=store_a, is_available=False).values_list("sku__code", flat=True)) == {
        "HC001", "DR001"}
    messages = OutboxMessage.objects.filter(topic=ITEM_AVAILABILITY_TOPIC, payload__why="by_hand").order_by("key")
    assert [(m.payload["sku_ids"], m.payload["available"], m.payload["why"], m.payload["actor_kind"])
            for m in messages] == sorted([([menu["chicken"].pk], False, "by_hand", "staff"),
                                          ([menu["tea"].pk], False, "by_hand", "staff")],
                                         key=lambda row: f"availability:{store_a.pk}:{row[0][0]}")


def test_a_sku_of_another_brand_changes_nothing(login, manager_a, store_a, menu):
    foreign = SkuFactory()

    answer = login(manager_a).post(f"/workspace/stores/{store_a.pk}/availability/",
                                   {"available": "0", "sku": [foreign.pk]}, **HX)

    assert answer.context["error"] == "Not found."
    assert not OutboxMessage.objects.filter(payload__why="by_hand").exists()


def test_nothing_ticked_says_so(login, manager_a, store_a, menu):
    answer = login(manager_a).post(f"/workspace/stores/{store_a.pk}/availability/", {"available": "0"}, **HX)

    assert answer.context["error"] == "Tick the SKUs first."


def test_a_manager_saves_business_hours_and_the_platforms_hear_it(login, manager_a, store_a):
    answer = login(manager_a).post(f"/workspace/stores/{store_a.pk}/hours/", {
        "weekdays-0": ["1", "2", "3", "4", "5"], "open-0": "10:00", "close-0": "14:00",
        "weekdays-1": ["6", "7"], "open-1": "09:00", "close-1": "00:00"})

    assert answer.status_code == 302
    store_a.refresh_from_db()
    assert store_a.business_hours == [{"weekdays": [1, 2, 3, 4, 5], "open": "10:00", "close": "14:00"},
                                      {"weekdays": [6, 7], "open": "09:00", "close": "00:00"}]
    assert OutboxMessage.objects.filter(topic=STORE_STATE_TOPIC).count() == 1


def test_bad_hours_are_refused_with_the_reason_and_change_nothing(login, manager_a, store_a):
    answer = login(manager_a).post(f"/workspace/stores/{store_a.pk}/hours/", {
        "open-0": "10:00", "close-0": "14:00"})  # no day ticked

    assert answer.status_code == 400
    assert answer.context["hours_error"] == "Period 1: weekdays must be numbers 1 (Monday) to 7 (Sunday)."
    store_a.refresh_from_db()
    assert store_a.business_hours == []
    assert OutboxMessage.objects.count() == 0


def test_a_clerk_may_not_change_the_hours(login, clerk_a, store_a):
    answer = login(clerk_a).post(f"/workspace/stores/{store_a.pk}/hours/", {
        "weekdays-0": ["1"], "open-0": "10:00", "close-0": "14:00"})

    assert answer.status_code == 403
    store_a.refresh_from_db()
    assert store_a.business_hours == []


def test_the_mode_form_of_the_controls_page_comes_back_to_it(login, manager_a, store_a):
    answer = login(manager_a).post(f"/workspace/board/{store_a.pk}/mode/", {
        "mode": "paused", "next": f"/workspace/stores/{store_a.pk}/"})
    elsewhere = login(manager_a).post(f"/workspace/board/{store_a.pk}/mode/", {
        "mode": "open", "next": "https://evil.example.com/"})

    assert answer.url == f"/workspace/stores/{store_a.pk}/"
    assert elsewhere.url == f"/workspace/board/?store={store_a.pk}"


def test_another_brands_store_is_not_found(login, manager_a, store_y):
    client = login(manager_a)

    assert client.get(f"/workspace/stores/{store_y.pk}/").status_code == 404
    assert client.post(f"/workspace/stores/{store_y.pk}/availability/", {"available": "0"}).status_code == 404
    assert client.post(f"/workspace/stores/{store_y.pk}/hours/", {}).status_code == 404
