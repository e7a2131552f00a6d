"""Platform refund applications: recorded (whole or partial), answered by a person with
the right, and the answer sent to the platform through the outbox."""

import json
from decimal import Decimal

import pytest
import requests

from accounts.models import StaffRole
from channels.adapters.base import ParsedRefund, PlatformPayloadError, PushEvent, PushKind
from channels.adapters.eleme import refund_detail as eleme_refund_detail
from channels.adapters.meituan import refund_detail as meituan_refund_detail
from aftersales.models import AfterSalesRequest
from aftersales.services import aftersales_approve, aftersales_reject
from channels.services import binding_pull, platform_order_ingest, platform_push_handle
from core.actors import Actor
from core.errors import InvalidInput, PermissionDenied, TransitionNotAllowed
from core.models import OutboxMessage
from orders.models import Order, OrderEvent
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.samples import eleme_order, meituan_order
from tests.channels.sim_helpers import MT_LINE, eleme_shop, meituan_shop, relay_settled, sim_orders, wait_for
from tests.factories import staff_user

POS = Actor(kind="pos", id="T1")
CHANGELIST = "/admin/aftersales/aftersalesrequest/"


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


def _staff(shop, role=StaffRole.STORE_MANAGER):
    if role == StaffRole.BRAND_ADMIN:
        return staff_user(role=role, brand=shop["store"].brand)
    return staff_user(role=role, store=shop["store"])


def _accepted_meituan(shop, **overrides):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(**overrides)).order
    return order_transition(order_id=order.pk, action="accept", actor=POS)


def _delivered_eleme(shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order()).order
    for action in ("accept", "mark_ready", "dispatch", "deliver"):
        order_transition(order_id=order.pk, action=action, actor=POS)
    return Order.objects.get(pk=order.pk)


def _apply(shop, order, *, refund=None, refund_id="R1", reason="少送了", platform="meituan"):
    return platform_push_handle(binding=shop[platform], event=PushEvent(
        kind=PushKind.REFUND_APPLIED, order_id=order.channel_order_id, reason=reason, refund_id=refund_id,
        refund=refund))


def _actions(order):
    return list(OutboxMessage.objects.filter(key=order.order_no).order_by("id")
                .values_list("payload__action", "payload__reason"))


# --- parsing at the adapter edge -------------------------------------------------------------


def test_meituan_part_refund_push_carries_money_and_food_lines():
    food = [{"app_food_code": "HC001", "food_name": "宫保鸡丁", "sku_id": "1001001", "count": 1, "refund_price": 28}]

    refund = meituan_refund_detail({"notify_type": "part", "money": "28.5", "food": json.dumps(food)})

    assert refund == ParsedRefund(partial=True, amount=Decimal("28.50"), lines=(
        {"name": "宫保鸡丁", "merchant_code": "HC001", "platform_sku_id": "1001001", "quantity": 1,
         "amount": "28.00"},))
    assert meituan_refund_detail({"notify_type": "apply"}) == ParsedRefund()
    with pytest.raises(PlatformPayloadError):
        meituan_refund_detail({"notify_type": "part"})  # partial, but of what?


def test_eleme_part_refund_message_carries_total_price_and_goods():
    refund = eleme_refund_detail({"refundType": "part", "totalPrice": 24,
                                  "goodsList": [{"name": "扬州炒饭", "quantity": 1, "price": 24, "skuId": 800001,
                                                 "extendCode": "ZS001"}]})

    assert refund == ParsedRefund(partial=True, amount=Decimal("24.00"), lines=(
        {"name": "扬州炒饭", "merchant_code": "ZS001", "platform_sku_id": "800001", "quantity": 1,
         "amount": "24.00"},))
    assert eleme_refund_detail({"refundType": "normal"}) == ParsedRefund()
    with pytest.raises(PlatformPayloadError):
        eleme_refund_detail({"refundType": "part"})


