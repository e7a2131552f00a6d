"""POS API v1: PosOrder, the verbs, stock, vouchers, menu."""

from datetime import date
from decimal import Decimal

import pytest

from accounts.models import StoreMode
from catalog.models import StoreSku
from core.actors import Actor
from inventory.models import Stock, StockMovement
from inventory.services import stock_ledger_mismatches
from orders.models import Order, OrderEvent
from orders.services import LineInput
from orders.services.vouchers import IssuedCode, voucher_codes_record_issued
from tests.order_helpers import make_order, walk

BASE = "/api/pos/v1"


def delivery_order(store, **kwargs):
    lines = [LineInput(name="宫保鸡丁", sku_code="RICE", unit_price=Decimal("23.50"), quantity=2,
                       options=[{"name": "辣度", "value": "微辣"}])]
    return make_order(store=store, order_type="delivery", channel="meituan", channel_order_id="mt-9",
                      channel_order_no="#17", paid=True, lines=lines, contact_name="李四",
                      contact_phone="13812345678", address={"detail": "南京东路1号"}, customer_note="多放葱",
                      delivery_fee=Decimal("5.00"), **kwargs)


def test_pos_order_has_the_contract_fields_and_exact_values(store, pos):
    order = delivery_order(store)

    body = pos.get(f"{BASE}/orders/{order.order_no}").json()

    assert body == {
        "order_no": order.order_no, "channel": "meituan", "channel_order_no": "#17", "order_type": "delivery",
        "status": "paid", "pos_status": "new", "day_seq": order.day_seq, "channel_day_seq": None,
        "pickup_code": "", "placed_at": body["placed_at"], "expected_at": None, "prep_minutes": 15,
        "customer_note": "多放葱", "contact": {"name": "李四", "phone": "138****5678"},
        "address": {"detail": "南京东路1号"},
        "lines": [{"sku": "RICE", "name": "宫保鸡丁", "spec": "", "qty": 2, "unit_price": "23.50",
                   "discount": "0.00", "line_total": "47.00", "options": [{"name": "辣度", "value": "微辣"}]}],
        "amounts": {"subtotal": "47.00", "discount": "0.00", "delivery_fee": "5.00", "packaging_fee": "0.00",
                    "total": "52.00", "paid": "52.00", "refunded": "0.00"},
        "refund_state": "none",
        "needs_attention": False,
        "allowed_actions": ["accept"],  # a cashier terminal: reject needs a manager
    }


def test_manager_terminal_sees_reject_too_and_pickup_orders_have_no_address(store, pos_manager):
    order = make_order(store=store, paid=True)

    body = pos_manager.get(f"{BASE}/orders/{order.order_no}").json()

    assert body["allowed_actions"] == ["accept", "reject"]
    assert body["address"] is None


def test_accept_ready_complete_a_pickup_order(store, pos):
    order = make_order(store=store, paid=True)

    accepted = pos.post(f"{BASE}/orders/{order.order_no}/accept", {"prep_minutes": 20}, format="json")
    ready = pos.post(f"{BASE}/orders/{order.order_no}/ready", {}, format="json")
    done = pos.post(f"{BASE}/orders/{order.order_no}/complete", format="json")

    assert (accepted.status_code, accepted.json()["status"], accepted.json()["prep_minutes"]) == (200, "accepted", 20)
    assert accepted.json()["allowed_actions"] == ["ready"]
    assert (ready.json()["status"], ready.json()["pickup_code"]) == ("ready", f"A{order.day_seq:03d}")
    assert (done.json()["status"], done.json()["pos_status"]) == ("picked_up", "done")
    actors = set(OrderEvent.objects.filter(order=order).exclude(action="create").values_list("actor_kind", flat=True))
    assert actors == {"pos"}


def test_accept_without_minutes_in_a_busy_store_adds_the_extra(store, pos):
    store.mode = StoreMode.BUSY
    store.save()
    order = make_order(store=store, paid=True)

    body = pos.post(f"{BASE}/orders/{order.order_no}/accept", {}, format="json").json()

    assert body["prep_minutes"] == 25


