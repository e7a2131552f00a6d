"""Ingesting platform orders: idempotent, never dropped, forward only; sold-out sync."""

import json
from decimal import Decimal

import pytest

from catalog.models import StoreSku
from catalog.services import ITEM_AVAILABILITY_TOPIC, store_sku_set_availability
from channels.adapters.base import BindingMismatch, PlatformPayloadError, PushEvent, PushKind
from channels.services import (
    bindings_schedule_due,
    item_availability_deliver,
    platform_order_ingest,
    platform_push_handle,
)
from core.actors import Actor
from core.errors import NotFound
from core.models import OutboxMessage
from inventory.models import Stock, StockShortfall
from inventory.services import stock_set
from orders.models import Order, OrderEvent
from orders.services import order_transition
from tests.channels.samples import eleme_order, meituan_order
from tests.factories import SkuFactory, StoreBindingFactory, StoreSkuFactory


def _on_hand(store, sku):
    return Stock.objects.get(store=store, sku=sku).on_hand


def test_first_meituan_payload_creates_a_paid_order_with_lines_discounts_and_fees(shop):
    result = platform_order_ingest(binding=shop["meituan"], payload=meituan_order())

    order = result.order
    assert result.created is True
    assert (order.channel, order.channel_order_id, order.channel_order_no, order.channel_day_seq) == (
        "meituan", "27900000000001", "27900000000001", 7)
    assert (order.status, order.order_type, order.store_id) == ("paid", "delivery", shop["store"].pk)
    assert (order.subtotal, order.discount_total, order.merchant_discount, order.platform_discount) == (
        Decimal("58.50"), Decimal("10.00"), Decimal("6.00"), Decimal("4.00"))
    assert (order.delivery_fee, order.packaging_fee, order.total, order.paid_amount) == (
        Decimal("5.00"), Decimal("2.00"), Decimal("55.50"), Decimal("55.50"))
    assert order.contact_name == "王先生"
    assert order.customer_note == "少辣"
    assert order.raw_payload["order_id"] == 27900000000001
    assert [(ln.sku_id, ln.sku_code, ln.quantity, ln.discount, ln.line_total) for ln in order.lines.all()] == [
        (shop["chicken"].pk, "HC001", 2, Decimal("9.57"), Decimal("46.43")),
        (None, "RICE-X", 1, Decimal("0.43"), Decimal("2.07")),
    ]
    assert [(d.amount, d.merchant_part, d.platform_part, d.reference) for d in order.discounts.all()] == [
        (Decimal("10.00"), Decimal("6.00"), Decimal("4.00"), "501")]


