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
from channels.models import PlatformRefundRequest
from channels.services import binding_pull, platform_order_ingest, platform_push_handle
from channels.services.refunds import refund_request_agree, refund_request_reject
from core.actors import Actor
from core.errors import Conflict, InvalidInput
from core.models import OutboxMessage
from core.outbox import outbox_relay
from orders.models import Order, OrderEvent
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.samples import eleme_order, meituan_order
from tests.channels.sim_helpers import MT_LINE, eleme_shop, meituan_shop, sim_orders, wait_for
from tests.factories import staff_user

POS = Actor(kind="pos", id="T1")
CHANGELIST = "/admin/channels/platformrefundrequest/"


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
    assert PlatformRefundRequest.objects.count() == 0


# --- recording ---------------------------------------------------------------------------------


def test_a_whole_order_application_is_recorded_once_with_the_orders_total(shop):
    order = _accepted_meituan(shop)

    _apply(shop, order)
    _apply(shop, order)  # pushed twice
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=1))  # and pulled

    request = PlatformRefundRequest.objects.get()
    assert (request.kind, request.amount, request.lines, request.status, request.refund_id, request.reason) == (
        "full", Decimal("55.50"), [], "applied", "R1", "少送了")
    flags = OrderEvent.objects.filter(order=order, action="flag", reason_code="refund_requested")
    assert flags.count() == 1
    assert flags.get().data["refund_request_id"] == request.pk


def test_a_partial_application_keeps_its_amount_and_lines(shop):
    order = _accepted_meituan(shop)
    lines = ({"name": "宫保鸡丁", "merchant_code": "HC001", "platform_sku_id": "1001001", "quantity": 1,
              "amount": "28.00"},)

    _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("28.00"), lines=lines))

    request = PlatformRefundRequest.objects.get()
    assert (request.kind, request.amount, request.lines) == ("partial", Decimal("28.00"), list(lines))
    order.refresh_from_db()
    assert (order.status, order.needs_attention, order.total) == ("accepted", True, Decimal("55.50"))


def test_a_partial_application_for_more_than_the_order_is_refused_and_records_nothing(shop):
    from channels.adapters.base import PlatformPayloadError

    order = _accepted_meituan(shop)
    events_before = OrderEvent.objects.filter(order=order).count()

    with pytest.raises(PlatformPayloadError):
        _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("55.51"), lines=()))

    assert PlatformRefundRequest.objects.count() == 0
    assert OrderEvent.objects.filter(order=order).count() == events_before
    order.refresh_from_db()
    assert order.status == "accepted"


# --- the merchant's answer ------------------------------------------------------------------------


def test_rejecting_needs_a_reason_and_sends_refund_reject_with_it(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    request = PlatformRefundRequest.objects.get()
    actor = Actor.staff(_staff(shop))

    with pytest.raises(InvalidInput):
        refund_request_reject(request_id=request.pk, actor=actor, reason="  ")
    refund_request_reject(request_id=request.pk, actor=actor, reason="餐品已送达，照片为证")

    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("rejected", "餐品已送达，照片为证")
    assert _actions(order)[-1] == ("refund_reject", "餐品已送达，照片为证")
    order.refresh_from_db()
    assert (order.status, order.attention_reason) == ("accepted", "unknown SKU: RICE-X")  # the refund's is gone
    with pytest.raises(Conflict):
        refund_request_agree(request_id=request.pk, actor=actor)


def test_the_platforms_rejection_after_ours_changes_nothing_more(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    refund_request_reject(request_id=PlatformRefundRequest.objects.get().pk, actor=Actor.staff(_staff(shop)),
                          reason="不同意")
    before = OrderEvent.objects.filter(order=order).count()

    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=3))
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=1))  # stale

    assert OrderEvent.objects.filter(order=order).count() == before
    assert PlatformRefundRequest.objects.count() == 1


def test_agreeing_a_whole_refund_of_a_delivered_order_refunds_it_and_sends_the_agree(shop):
    order = _delivered_eleme(shop)
    _apply(shop, order, platform="eleme", refund_id="")
    request = PlatformRefundRequest.objects.get()

    refund_request_agree(request_id=request.pk, actor=Actor.staff(_staff(shop)))

    order.refresh_from_db()
    assert (order.status, order.cancel_reason_code, order.attention_reason) == (
        "refunded", "platform_refund", "stock shortfall")  # the refund's reason is resolved
    assert _actions(order)[-1] == ("refund", "少送了")
    assert PlatformRefundRequest.objects.get().status == "agreed"


def test_agreeing_a_partial_refund_sends_the_agree_and_leaves_the_order_going(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order, refund=ParsedRefund(partial=True, amount=Decimal("28.00")))
    request = PlatformRefundRequest.objects.get()

    refund_request_agree(request_id=request.pk, actor=Actor.staff(_staff(shop)))
    # The platform then reports the refund agreed: a partial one does not cancel the order.
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4, refund_status=2))

    order.refresh_from_db()
    assert (order.status, order.total, order.attention_reason) == ("accepted", Decimal("55.50"),
                                                                    "unknown SKU: RICE-X")
    assert _actions(order)[-1] == ("refund", "少送了")
    agreed = OrderEvent.objects.get(order=order, action="flag", reason_code="refund_agreed")
    assert (agreed.data["amount"], agreed.data["refund_kind"]) == ("28.00", "partial")