def test_dispatch_and_deliver_a_delivery_order(store, pos):
    order = delivery_order(store)
    walk(order, "accept")

    dispatched = pos.post(f"{BASE}/orders/{order.order_no}/dispatch",
                          {"courier_name": "王五", "courier_phone": "13700001111"}, format="json")
    delivered = pos.post(f"{BASE}/orders/{order.order_no}/complete", format="json")

    assert dispatched.json()["status"] == "dispatched"
    assert delivered.json()["status"] == "delivered"
    assert Order.objects.get(pk=order.pk).courier_name == "王五"


def test_reject_by_a_manager_cancels_with_the_reason(store, pos_manager):
    order = make_order(store=store, paid=True)

    response = pos_manager.post(f"{BASE}/orders/{order.order_no}/reject",
                                {"reason_code": "sold_out", "reason": "没有鸡了"}, format="json")

    assert (response.status_code, response.json()["status"], response.json()["pos_status"]) == (
        200, "cancelled", "cancelled")
    saved = Order.objects.get(pk=order.pk)
    assert (saved.cancel_reason_code, saved.cancel_reason) == ("sold_out", "没有鸡了")


def test_reject_with_an_unknown_reason_code_is_400(store, pos_manager):
    order = make_order(store=store, paid=True)

    response = pos_manager.post(f"{BASE}/orders/{order.order_no}/reject", {"reason_code": "tired"}, format="json")

    assert response.status_code == 400
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_a_move_that_is_not_allowed_is_409_with_status_and_allowed_actions(store, pos):
    order = make_order(store=store, paid=True)

    response = pos.post(f"{BASE}/orders/{order.order_no}/complete", format="json")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "transition_not_allowed"
    assert error["detail"]["status"] == "paid"
    assert error["detail"]["allowed_actions"] == ["accept", "reject"]