def test_an_unknown_sku_is_kept_and_the_order_flagged(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order

    assert order.needs_attention is True
    assert order.attention_reason == "unknown SKU: RICE-X"
    flag = OrderEvent.objects.get(order=order, action="flag")
    assert (flag.reason_code, flag.actor_kind, flag.data) == (
        "unknown_sku", "platform", {"kind": "unknown_sku", "codes": ["RICE-X"]})
    assert order.lines.count() == 2


def test_a_flagged_order_is_not_auto_accepted(shop):
    store = shop["meituan"].store
    store.auto_accept = True
    store.save(update_fields=["auto_accept"])

    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order

    assert (order.needs_attention, order.status) == (True, "paid")
    assert not OrderEvent.objects.filter(order=order, action="accept").exists()


def test_eleme_lines_map_through_extend_code_and_stock_is_taken(shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(
        groups=[{"name": "1号篮子", "type": "normal", "items": [
            {"id": 700001, "skuId": 800001, "name": "扬州炒饭", "price": 24.0, "quantity": 1, "total": 24.0,
             "extendCode": "ZS001"}]}],
        totalPrice=21.1, originalPrice=29.6)).order

    assert [(ln.sku_id, ln.platform_sku_id, ln.packaging_fee) for ln in order.lines.all()] == [
        (shop["rice"].pk, "800001", Decimal("1.60"))]
    assert order.total == Decimal("21.10")
    assert order.needs_attention is False
    assert _on_hand(shop["store"], shop["rice"]) == 0


def test_a_line_without_merchant_code_maps_through_the_platform_sku_table(shop):
    payload = eleme_order()
    payload["groups"][0]["items"][0]["extendCode"] = ""

    order = platform_order_ingest(binding=shop["eleme"], payload=payload).order

    assert order.lines.get().sku_id == shop["rice"].pk


def test_a_shortfall_is_recorded_stock_stays_at_zero_and_the_store_is_alerted(shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order()).order  # 2 rice, 1 in stock

    assert order.status == "paid"
    assert _on_hand(shop["store"], shop["rice"]) == 0
    shortfall = StockShortfall.objects.get()
    assert (shortfall.sku_id, shortfall.quantity, shortfall.reference) == (shop["rice"].pk, 1, order.order_no)
    assert order.needs_attention is True
    assert order.attention_reason == "stock shortfall"
    assert OrderEvent.objects.get(order=order, action="flag").data == {
        "kind": "stock_shortfall", "skus": {str(shop["rice"].pk): 1}}


def test_ingesting_the_same_order_twice_makes_one_order(shop):
    first = platform_order_ingest(binding=shop["meituan"], payload=meituan_order())
    again = platform_order_ingest(binding=shop["meituan"], payload=meituan_order())

    assert (first.created, again.created) == (True, False)
    assert again.order.pk == first.order.pk
    assert again.applied == []
    assert Order.objects.count() == 1
    assert _on_hand(shop["store"], shop["chicken"]) == 8


def test_a_pushed_and_a_pulled_copy_make_one_order(shop):
    form = {k: str(v) for k, v in meituan_order().items()}  # a push carries form strings
    pushed = platform_push_handle(binding=shop["meituan"], event=PushEvent(
        kind=PushKind.ORDER_CREATED, order_id="27900000000001", order_payload=form))
    pulled = platform_order_ingest(binding=shop["meituan"], payload=meituan_order())

    assert pulled.order.pk == pushed.order.pk
    assert Order.objects.filter(channel="meituan", channel_order_id="27900000000001").count() == 1


def test_a_cancellation_arriving_before_the_creation_leaves_one_cancelled_order(shop):
    cancelled = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=9))
    late_creation = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=2))

    assert cancelled.applied == ["cancel"]
    assert late_creation.order.pk == cancelled.order.pk
    assert late_creation.applied == []
    order = Order.objects.get()
    assert order.status == "cancelled"
    assert order.cancel_reason_code == "platform_cancelled"
    assert _on_hand(shop["store"], shop["chicken"]) == 10


def test_a_platform_cancellation_returns_the_stock_and_is_applied_once(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order
    order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))
    assert _on_hand(shop["store"], shop["chicken"]) == 8

    first = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=9))
    second = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=9))

    assert (first.applied, second.applied) == (["cancel"], [])
    assert first.order.status == "cancelled"
    assert _on_hand(shop["store"], shop["chicken"]) == 10
    cancel = OrderEvent.objects.get(order=order, action="cancel")
    assert (cancel.actor_kind, cancel.actor_id) == ("platform", "meituan")
    # the platform told us: nothing goes back to it
    assert list(OutboxMessage.objects.values_list("payload__action", flat=True)) == ["accept"]


def test_status_only_moves_forward(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order

    moved = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=6))  # delivering
    stale = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=4))  # older news

    assert moved.applied == ["accept", "dispatch"]
    assert stale.applied == []
    order.refresh_from_db()
    assert order.status == "dispatched"
    assert list(OrderEvent.objects.filter(order=order).exclude(action="flag").values_list("action", "actor_kind")) == [
        ("create", "platform"), ("accept", "platform"), ("dispatch", "platform")]


