"""The order list and page: columns, search, filters, timeline, transition buttons."""

from datetime import timedelta

from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.actors import Actor
from orders.models import OrderEvent, OrderStatus
from orders.services.vouchers import IssuedCode, voucher_code_redeem, voucher_codes_record_issued
from tests.order_helpers import make_order, walk

ORDERS = "/admin/orders/order/"


def _change_url(order) -> str:
    return f"{ORDERS}{order.pk}/change/"


def _transition_url(order) -> str:
    return f"{ORDERS}{order.pk}/transition/"


def _buttons(response) -> list[str]:
    return [button["action"] for button in response.context["transition_buttons"]]


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _listed(response) -> list[str]:
    return sorted(o.order_no for o in response.context["cl"].result_list)


def test_order_list_shows_merchant_status_and_columns(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, order_type="delivery", channel="meituan", channel_order_id="MT-1", paid=True)
    # when
    response = login(manager_a).get(ORDERS)
    # then
    content = response.content.decode()
    assert response.status_code == 200
    assert f">{order.order_no}</a>" in content
    assert '<td class="field-merchant_status">New order</td>' in content
    assert '<td class="field-total">56.00</td>' in content
    assert 'href="/backoffice/status-map/"' in content


def test_admin_index_links_to_status_map(login, manager_a):
    assert 'href="/backoffice/status-map/"' in login(manager_a).get("/admin/").content.decode()