def test_idempotent_accept_replays_the_same_bytes_and_accepts_once(store, pos):
    order = make_order(store=store, paid=True)
    url = f"{BASE}/orders/{order.order_no}/accept"

    first = pos.post(url, {"prep_minutes": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = pos.post(url, {"prep_minutes": 10}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    other_body = pos.post(url, {"prep_minutes": 11}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    no_key_again = pos.post(url, {"prep_minutes": 10}, format="json")

    assert (first.status_code, second.status_code) == (200, 200)
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 422
    assert no_key_again.status_code == 409
    assert OrderEvent.objects.filter(order=order, action="accept").count() == 1


def test_ready_keeps_a_code_the_pos_chose_and_refuses_one_taken_today(store, pos):
    first = walk(make_order(store=store, paid=True), "accept")
    second = walk(make_order(store=store, paid=True), "accept")

    chosen = pos.post(f"{BASE}/orders/{first.order_no}/ready", {"pickup_code": "B777"}, format="json")
    taken = pos.post(f"{BASE}/orders/{second.order_no}/ready", {"pickup_code": "B777"}, format="json")

    assert chosen.json()["pickup_code"] == "B777"
    assert taken.status_code == 409
    assert taken.json()["error"]["code"] == "pickup_code_taken"
    assert Order.objects.get(pk=second.pk).status == "accepted"


def test_generated_pickup_codes_are_unique_per_store_per_day(store, other_store, pos):
    orders = [walk(make_order(store=store, paid=True), "accept") for _ in range(3)]
    elsewhere = walk(make_order(store=other_store, paid=True), "accept", "mark_ready")
    # A POS picked by hand the code the third order would have got.
    pos.post(f"{BASE}/orders/{orders[0].order_no}/ready", {"pickup_code": f"A{orders[2].day_seq:03d}"},
             format="json")

    codes = [pos.post(f"{BASE}/orders/{o.order_no}/ready", {}, format="json").json()["pickup_code"]
             for o in orders[1:]]

    assert codes[0] == f"A{orders[1].day_seq:03d}"
    assert codes[1] == f"A{orders[2].day_seq + 1:03d}"  # skipped the hand-picked one
    assert len({*codes, f"A{orders[2].day_seq:03d}"}) == 3
    assert elsewhere.pickup_code == ""  # other stores number on their own


def test_order_list_is_this_stores_paid_orders_filtered_and_paginated(store, other_store, pos):
    paid = make_order(store=store, paid=True)
    platform = make_order(store=store, paid=True, channel="meituan", channel_order_id="mt-3")
    make_order(store=store)  # unpaid: not the store's yet
    make_order(store=other_store, paid=True)

    everything = pos.get(f"{BASE}/orders").json()
    meituan = pos.get(f"{BASE}/orders", {"channel": "meituan"}).json()
    today = pos.get(f"{BASE}/orders", {"date": paid.business_date.isoformat(), "status": "paid"}).json()
    other_day = pos.get(f"{BASE}/orders", {"date": date(2020, 1, 1).isoformat()}).json()
    capped = pos.get(f"{BASE}/orders", {"page_size": 1000}).json()

    assert [o["order_no"] for o in everything["results"]] == [platform.order_no, paid.order_no]
    assert everything["count"] == 2
    assert [o["order_no"] for o in meituan["results"]] == [platform.order_no]
    assert today["count"] == 2
    assert other_day["count"] == 0
    assert capped["count"] == 2
    assert pos.get(f"{BASE}/orders", {"status": "nonsense"}).status_code == 400


def test_order_list_page_size_is_capped_at_50(store, pos):
    for _ in range(55):
        make_order(store=store, paid=True)

    body = pos.get(f"{BASE}/orders", {"page_size": 1000}).json()

    assert (body["count"], len(body["results"])) == (55, 50)


@pytest.mark.parametrize("count", [3, 20])
def test_order_list_takes_a_constant_number_of_queries(store, pos, count, django_assert_num_queries):
    for _ in range(count):
        make_order(store=store, paid=True)
    pos.get(f"{BASE}/orders")  # the terminal's last_seen is written on the first request

    with django_assert_num_queries(4):  # terminal, count, page, lines
        response = pos.get(f"{BASE}/orders")

    assert len(response.json()["results"]) == count


def test_walk_in_sale_deducts_once_per_receipt_and_keeps_the_ledger(store, skus, pos):
    body = {"receipt_no": "R-0001", "lines": [{"sku": "RICE", "qty": 3}, {"sku": "SOUP", "qty": 1}]}

    first = pos.post(f"{BASE}/stock/sales", body, format="json")
    second = pos.post(f"{BASE}/stock/sales", body, format="json")

    assert (first.status_code, second.status_code) == (201, 201)
    assert second.content == first.content
    assert first.json()["lines"] == [{"sku": "RICE", "qty": 3}, {"sku": "SOUP", "qty": 1}]
    assert first.json()["shortfall"] == {}
    assert Stock.objects.get(store=store, sku=skus["rice"]).on_hand == 7
    movement = StockMovement.objects.get(reason="walk_in_sale")
    assert (movement.delta, movement.reference) == (-3, "R-0001")
    assert stock_ledger_mismatches() == []


def test_walk_in_sale_beyond_stock_takes_what_is_there_and_reports_the_shortfall(store, skus, pos):
    response = pos.post(f"{BASE}/stock/sales", {"receipt_no": "R-2", "lines": [{"sku": "RICE", "qty": 12}]},
                        format="json")

    assert response.status_code == 201
    assert response.json()["shortfall"] == {"RICE": 2}
    assert Stock.objects.get(store=store, sku=skus["rice"]).on_hand == 0
    assert stock_ledger_mismatches() == []


def test_walk_in_sale_same_receipt_with_other_lines_is_409(store, skus, pos):
    pos.post(f"{BASE}/stock/sales", {"receipt_no": "R-3", "lines": [{"sku": "RICE", "qty": 1}]}, format="json")

    response = pos.post(f"{BASE}/stock/sales", {"receipt_no": "R-3", "lines": [{"sku": "RICE", "qty": 2}]},
                        format="json")

    assert response.status_code == 409
    assert Stock.objects.get(store=store, sku=skus["rice"]).on_hand == 9


@pytest.mark.parametrize("lines", [[{"sku": "NOPE", "qty": 1}], [{"sku": "RICE", "qty": 0}],
                                   [{"sku": "RICE", "qty": -1}], [{"sku": "RICE", "qty": 100000}], []])
def test_walk_in_sale_bad_input_is_400_and_changes_nothing(store, skus, pos, lines):
    response = pos.post(f"{BASE}/stock/sales", {"receipt_no": "R-4", "lines": lines}, format="json")

    assert response.status_code == 400
    assert Stock.objects.get(store=store, sku=skus["rice"]).on_hand == 10
    assert not StockMovement.objects.filter(reason="walk_in_sale").exists()


def test_availability_toggle_reaches_the_platform_outbox(store, skus, pos):
    from core.models import OutboxMessage

    off = pos.post(f"{BASE}/stock/availability", {"sku": "SOUP", "available": False}, format="json")
    off_again = pos.post(f"{BASE}/stock/availability", {"sku": "SOUP", "available": False}, format="json")
    on = pos.post(f"{BASE}/stock/availability", {"sku": "SOUP", "available": True}, format="json")
    unknown = pos.post(f"{BASE}/stock/availability", {"sku": "NOPE", "available": True}, format="json")

    assert (off.status_code, off.json()) == (200, {"sku": "SOUP", "available": False})
    assert off_again.status_code == 200
    assert on.json() == {"sku": "SOUP", "available": True}
    assert unknown.status_code == 400
    assert StoreSku.objects.get(store=store, sku=skus["soup"]).is_available is True
    # Off then on before the relay claimed the first message: that one message carries the
    # state when it is delivered (on sale); no second message is written.
    assert OutboxMessage.objects.filter(topic="platform.item_availability").count() == 1


def test_menu_lists_this_stores_skus_with_price_availability_and_stock(store, skus, pos):
    StoreSku.objects.filter(store=store, sku=skus["soup"]).update(is_available=False, price=Decimal("7.00"))

    body = pos.get(f"{BASE}/menu").json()

    assert [(s["sku"], s["price"], s["available"], s["stock"], s["spec"]) for s in body["skus"]] == [
        ("RICE", "12.00", True, 10, ""), ("SOUP", "7.00", False, None, "大份")]


def issued_voucher(store, *codes):
    """A voucher order issued with ``codes`` (as the OMS route records them), one line of len(codes) units."""
    voucher = make_order(store=store, order_type="voucher",
                         lines=[LineInput(name="50元代金券", sku_code="V50", unit_price=Decimal("45.00"),
                                          quantity=len(codes))])
    walk(voucher, "pay")
    voucher_codes_record_issued(order_no=voucher.order_no, actor=Actor.system("oms"),
                                codes=[IssuedCode(code=code, line_no=1) for code in codes])
    return voucher


def test_voucher_redeem_by_code(store, pos):
    voucher = issued_voucher(store, "EV0000012345")

    redeemed = pos.post(f"{BASE}/vouchers/redeem", {"code": "EV0000012345"}, format="json")
    again = pos.post(f"{BASE}/vouchers/redeem", {"code": "EV0000012345"}, format="json")
    unknown = pos.post(f"{BASE}/vouchers/redeem", {"code": "NOPE"}, format="json")

    assert (redeemed.status_code, redeemed.json()["status"], redeemed.json()["order_no"]) == (
        200, "redeemed", voucher.order_no)
    assert (redeemed.json()["voucher"]["code"], redeemed.json()["voucher"]["state"], redeemed.json()["codes_left"]) \
        == ("EV0000012345", "redeemed", 0)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "voucher_already_redeemed"
    assert again.json()["error"]["detail"]["status"] == "redeemed"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "voucher_not_found"


def test_a_voucher_order_is_redeemed_with_its_last_code(store, pos):
    voucher = issued_voucher(store, "EV0000000001", "EV0000000002")

    first = pos.post(f"{BASE}/vouchers/redeem", {"code": "EV0000000002"}, format="json")
    last = pos.post(f"{BASE}/vouchers/redeem", {"code": "EV0000000001"}, format="json")

    assert (first.json()["status"], first.json()["codes_left"]) == ("issued", 1)
    assert (last.json()["status"], last.json()["codes_left"]) == ("redeemed", 0)
    assert Order.objects.get(pk=voucher.pk).status == "redeemed"


def test_the_pickup_code_of_a_voucher_order_is_not_a_voucher_code(store, pos):
    voucher = issued_voucher(store, "EV0000000003")
    Order.objects.filter(pk=voucher.pk).update(pickup_code="V12345")

    response = pos.post(f"{BASE}/vouchers/redeem", {"code": "V12345"}, format="json")

    assert response.status_code == 404