def test_an_eleme_settled_order_is_confirmed_but_left_to_our_after_sales_job(shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(status="settled")).order

    assert order.status == "delivered"


def test_a_refund_application_flags_the_order_once(shop):
    platform_order_ingest(binding=shop["eleme"], payload=eleme_order(status="valid"))

    first = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(status="valid", refundStatus="applied"))
    second = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(status="valid",
                                                                              refundStatus="applied"))

    assert (first.applied, second.applied) == (["flag"], [])
    order = first.order
    assert order.needs_attention is True
    assert "refund requested" in order.attention_reason
    assert OrderEvent.objects.filter(order=order, action="flag", reason_code="refund_requested").count() == 1


def test_a_rejected_refund_clears_the_refund_attention(shop):
    stock_set(store_id=shop["store"].pk, sku_id=shop["rice"].pk, on_hand=5)
    platform_order_ingest(binding=shop["eleme"], payload=eleme_order(status="valid", refundStatus="applied"))

    result = platform_order_ingest(binding=shop["eleme"], payload=eleme_order(status="valid",
                                                                              refundStatus="rejected"))

    assert result.applied == ["flag"]
    assert result.order.needs_attention is False
    assert result.order.attention_reason == ""


def test_a_refund_agreed_on_the_platform_refunds_a_delivered_order(shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=8)).order
    assert order.status == "delivered"

    result = platform_order_ingest(binding=shop["meituan"], payload=meituan_order(status=9, refund_status=2))

    assert result.applied == ["refund"]
    assert result.order.status == "refunded"


def test_a_payload_of_another_shop_of_the_same_app_is_refused_and_creates_nothing(shop):
    StoreBindingFactory(platform="meituan", shop_code="mt-poi-002", app_id="6001", secret="mt-secret")

    with pytest.raises(BindingMismatch):  # an order is ingested only through its own shop's binding
        platform_order_ingest(binding=shop["meituan"], payload=meituan_order(app_poi_code="mt-poi-002"))

    assert Order.objects.count() == 0


def _three_line_meituan_order(*, prices: list[str], reduce_fee: str) -> dict:
    detail = [{"app_food_code": f"X{index}", "food_name": f"菜{index}", "sku_id": str(index), "quantity": 1,
               "price": price, "box_num": 0, "box_price": 0} for index, price in enumerate(prices, start=1)]
    extras = [{"act_detail_id": 777, "reduce_fee": reduce_fee, "mt_charge": 0, "remark": "满减", "type": 2}]
    subtotal = sum((Decimal(price) for price in prices), Decimal("0.00"))
    return meituan_order(detail=json.dumps(detail), extras=json.dumps(extras), package_bag_money=0,
                         total=str(subtotal - Decimal(reduce_fee) + 5))


def test_a_platform_discount_goes_to_the_lines_with_the_tie_order_intake_always_had(shop):
    # Shares 0.7692..., 4.6153... and 0.6153...: two lines leave the same fraction of a
    # cent; intake's answer (before promotions.apportion was its one implementation)
    # gave the last cent to the third line, and still does.
    payload = _three_line_meituan_order(prices=["30.00", "180.00", "24.00"], reduce_fee="6.00")

    order = platform_order_ingest(binding=shop["meituan"], payload=payload).order

    assert [ln.discount for ln in order.lines.order_by("line_no")] == [
        Decimal("0.77"), Decimal("4.61"), Decimal("0.62")]
    assert order.discount_total == Decimal("6.00")


def test_a_discount_over_a_line_with_a_negative_price_is_refused_as_malformed(shop):
    payload = _three_line_meituan_order(prices=["30.00", "-1.00", "24.00"], reduce_fee="6.00")

    with pytest.raises(PlatformPayloadError, match="negative price"):
        platform_order_ingest(binding=shop["meituan"], payload=payload)

    assert Order.objects.count() == 0


# --- scheduling pulls ------------------------------------------------------------------------------