def test_a_refund_push_with_a_bad_amount_is_refused_and_writes_nothing(client, shop):
    from simulator.testing import meituan_sig  # the simulator signs like the platform
    import time

    order = _accepted_meituan(shop)
    url = "http://testserver/channels/push/meituan/refund_order"
    params = {"app_id": "6001", "timestamp": str(int(time.time())), "order_id": order.channel_order_id,
              "notify_type": "part", "money": "lots", "reason": "x", "refund_id": "9"}
    params["sig"] = meituan_sig(url, params, "mt-secret")

    answer = client.post("/channels/push/meituan/refund_order", params)

    assert answer.status_code == 400
    assert answer.json() == {"data": "ng", "error": {"code": 700, "msg": "not an amount: 'lots'"}}
    assert AfterSalesRequest.objects.count() == 0


# --- recording ---------------------------------------------------------------------------------


def test_a_whole_order_application_is_recorded_once_with_the_orders_total(shop):
    order = _accepted_meituan(shop)

    _apply(shop, order)
    _apply(shop, order)  # pushed twice
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=1))  # and pulled

    request = AfterSalesRequest.objects.get()
    assert (request.scope, request.amount, request.platform_lines, request.status, request.platform_refund_id,
            request.reason, request.requested_by) == ("order", Decimal("55.50"), [], "requested", "R1", "少送了",
                                                      "platform")
    flags = OrderEvent.objects.filter(order=order, action="flag", reason_code="refund_requested")
    assert flags.count() == 1
    assert flags.get().data["after_sales_id"] == request.pk


def test_a_partial_application_keeps_its_amount_and_lines(shop):
    order = _accepted_meituan(shop)
    lines = ({"name": "宫保鸡丁", "merchant_code": "HC001", "platform_sku_id": "1001001", "quantity": 1,
              "amount": "28.00"},)

    _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("28.00"), lines=lines))

    request = AfterSalesRequest.objects.get()
    assert (request.scope, request.amount, request.platform_lines) == ("lines", Decimal("28.00"), list(lines))
    order.refresh_from_db()
    assert (order.status, order.needs_attention, order.total) == ("accepted", True, Decimal("55.50"))


def test_a_partial_application_for_more_than_the_order_is_refused_and_records_nothing(shop):
    from channels.adapters.base import PlatformPayloadError

    order = _accepted_meituan(shop)
    events_before = OrderEvent.objects.filter(order=order).count()

    with pytest.raises(PlatformPayloadError):
        _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("55.51"), lines=()))

    assert AfterSalesRequest.objects.count() == 0
    assert OrderEvent.objects.filter(order=order).count() == events_before
    order.refresh_from_db()
    assert order.status == "accepted"


# --- the merchant's answer ------------------------------------------------------------------------


def test_rejecting_needs_a_reason_and_sends_refund_reject_with_it(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    request = AfterSalesRequest.objects.get()
    actor = Actor.staff(_staff(shop))

    with pytest.raises(InvalidInput):
        aftersales_reject(request_id=request.pk, actor=actor, reason="  ")
    aftersales_reject(request_id=request.pk, actor=actor, reason="餐品已送达，照片为证")

    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("rejected", "餐品已送达，照片为证")
    assert _actions(order)[-1] == ("refund_reject", "餐品已送达，照片为证")
    order.refresh_from_db()
    assert (order.status, order.attention_reason) == ("accepted", "unknown SKU: RICE-X")  # the refund's is gone
    with pytest.raises(TransitionNotAllowed):
        aftersales_approve(request_id=request.pk, actor=actor)


def test_the_platforms_rejection_after_ours_changes_nothing_more(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    aftersales_reject(request_id=AfterSalesRequest.objects.get().pk, actor=Actor.staff(_staff(shop)),
                          reason="不同意")
    before = OrderEvent.objects.filter(order=order).count()

    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=3))
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=1))  # stale

    assert OrderEvent.objects.filter(order=order).count() == before
    assert AfterSalesRequest.objects.count() == 1