def test_a_whole_refund_of_an_accepted_order_sends_the_agree_and_follows_the_platform(shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)

    refund_request_agree(request_id=PlatformRefundRequest.objects.get().pk, actor=Actor.staff(_staff(shop)))
    assert Order.objects.get(pk=order.pk).status == "accepted"  # not refundable by us before dispatch
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=9, refund_status=2))

    assert Order.objects.get(pk=order.pk).status == "cancelled"
    assert _actions(order) == [("accept", ""), ("refund", "少送了")]


# --- the admin: managers answer, clerks cannot, reason required --------------------------------------


def test_a_store_manager_rejects_with_a_reason_through_the_admin(client, shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    request = PlatformRefundRequest.objects.get()
    client.force_login(_staff(shop))

    form = client.post(CHANGELIST, {"action": "reject_refunds", "_selected_action": [request.pk]})
    assert form.status_code == 200
    assert "reason" in form.context["form"].fields
    blank = client.post(CHANGELIST, {"action": "reject_refunds", "_selected_action": [request.pk], "apply": "1",
                                     "reason": ""})
    assert blank.status_code == 200 and PlatformRefundRequest.objects.get().status == "applied"
    done = client.post(CHANGELIST, {"action": "reject_refunds", "_selected_action": [request.pk], "apply": "1",
                                    "reason": "已按时送达"})

    assert done.status_code == 302
    assert PlatformRefundRequest.objects.get().status == "rejected"
    assert _actions(order)[-1] == ("refund_reject", "已按时送达")


def test_a_brand_admin_agrees_through_the_admin(client, shop):
    order = _delivered_eleme(shop)
    _apply(shop, order, platform="eleme", refund_id="")
    client.force_login(_staff(shop, StaffRole.BRAND_ADMIN))

    answer = client.post(CHANGELIST, {"action": "agree_refunds",
                                      "_selected_action": [PlatformRefundRequest.objects.get().pk]})

    assert answer.status_code == 302
    assert Order.objects.get(pk=order.pk).status == "refunded"


def test_a_clerk_can_neither_see_nor_answer_refund_applications(client, shop):
    order = _accepted_meituan(shop)
    _apply(shop, order)
    client.force_login(_staff(shop, StaffRole.CLERK))

    answer = client.post(CHANGELIST, {"action": "agree_refunds",
                                      "_selected_action": [PlatformRefundRequest.objects.get().pk]})

    assert answer.status_code == 403
    assert PlatformRefundRequest.objects.get().status == "applied"


def test_another_stores_manager_cannot_answer(client, shop):
    from tests.factories import StoreFactory

    order = _accepted_meituan(shop)
    _apply(shop, order)
    client.force_login(staff_user(role=StaffRole.STORE_MANAGER, store=StoreFactory(brand=shop["store"].brand)))

    client.post(CHANGELIST, {"action": "agree_refunds", "_selected_action": [PlatformRefundRequest.objects.get().pk]})

    assert PlatformRefundRequest.objects.get().status == "applied"
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
    outbox_relay(limit=10)

    applied = requests.post(f"{sim.base_url}/_sim/meituan/orders/{order_id}/refund_apply",
                            json={"reason": "少了一份", "lines": [{"app_food_code": "mt_gbjd", "count": 1}]},
                            timeout=5)
    assert applied.status_code == 200, applied.text
    assert wait_for(lambda: PlatformRefundRequest.objects.filter(order=order).exists())
    request = PlatformRefundRequest.objects.get(order=order)
    assert (request.kind, request.amount, request.reason) == ("partial", Decimal("38.00"), "少了一份")
    assert [(ln["merchant_code"], ln["quantity"], ln["amount"]) for ln in request.lines] == [("mt_gbjd", 1, "38.00")]

    refund_request_agree(request_id=request.pk, actor=Actor.staff(_staff(shop)))
    outbox_relay(limit=10)

    on_platform = requests.get(f"{sim.base_url}/_sim/meituan/orders/{order_id}", timeout=5).json()
    assert (on_platform["refund_status"], on_platform["status"]) == (2, 4)  # agreed; the order goes on
    assert binding_pull(binding_id=shop["meituan"].pk).errors == []
    assert Order.objects.get(pk=order.pk).status == "accepted"


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
    outbox_relay(limit=10)
    requests.post(f"{sim.base_url}/_sim/eleme/orders/{order_id}/refund_apply", json={"reason": "太慢了"}, timeout=5)
    assert wait_for(lambda: PlatformRefundRequest.objects.filter(order=order).exists())
    request = PlatformRefundRequest.objects.get(order=order)
    assert (request.kind, request.amount) == ("full", order.total)

    client.force_login(_staff(shop))
    client.post(CHANGELIST, {"action": "reject_refunds", "_selected_action": [request.pk], "apply": "1",
                             "reason": "已出餐"})
    outbox_relay(limit=10)

    on_platform = requests.get(f"{sim.base_url}/_sim/eleme/orders/{order_id}", timeout=5).json()
    assert (on_platform["refundStatus"], on_platform["sim"]["refund_reject_reason"]) == ("rejected", "已出餐")