def test_due_bindings_are_scheduled_once_even_by_two_beats(shop):
    from django.utils import timezone

    now = timezone.now()
    StoreBindingFactory(enabled=False, next_pull_at=now)
    enqueued = []

    first = bindings_schedule_due(now=now, enqueue=enqueued.append)
    second = bindings_schedule_due(now=now, enqueue=enqueued.append)

    assert sorted(first) == sorted([shop["meituan"].pk, shop["eleme"].pk])
    assert second == []
    assert sorted(enqueued) == sorted(first)
    shop["meituan"].refresh_from_db()
    assert (shop["meituan"].next_pull_at - now).total_seconds() == 30


def test_a_binding_due_within_half_a_scheduler_tick_is_pulled_now(shop, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.PERIODIC_JOBS = {**settings.PERIODIC_JOBS,
                              "pull-platform-orders": {"task": "channels.schedule_due_pulls", "every": 1}}
    now = timezone.now()
    shop["meituan"].next_pull_at = now + timedelta(milliseconds=400)  # the tick came a little early
    shop["meituan"].save()
    shop["eleme"].next_pull_at = now + timedelta(milliseconds=600)  # the next tick is closer
    shop["eleme"].save()

    assert bindings_schedule_due(now=now, enqueue=lambda binding_id: None) == [shop["meituan"].pk]


# --- sold out (沽清) ---------------------------------------------------------------------------------


def test_sold_out_writes_one_outbox_message_per_change(shop):
    actor = Actor(kind="pos", id="T1")

    store_sku_set_availability(store_id=shop["store"].pk, sku_id=shop["rice"].pk, available=False, actor=actor)
    store_sku_set_availability(store_id=shop["store"].pk, sku_id=shop["rice"].pk, available=False, actor=actor)

    assert StoreSku.objects.get(store=shop["store"], sku=shop["rice"]).is_available is False
    message = OutboxMessage.objects.get()
    assert message.topic == ITEM_AVAILABILITY_TOPIC
    assert message.key == f"availability:{shop['store'].pk}:{shop['rice'].pk}"
    assert message.brand_id == shop["store"].brand_id
    assert message.payload == {"store_id": shop["store"].pk, "sku_ids": [shop["rice"].pk], "available": False,
                               "why": "by_hand", "actor_kind": "pos", "actor_id": "T1"}


def test_sold_out_of_another_brands_sku_is_not_found(shop):
    with pytest.raises(NotFound):
        store_sku_set_availability(store_id=shop["store"].pk, sku_id=SkuFactory().pk, available=False,
                                   actor=Actor(kind="pos", id="T1"))


def test_availability_handler_maps_skus_to_each_platforms_codes(shop, monkeypatch):
    from channels.adapters.eleme import ElemeAdapter
    from channels.adapters.meituan import MeituanAdapter

    sent = []
    monkeypatch.setattr(MeituanAdapter, "call", lambda self, binding, method, path, params: sent.append(
        ("meituan", path, params)))
    monkeypatch.setattr(ElemeAdapter, "call", lambda self, binding, action, params: sent.append(
        ("eleme", action, params)))
    # The handler tells what is true when it runs, not the payload's value.
    StoreSkuFactory(store=shop["store"], sku=shop["rice"], is_available=False)
    message = OutboxMessage(topic=ITEM_AVAILABILITY_TOPIC, key="k",
                            payload={"store_id": shop["store"].pk, "sku_ids": [shop["rice"].pk], "available": True})

    item_availability_deliver(message)

    assert sorted(sent, key=lambda s: s[0]) == [
        ("eleme", "eleme.product.item.batchClearStock", {"specIds": [800001]}),
        ("meituan", "food/sku/sellStatus", {"app_poi_code": "mt-poi-001",
                                            "food_data": '[{"app_food_code":"ZS001","skus":[{"sku_id":"ZS001"}]}]',
                                            "sell_status": 1}),
    ]