def test_agreeing_a_whole_refund_of_a_delivered_order_refunds_it_and_sends_the_agree(shop):
    order = _delivered_eleme(shop)
    _apply(shop, order, platform="eleme", refund_id="")
    request = AfterSalesRequest.objects.get()

    aftersales_approve(request_id=request.pk, actor=Actor.staff(_staff(shop)))

    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code, order.attention_reason) == (
        "refunded", "platform_refund", "stock shortfall")  # the refund's reason is resolved
    assert _actions(order)[-1] == ("refund", "少送了")
    # Agreed; refunded once the platform has the agree (the outbox call, not run here).
    assert AfterSalesRequest.objects.get().status == "refunding"


def test_agreeing_a_partial_refund_sends_the_agree_and_leaves_the_order_going(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("28.00")))
    request = AfterSalesRequest.objects.get()

    aftersales_approve(request_id=request.pk, actor=Actor.staff(_staff(shop)))
    # The platform then reports the refund agreed: a partial one does not cancel the order.
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=2))

    order.refresh_from_db()
    assert (order.status, order.total, order.attention_reason) == ("accepted", Decimal("55.50"),
                                                                    "unknown SKU: RICE-X")
    assert _actions(order)[-1] == ("refund", "少送了")
    agreed = OrderEvent.objects.get(order=order, action="flag", reason_code="refund_agreed")
    assert (agreed.data["amount"], agreed.data["refund_kind"]) == ("28.00", "lines")
    assert AfterSalesRequest.objects.get().status == "refunded"  # the platform said so (pull)
    assert Order.objects.get(pk=order.pk).refunded_amount == Decimal("28.00")


def test_a_whole_refund_of_an_accepted_order_refunds_it_sends_the_agree_and_the_platform_cancel_changes_nothing(
        shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)

    aftersales_approve(request_id=AfterSalesRequest.objects.get().pk, actor=Actor.staff(_staff(shop)))
    order = Order.objects.get(pk=order.pk)
    # After-sales refunds the order at once (its stock back: it was not prepared).
    assert (order.status, order.refunded_amount, order.refund_state) == ("refunded", Decimal("55.50"), "full")
    before = OrderEvent.objects.filter(order=order).count()
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=9, refund_status=2))

    assert Order.objects.get(pk=order.pk).status == "refunded"
    assert AfterSalesRequest.objects.get().status == "refunded"  # the platform's word closes it, once
    assert OrderEvent.objects.filter(order=order).count() == before
    assert _actions(order) == [("accept", ""), ("refund", "少送了")]


# --- the admin: managers answer, clerks cannot, reason required --------------------------------------