def test_paid_pickup_order_offers_accept_reject_and_cancel_to_a_manager(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    # when
    response = login(manager_a).get(_change_url(order))
    # then
    assert response.status_code == 200
    assert _buttons(response) == ["accept", "reject", "cancel"]
    assert [b["needs_reason"] for b in response.context["transition_buttons"]] == [False, True, True]
    assert 'name="reason" required' in response.content.decode()


def test_clerk_is_offered_accept_only(login, clerk_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    # when
    response = login(clerk_a).get(_change_url(order))
    # then
    assert _buttons(response) == ["accept"]


def test_buttons_follow_the_current_status(login, manager_a, store_a):
    # given
    unpaid = make_order(store=store_a)
    ready = walk(make_order(store=store_a, paid=True), "accept", "mark_ready")
    client = login(manager_a)
    # when / then: paying is not a staff action; a ready pickup order is collected or cancelled
    assert _buttons(client.get(_change_url(unpaid))) == ["cancel"]
    assert _buttons(client.get(_change_url(ready))) == ["pick_up", "cancel"]


def test_manager_accepts_an_order(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    # when
    response = login(manager_a).post(_transition_url(order), {"action": "accept"})
    # then
    assert response.status_code == 302
    assert response.url == _change_url(order)
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED
    assert list(order.events.order_by("id").values_list("action", "actor_kind", "actor_id", "actor_name")) == [
        ("create", "system", "test", "test"), ("accept", "staff", str(manager_a.pk), "manager_a")]
    assert _messages(response) == [f"Order {order.order_no}: “Accept” done; it is now Accepted."]


def test_illegal_action_shows_an_error_and_changes_nothing(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    # when: picking up an order nobody has accepted or prepared
    response = login(manager_a).post(_transition_url(order), {"action": "pick_up"})
    # then
    assert response.status_code == 302
    assert _messages(response) == ["The order cannot do “pick_up” in status “paid”."]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert OrderEvent.objects.filter(order=order).count() == 1


def test_role_without_the_right_cannot_post_the_action(login, clerk_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    # when
    response = login(clerk_a).post(_transition_url(order), {"action": "reject", "reason": "sold out"})
    # then
    assert _messages(response) == ["Your role may not do “Reject” on this order."]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_reject_needs_a_reason(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    client = login(manager_a)
    # when
    without = client.post(_transition_url(order), {"action": "reject", "reason": "  "})
    order.refresh_from_db()
    status_after_refusal = order.status
    with_reason = client.post(_transition_url(order), {"action": "reject", "reason": "Out of chicken"})
    # then
    assert _messages(without) == ["“Reject” needs a reason."]
    assert status_after_refusal == OrderStatus.PAID
    assert with_reason.status_code == 302
    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code, order.cancel_reason) == ("cancelled", "staff", "Out of chicken")
    assert order.events.get(action="reject").reason == "Out of chicken"


def test_transition_on_another_store_order_is_not_found(login, manager_a, store_b):
    # given
    order = make_order(store=store_b, paid=True)
    # when
    response = login(manager_a).post(_transition_url(order), {"action": "accept"})
    # then
    assert response.status_code == 404
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_transition_url_answers_post_only(login, manager_a, store_a):
    # given
    order = make_order(store=store_a, paid=True)
    # when
    response = login(manager_a).get(_transition_url(order))
    # then
    assert response.status_code == 405
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID


def test_order_page_shows_lines_and_the_timeline_oldest_first(login, manager_a, store_a):
    # given
    order = walk(make_order(store=store_a), "pay", "accept")
    # when
    response = login(manager_a).get(_change_url(order))
    # then
    formsets = {f.formset.prefix: f for f in response.context["inline_admin_formsets"]}
    assert [form.instance.name for form in formsets["lines"].formset.forms] == ["宫保鸡丁"]
    assert [form.instance.action for form in formsets["events"].formset.forms] == ["create", "pay", "accept"]
    assert [form.instance.actor_kind for form in formsets["events"].formset.forms] == ["system", "payment", "staff"]
    assert formsets["discounts"].formset.forms == []
    assert response.context["has_change_permission"] is False


def test_voucher_order_page_shows_its_codes_and_who_redeemed_them(login, manager_a, store_a):
    # given
    voucher = walk(make_order(store=store_a, order_type="voucher"), "pay")
    voucher_codes_record_issued(order_no=voucher.order_no, actor=Actor.system("oms"),
                                codes=[IssuedCode(code="EV0000000010", line_no=1),
                                       IssuedCode(code="EV0000000011", line_no=1)])
    voucher_code_redeem(code="EV0000000011", actor=Actor(kind="pos", id="7", name="Counter"), report_to_oms=False)
    meal = walk(make_order(store=store_a), "pay")
    waiting = walk(make_order(store=store_a, order_type="voucher"), "pay")
    # when
    page = login(manager_a).get(_change_url(voucher))
    meal_page = login(manager_a).get(_change_url(meal))
    waiting_page = login(manager_a).get(_change_url(waiting))
    # then
    formsets = {f.formset.prefix: f for f in page.context["inline_admin_formsets"]}
    assert [(form.instance.code, form.instance.state, form.instance.redeemed_by_name)
            for form in formsets["voucher_codes"].formset.forms] == [
        ("EV0000000010", "issued", ""), ("EV0000000011", "redeemed", "Counter")]
    assert "voucher_codes" not in {f.formset.prefix for f in meal_page.context["inline_admin_formsets"]}
    assert _buttons(waiting_page) == ["cancel"]  # only the OMS route issues: no "issue" button for staff


def test_search_by_phone_last4_and_channel_order_id(login, manager_a, store_a):
    # given
    by_phone = make_order(store=store_a, contact_phone="13800005678")
    make_order(store=store_a, contact_phone="13956781234")
    by_channel = make_order(store=store_a, order_type="delivery", channel="meituan", channel_order_id="2701234567",
                            channel_order_no="17", paid=True)
    client = login(manager_a)
    # when / then
    assert _listed(client.get(ORDERS, {"q": "5678"})) == [by_phone.order_no]
    assert _listed(client.get(ORDERS, {"q": "2701234567"})) == [by_channel.order_no]
    assert _listed(client.get(ORDERS, {"q": by_phone.order_no})) == [by_phone.order_no]
    assert _listed(client.get(ORDERS, {"q": "0000"})) == []


def test_filters_by_store_channel_type_status_and_date(login, admin_x, store_a, store_b):
    # given
    yesterday = timezone.now() - timedelta(days=1)
    old = make_order(store=store_a, placed_at=yesterday)
    pickup = make_order(store=store_a, paid=True)
    delivery = make_order(store=store_b, order_type="delivery", channel="eleme", channel_order_id="E1", paid=True)
    client = login(admin_x)
    today = timezone.localdate()
    # when / then
    assert _listed(client.get(ORDERS, {"store": store_b.pk})) == [delivery.order_no]
    assert _listed(client.get(ORDERS, {"channel__exact": "eleme"})) == [delivery.order_no]
    assert _listed(client.get(ORDERS, {"order_type__exact": "pickup"})) == sorted([old.order_no, pickup.order_no])
    assert _listed(client.get(ORDERS, {"status__exact": "pending_payment"})) == [old.order_no]
    assert _listed(client.get(ORDERS, {"business_date__gte": today.isoformat(),
                                       "business_date__lt": (today + timedelta(days=1)).isoformat()})) == sorted(
        [pickup.order_no, delivery.order_no])


def test_order_list_runs_a_constant_number_of_queries(login, manager_a, store_a, django_assert_num_queries):
    # given
    client = login(manager_a)
    for _ in range(5):
        make_order(store=store_a, paid=True)
    client.get(ORDERS)  # warm-up: session, content types
    with CaptureQueriesContext(connection) as five:
        assert len(client.get(ORDERS).context["cl"].result_list) == 5
    for order_type, channel in [("delivery", "meituan"), ("dine_in", "pos"), ("voucher", "app"),
                                ("pickup", "miniapp"), ("delivery", "eleme")] * 7:
        make_order(store=store_a, order_type=order_type, channel=channel, paid=True)
    # when / then: 40 orders of every type cost what 5 did
    with django_assert_num_queries(len(five)):
        assert len(client.get(ORDERS).context["cl"].result_list) == 40
    # session, user, memberships (roles and scope), store filter, count, two permission reads for the nav, orders,
    # the brand's name in the header
    assert len(five) == 9


def test_typed_order_pages_list_their_type_and_offer_its_moves(login, manager_a, store_a):
    # given
    delivery = make_order(store=store_a, order_type="delivery", channel="meituan", channel_order_id="MT9", paid=True)
    make_order(store=store_a, paid=True)
    client = login(manager_a)
    # when
    listed = client.get("/admin/orders/deliveryorder/")
    page = client.get(f"/admin/orders/deliveryorder/{delivery.pk}/change/")
    accepted = client.post(f"/admin/orders/deliveryorder/{delivery.pk}/transition/", {"action": "accept"})
    # then
    assert _listed(listed) == [delivery.order_no]
    assert _buttons(page) == ["accept", "reject", "cancel"]
    assert accepted.url == f"/admin/orders/deliveryorder/{delivery.pk}/change/"
    delivery.refresh_from_db()
    assert delivery.status == OrderStatus.ACCEPTED
