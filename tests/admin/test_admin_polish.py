"""The admin for those who still use it: one status field in the merchant's words (list, filter and
page alike), a warning sign that reads the right way, the address and options in words, the
timeline in the reader's language, customers' phones masked for clerks, internal records out of
store roles' sight, after-sales requests linked to their orders."""

from decimal import Decimal

from django.utils import translation

from orders.models import Order, OrderEvent
from orders.services import LineInput
from tests.order_helpers import make_order, walk

ORDERS = "/admin/orders/order/"


def test_the_order_page_has_one_status_field_in_the_merchants_words(login, manager_a, store_a):
    order = walk(make_order(store=store_a, paid=True), "accept")

    html = login(manager_a).get(f"{ORDERS}{order.pk}/change/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "field-merchant_status" in html
    assert 'class="form-row field-status' not in html  # the raw machine status is gone
    assert '<div class="readonly">制作中</div>' in html


def test_status_filter_uses_the_labels_of_the_list(login, manager_a, store_a):
    accepted = walk(make_order(store=store_a, paid=True), "accept")
    make_order(store=store_a, paid=True)
    client = login(manager_a)

    page = client.get(ORDERS, {"status__exact": "accepted"}, HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert [o.order_no for o in page.context["cl"].result_list] == [accepted.order_no]
    html = page.content.decode()
    assert '<td class="field-merchant_status">制作中</td>' in html
    assert "?status__exact=ready" in html and "出餐完成 / 待取餐 / 待上菜" in html
    assert ">已接单<" not in html  # the system label of "accepted" appears nowhere


def test_the_attention_sign_shows_only_on_orders_that_need_a_person(login, manager_a, store_a):
    calm = make_order(store=store_a, paid=True)
    flagged = make_order(store=store_a, paid=True)
    Order.objects.filter(pk=flagged.pk).update(needs_attention=True, attention_reason="金额不符")
    client = login(manager_a)

    listed = client.get(ORDERS).content.decode()
    rows = {no: listed[listed.index(f">{no}</a>"):].split("</tr>")[0] for no in (calm.order_no, flagged.order_no)}
    assert "⚠" in rows[flagged.order_no] and 'title="金额不符"' in rows[flagged.order_no]
    assert "⚠" not in rows[calm.order_no]
    assert "icon-yes.svg" not in listed and "icon-no.svg" not in listed
    assert [o.order_no for o in client.get(ORDERS, {"needs_attention__exact": "1"}).context["cl"].result_list] == [
        flagged.order_no]
    page = client.get(f"{ORDERS}{flagged.pk}/change/").content.decode()
    assert "⚠</span> 金额不符" in page


def test_address_and_options_in_words(login, manager_a, store_a):
    own = make_order(store=store_a, paid=True, order_type="delivery", contact_name="王先生",
                     address={"detail": "上海市徐汇区漕溪北路398号", "name": "李女士", "latitude": "31.1"},
                     lines=[LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=1,
                                      options=[{"name": "微辣"}, {"name": "加蛋"}])])
    platform = make_order(store=store_a, paid=True, order_type="delivery", channel="meituan", channel_order_id="M9",
                          address={"text": "北京市朝阳区建国路88号", "latitude": "39.9", "longitude": "116.4"})
    client = login(manager_a)

    own_page = client.get(f"{ORDERS}{own.pk}/change/").content.decode()
    platform_page = client.get(f"{ORDERS}{platform.pk}/change/").content.decode()

    assert '<div class="readonly">上海市徐汇区漕溪北路398号 (李女士)</div>' in own_page
    assert '<div class="readonly">北京市朝阳区建国路88号</div>' in platform_page
    assert "latitude" not in own_page and "latitude" not in platform_page
    assert "微辣, 加蛋" in own_page and "{&#x27;name&#x27;" not in own_page


def test_customers_phones_are_masked_for_clerks(login, client, clerk_a, manager_a, store_a):
    order = make_order(store=store_a, paid=True, contact_phone="13812345678",
                       raw_payload={"recipient_phone": "13812345678"})

    clerk_page = login(clerk_a).get(f"{ORDERS}{order.pk}/change/").content.decode()
    client.logout()
    manager_page = login(manager_a).get(f"{ORDERS}{order.pk}/change/").content.decode()

    assert "138****5678" in clerk_page and "13812345678" not in clerk_page
    assert "13812345678" in manager_page
    assert "field-raw_payload" not in clerk_page and "field-raw_payload" in manager_page


def test_the_timeline_reads_in_the_readers_language(store_a):
    order = walk(make_order(store=store_a, paid=True), "accept")
    event = OrderEvent.objects.get(order=order, action="accept")

    with translation.override("zh-hans"):
        chinese = str(event)
    with translation.override("en"):
        english = str(event)

    assert english == "Accept · Paid → Accepted"
    assert chinese != english and "→" in chinese and "accept" not in chinese


def test_internal_records_are_out_of_store_roles_sight(login, client, clerk_a, manager_a, admin_x, store_a):
    make_order(store=store_a, paid=True)
    internal = ["/admin/orders/orderevent/", "/admin/orders/orderline/", "/admin/orders/orderdiscount/",
                "/admin/orders/storefeedevent/", "/admin/core/outboxmessage/", "/admin/accounts/customertoken/"]
    for user in (clerk_a, manager_a):
        store_client = login(user)
        index = store_client.get("/admin/").content.decode()
        for url in internal:
            assert store_client.get(url).status_code == 403, (user.username, url)
            assert f'href="{url}"' not in index, (user.username, url)
        client.logout()
    brand_client = login(admin_x)
    for url in internal[:4]:
        assert brand_client.get(url).status_code == 200, url


def test_after_sales_requests_link_to_their_orders(login, manager_a, store_a):
    from tests.order_helpers import staff_refund

    order = staff_refund(walk(make_order(store=store_a, paid=True), "accept", "mark_ready", "pick_up"))

    html = login(manager_a).get("/admin/aftersales/aftersalesrequest/").content.decode()

    assert f'<a href="/admin/orders/order/{order.pk}/change/" class="after-sales-order">{order.order_no}</a>' in html