def test_a_store_manager_rejects_with_a_reason_through_the_admin(client, shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    request = AfterSalesRequest.objects.get()
    client.force_login(_staff(shop))

    form = client.post(CHANGELIST, {"action": "reject_requests", "_selected_action": [request.pk]})
    assert form.status_code == 200
    assert "reason" in form.context["form"].fields
    blank = client.post(CHANGELIST, {"action": "reject_requests", "_selected_action": [request.pk], "apply": "1",
                                     "reason": ""})
    assert blank.status_code == 200 and AfterSalesRequest.objects.get().status == "requested"
    done = client.post(CHANGELIST, {"action": "reject_requests", "_selected_action": [request.pk], "apply": "1",
                                    "reason": "已按时送达"})

    assert done.status_code == 302
    assert AfterSalesRequest.objects.get().status == "rejected"
    assert _actions(order)[-1] == ("refund_reject", "已按时送达")


def test_a_brand_admin_agrees_through_the_admin(client, shop):
    order = _delivered_eleme(shop)
    _apply(shop, order, platform="eleme", refund_id="")
    client.force_login(_staff(shop, StaffRole.BRAND_ADMIN))

    answer = client.post(CHANGELIST, {"action": "approve_requests",
                                      "_selected_action": [AfterSalesRequest.objects.get().pk]})

    assert answer.status_code == 302
    assert Order.objects.get(pk=order.pk).status == "refunded"


def test_a_clerk_sees_refund_applications_but_cannot_answer_them(client, shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    client.force_login(_staff(shop, StaffRole.CLERK))

    listing = client.get(CHANGELIST)
    answer = client.post(CHANGELIST, {"action": "approve_requests",
                                      "_selected_action": [AfterSalesRequest.objects.get().pk]})

    assert listing.status_code == 200 and order.order_no in listing.content.decode()
    assert "approve_requests" not in listing.content.decode()  # no decision actions offered
    assert answer.status_code in (200, 302)
    assert AfterSalesRequest.objects.get().status == "requested"
    with pytest.raises(PermissionDenied):  # and the service refuses a clerk whatever the page does
        aftersales_approve(request_id=AfterSalesRequest.objects.get().pk,
                           actor=Actor.staff(_staff(shop, StaffRole.CLERK)))


def test_another_stores_manager_cannot_answer(client, shop):
    from tests.factories import StoreFactory

    order = _accepted_meituan(shop)
    _apply(shop, order)
    client.force_login(staff_user(role=StaffRole.STORE_MANAGER, store=StoreFactory(brand=shop["store"].brand)))

    client.post(CHANGELIST, {"action": "approve_requests", "_selected_action": [AfterSalesRequest.objects.get().pk]})

    assert AfterSalesRequest.objects.get().status == "requested"
    assert _actions(order) == [("accept", "")]


# --- over real HTTP: the simulator pushes the application, hears the answer -----------------------------


@pytest.mark.django_db(transaction=True)
def test_a_partial_meituan_application_is_pushed_recorded_and_agreed_over_http(sim, shop, live_server):
    meituan_shop(sim, shop, push_url=f"{live_server.url}/channels/push/meituan")
    made = sim_orders(sim, "meituan", {"shop": shop["meituan"].shop_code, "lines": [MT_LINE], "push": True})
    order_id = str(made[0]["order_id"])
    assert wait_for(lambda: Order.objects.filter(channel_order_id=order_id).exists())
    order = Order.objects.get(channel_order_id=order_id)
    order_transition(order_id=order.pk, action="accept", actor=POS)
    assert relay_settled()

    applied = requests.post(f"{sim.base_url}/_sim/meituan/orders/{order_id}/refund_apply",
                            json={"reason": "少了一份", "lines": [{"app_food_code": "mt_gbjd", "count": 1}]},
                            timeout=5)
    assert applied.status_code == 200, applied.text
    assert wait_for(lambda: AfterSalesRequest.objects.filter(order=order).exists())
    request = AfterSalesRequest.objects.get(order=order)
    assert (request.scope, request.amount, request.reason) == ("lines", Decimal("38.00"), "少了一份")
    assert [(ln["merchant_code"], ln["quantity"], ln["amount"]) for ln in request.platform_lines] == [
        ("mt_gbjd", 1, "38.00")]

    aftersales_approve(request_id=request.pk, actor=Actor.staff(_staff(shop)))
    assert relay_settled()

    on_platform = requests.get(f"{sim.base_url}/_sim/meituan/orders/{order_id}", timeout=5).json()
    assert (on_platform["refund_status"], on_platform["status"]) == (2, 4)  # agreed; the order goes on
    assert binding_pull(binding_id=shop["meituan"].pk).errors == []
    assert Order.objects.get(pk=order.pk).status == "accepted"
    # The platform took the agree: the request is refunded, the order shows the part refunded.
    request.refresh_from_db()
    assert request.status == "refunded"
    order = Order.objects.get(pk=order.pk)
    assert (order.refunded_amount, order.refund_state) == (Decimal("38.00"), "partial")


@pytest.mark.django_db(transaction=True)
def test_an_eleme_application_rejected_in_the_admin_reaches_the_platform_with_the_reason(sim, shop, live_server,
                                                                                          client):
    eleme_shop(sim, shop, push_url=f"{live_server.url}/channels/push/eleme")
    made = sim_orders(sim, "eleme", {"shop": shop["eleme"].shop_code, "lines": [{"extend_code": "ZS001"}],
                                     "push": True})
    order_id = made[0]["id"]
    assert wait_for(lambda: Order.objects.filter(channel_order_id=order_id).exists())
    order = Order.objects.get(channel_order_id=order_id)
    order_transition(order_id=order.pk, action="accept", actor=POS)
    assert relay_settled()
    requests.post(f"{sim.base_url}/_sim/eleme/orders/{order_id}/refund_apply", json={"reason": "太慢了"}, timeout=5)
    assert wait_for(lambda: AfterSalesRequest.objects.filter(order=order).exists())
    request = AfterSalesRequest.objects.get(order=order)
    assert (request.scope, request.amount) == ("order", order.total)

    client.force_login(_staff(shop))
    client.post(CHANGELIST, {"action": "reject_requests", "_selected_action": [request.pk], "apply": "1",
                             "reason": "已出餐"})
    assert relay_settled()

    on_platform = requests.get(f"{sim.base_url}/_sim/eleme/orders/{order_id}", timeout=5).json()
    assert (on_platform["refundStatus"], on_platform["sim"]["refund_reject_reason"]) == ("rejected", "已出餐")


# --- the platform's own outcome ----------------------------------------------------------------------


def test_the_platforms_arbitration_overrules_our_rejection_once(shop):
    order = _delivered_eleme(shop)
    _apply(shop, order, platform="eleme", refund_id="E7")
    request = AfterSalesRequest.objects.get()
    aftersales_reject(request_id=request.pk, actor=Actor.staff(_staff(shop)), reason="已按时送达")

    agreed = PushEvent(kind=PushKind.REFUND_AGREED, order_id=order.channel_order_id, reason="平台仲裁支持顾客",
                       refund_id="E7")
    platform_push_handle(binding=shop["eleme"], event=agreed)
    platform_push_handle(binding=shop["eleme"], event=agreed)  # pushed again

    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("refunded", "已按时送达")
    assert list(request.events.values_list("action", "to_status", "actor_kind")) == [
        ("create", "requested", "platform"), ("reject", "rejected", "staff"),
        ("platform_refund", "refunded", "platform")]
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_amount, order.refund_state) == ("refunded", order.paid_amount, "full")
    assert AfterSalesRequest.objects.count() == 1
    # Our answer went out once; the platform's outcome sends nothing back.
    assert [a for a, _r in _actions(order) if a.startswith("refund")] == ["refund_reject"]


def test_an_application_withdrawn_on_the_platform_closes_the_request_once(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    withdrawn = PushEvent(kind=PushKind.REFUND_CANCELLED, order_id=order.channel_order_id, reason="不退了",
                          refund_id="R1")

    platform_push_handle(binding=shop["meituan"], event=withdrawn)
    platform_push_handle(binding=shop["meituan"], event=withdrawn)

    request = AfterSalesRequest.objects.get()
    assert (request.status, request.events.filter(action="withdraw").count()) == ("withdrawn", 1)
    order = Order.objects.get(pk=order.pk)
    assert (order.after_sales_open, order.refunded_amount, order.status) == (False, Decimal("0.00"), "accepted")
    with pytest.raises(TransitionNotAllowed):
        aftersales_approve(request_id=request.pk, actor=Actor.staff(_staff(shop)))


def test_a_partial_application_is_matched_to_the_orders_lines_and_its_unprepared_units_go_back(shop):
    from inventory.models import Stock

    order = _accepted_meituan(shop)  # 2 x HC001 taken from stock: 10 -> 8
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 8
    lines = ({"name": "宫保鸡丁", "merchant_code": "HC001", "platform_sku_id": "1001001", "quantity": 1,
              "amount": "28.00"},
             {"name": "赠品", "merchant_code": "GIFT", "platform_sku_id": "", "quantity": 1, "amount": "0.00"})
    _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("28.00"), lines=lines))
    request = AfterSalesRequest.objects.get()

    assert list(request.lines.values_list("order_line__sku_code", "quantity", "amount")) == [
        ("HC001", 1, Decimal("28.00"))]  # the gift is no line of ours: kept in platform_lines only
    aftersales_approve(request_id=request.pk, actor=Actor.staff(_staff(shop)))

    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 9  # not prepared: one back
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.refunded_amount, order.refund_state) == ("accepted", Decimal("28.00"), "partial")
