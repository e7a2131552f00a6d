"""Platform pushes and pulls stay inside their binding.

Two brands, each with its own Meituan and Ele.me bindings and secrets. Brand A's
orders are ingested and accepted; brand B signs pushes with its OWN secrets (over
the real receivers) that name A's shop or A's orders. Each of them changes nothing
(orders, events, stock and its ledger, the POS feed, refund applications, the
outbox) and gets the platform's error answer. The same pushes signed by A apply, so
the matrix can fail. Pulled and reconciled orders of another shop change nothing
either, and do not stop the pull.
"""

import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from channels.adapters.eleme import ElemeAdapter
from channels.adapters.meituan import MeituanAdapter
from aftersales.models import AfterSalesRequest
from channels.services import binding_pull, platform_order_ingest, platform_orders_reconcile
from core.actors import Actor
from core.models import OutboxMessage
from inventory.models import Stock, StockMovement, StockShortfall
from inventory.services import stock_set
from orders.models import Order, OrderEvent
from orders.models.feed import StoreFeedEvent
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.push_helpers import eleme_push, meituan_push
from tests.channels.samples import ELEME_SHOP, MEITUAN_SHOP, eleme_order, meituan_order
from tests.channels.sim_helpers import eleme_shop, meituan_shop, sim_orders
from tests.factories import SkuFactory, StoreBindingFactory, StoreFactory

POS = Actor(kind="pos", id="T1")
A_MEITUAN_ORDER = "27900000000001"
A_ELEME_ORDER = "3025112212000001"
B_MEITUAN_SHOP = "mt-poi-b01"
B_ELEME_SHOP = "260001"
FOOD = json.dumps([{"app_food_code": "HC001", "food_name": "宫保鸡丁", "sku_id": "1001001", "count": 1,
                    "refund_price": 28}], ensure_ascii=False)
GOODS = [{"name": "扬州炒饭", "skuId": 800001, "extendCode": "ZS001", "quantity": 1, "price": 24}]


@pytest.fixture
def brands(shop):
    """Brand A (the ``shop`` fixture) with a Meituan and an Ele.me order, both accepted;
    brand B with its own bindings and secrets, and a second store of B whose bindings
    hold brand A's app ids (a tenant types any app id) with B's own secrets."""
    stock_set(store_id=shop["store"].pk, sku_id=shop["rice"].pk, on_hand=5)
    for binding, payload in ((shop["meituan"], meituan_order()), (shop["eleme"], eleme_order())):
        order = platform_order_ingest(binding=binding, payload=payload).order
        order_transition(order_id=order.pk, action="accept", actor=POS)
    store_b = StoreFactory(name="B 品牌·静安店")
    store_b2 = StoreFactory(name="B 品牌·黄浦店", brand=store_b.brand)
    assert store_b.brand_id != shop["store"].brand_id
    return {
        "a_meituan": shop["meituan"], "a_eleme": shop["eleme"], "a_store": shop["store"], "a": shop,
        "b_meituan": StoreBindingFactory(store=store_b, platform="meituan", shop_code=B_MEITUAN_SHOP, app_id="7001",
                                         secret="mt-secret-b"),
        "b_eleme": StoreBindingFactory(store=store_b, platform="eleme", shop_code=B_ELEME_SHOP, app_id="el-key-b",
                                       secret="el-secret-b", token="el-token-b"),
        "b2_meituan": StoreBindingFactory(store=store_b2, platform="meituan", shop_code="mt-poi-b02", app_id="6001",
                                          secret="mt-secret-b2"),
        "b2_eleme": StoreBindingFactory(store=store_b2, platform="eleme", shop_code="260002", app_id="el-key",
                                        secret="el-secret-b2", token="el-token-b2"),
    }


def world():
    """Everything a push could change, row by row."""
    return {
        "orders": list(Order.objects.order_by("pk").values_list(
            "pk", "store_id", "channel_order_id", "status", "needs_attention", "attention_reason", "total")),
        "events": list(OrderEvent.objects.order_by("pk").values_list("pk", "order_id", "action", "reason_code")),
        "stock": list(Stock.objects.order_by("pk").values_list("pk", "store_id", "sku_id", "on_hand")),
        "ledger": list(StockMovement.objects.order_by("pk").values_list("pk", "stock_id", "delta", "reason",
                                                                         "reference")),
        "shortfalls": list(StockShortfall.objects.order_by("pk").values_list("pk", "quantity", "resolved")),
        "feed": list(StoreFeedEvent.objects.order_by("pk").values_list("pk", "store_id", "order_id", "type")),
        "refund_applications": list(AfterSalesRequest.objects.order_by("pk").values_list(
            "pk", "order_id", "scope", "amount", "status")),
        "outbox": list(OutboxMessage.objects.order_by("pk").values_list("pk", "topic", "key", "status")),
    }


def refusals(caplog):
    """(binding id, platform, shop, order id) of every refusal logged by intake."""
    return [(r.binding, r.platform, r.shop, r.order_id) for r in caplog.records
            if r.name == "channels.services.intake" and r.levelname == "WARNING"
            and r.getMessage() == "platform order of another shop or store refused"]


def mt_error(status, code, msg):
    return status, {"data": "ng", "error": {"code": code, "msg": msg}}


def el_error(status, msg):
    return status, {"message": msg}


NOT_THIS_SHOPS_MT = mt_error(403, 700, f"order {A_MEITUAN_ORDER} is not this shop's")
NOT_THIS_SHOPS_EL = el_error(403, f"order {A_ELEME_ORDER} is not this shop's")
BAD_SIGNATURE_MT = mt_error(401, 703, "bad signature")
BAD_SIGNATURE_EL = el_error(401, "bad signature")


def _el_message(**fields):
    return {"orderId": A_ELEME_ORDER, "shopId": int(B_ELEME_SHOP), "updateTime": int(time.time()), **fields}


# (case, signer, push, expected answer, logged refusal (signer, shop, order id) or None)
FORGED = [
    ("meituan create naming A's shop", "b_meituan",
     lambda: ("meituan", "create_order", meituan_order(order_id=27900000000099)),
     BAD_SIGNATURE_MT, None),
    ("meituan create in B's shop reusing A's order id, cancelled", "b_meituan",
     lambda: ("meituan", "create_order", meituan_order(app_poi_code=B_MEITUAN_SHOP, status=9)),
     NOT_THIS_SHOPS_MT, ("b_meituan", B_MEITUAN_SHOP, A_MEITUAN_ORDER)),
    ("meituan cancel A's order", "b_meituan",
     lambda: ("meituan", "cancel_order", {"order_id": A_MEITUAN_ORDER, "reason_code": "1001", "reason": "系统取消"}),
     NOT_THIS_SHOPS_MT, ("b_meituan", "", A_MEITUAN_ORDER)),
    ("meituan refund apply, whole order", "b_meituan",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "apply", "reason": "不想要了",
                                          "refund_id": "R9"}),
     NOT_THIS_SHOPS_MT, ("b_meituan", "", A_MEITUAN_ORDER)),
    ("meituan refund apply, partial", "b_meituan",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "part", "money": "28",
                                          "food": FOOD, "reason": "少送了", "refund_id": "R9"}),
     NOT_THIS_SHOPS_MT, ("b_meituan", "", A_MEITUAN_ORDER)),
    ("meituan refund agree", "b_meituan",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "agree", "reason": "同意",
                                          "refund_id": "R9"}),
     NOT_THIS_SHOPS_MT, ("b_meituan", "", A_MEITUAN_ORDER)),
    ("meituan refund reject", "b_meituan",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "reject", "reason": "驳回",
                                          "refund_id": "R9"}),
     NOT_THIS_SHOPS_MT, ("b_meituan", "", A_MEITUAN_ORDER)),
    ("meituan cancel A's order, B's binding holding A's app id", "b2_meituan",
     lambda: ("meituan", "cancel_order", {"order_id": A_MEITUAN_ORDER, "reason_code": "1001", "reason": "系统取消"}),
     NOT_THIS_SHOPS_MT, ("b2_meituan", "", A_MEITUAN_ORDER)),
    ("meituan create naming A's shop, B's binding holding A's app id", "b2_meituan",
     lambda: ("meituan", "create_order", meituan_order(order_id=27900000000099)),
     BAD_SIGNATURE_MT, None),
    ("eleme 10 naming A's shop", "b_eleme",
     lambda: ("eleme", 10, eleme_order(id="3025112212000099"), ELEME_SHOP),
     BAD_SIGNATURE_EL, None),
    ("eleme 10 from B's shop whose order names A's shop", "b_eleme",
     lambda: ("eleme", 10, eleme_order(id="3025112212000099"), B_ELEME_SHOP),
     el_error(403, f"shop '{ELEME_SHOP}' is not this binding's"), ("b_eleme", ELEME_SHOP, "3025112212000099")),
    ("eleme 10 in B's shop reusing A's order id, invalid", "b_eleme",
     lambda: ("eleme", 10, eleme_order(shopId=int(B_ELEME_SHOP), status="invalid"), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 14 cancel A's order", "b_eleme",
     lambda: ("eleme", 14, _el_message(state="invalid", role=1, reason="用户取消"), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 15 invalidate A's order", "b_eleme",
     lambda: ("eleme", 15, _el_message(state="invalid", role=3, reason="系统取消"), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 20 cancellation applied", "b_eleme",
     lambda: ("eleme", 20, _el_message(reason="不想要了"), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 30 refund apply, whole order", "b_eleme",
     lambda: ("eleme", 30, _el_message(refundStatus="applied", reason="少送了", refundType="normal"), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 30 refund apply, partial", "b_eleme",
     lambda: ("eleme", 30, _el_message(refundStatus="applied", reason="少送了", refundType="part", totalPrice=24,
                                       goodsList=GOODS), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 18 completed", "b_eleme",
     lambda: ("eleme", 18, _el_message(state="settled"), B_ELEME_SHOP),
     NOT_THIS_SHOPS_EL, ("b_eleme", B_ELEME_SHOP, A_ELEME_ORDER)),
    ("eleme 15 invalidate A's order, B's binding holding A's app key", "b2_eleme",
     lambda: ("eleme", 15, _el_message(shopId=260002, state="invalid", role=3, reason="系统取消"), "260002"),
     NOT_THIS_SHOPS_EL, ("b2_eleme", "260002", A_ELEME_ORDER)),
    ("eleme 15 naming A's shop", "b_eleme",
     lambda: ("eleme", 15, _el_message(shopId=int(ELEME_SHOP), state="invalid", role=3, reason="系统取消"),
              ELEME_SHOP),
     BAD_SIGNATURE_EL, None),
]


def _send(client, brands, signer, push):
    platform, kind, fields, *shop = push()
    if platform == "meituan":
        return meituan_push(client, kind, fields, binding=brands[signer])
    return eleme_push(client, kind, fields, binding=brands[signer], shop_id=shop[0])


@pytest.mark.parametrize(("signer", "push", "answer", "logged"), [case[1:] for case in FORGED],
                         ids=[case[0] for case in FORGED])
def test_a_push_signed_by_another_brand_changes_nothing(client, brands, caplog, signer, push, answer, logged):
    before = world()

    response = _send(client, brands, signer, push)

    assert (response.status_code, response.json()) == answer
    assert world() == before
    if logged is None:
        assert refusals(caplog) == []
    else:
        signer_key, shop_code, order_id = logged
        binding = brands[signer_key]
        assert refusals(caplog) == [(binding.pk, binding.platform, shop_code, order_id)]


# The same pushes signed by brand A for its own shop: they apply (so the matrix can fail).
OWNED = [
    ("meituan create", lambda: ("meituan", "create_order", meituan_order(order_id=27900000000099)),
     lambda: Order.objects.filter(channel_order_id="27900000000099").values_list("status", flat=True).get(), "paid"),
    ("meituan cancel",
     lambda: ("meituan", "cancel_order", {"order_id": A_MEITUAN_ORDER, "reason_code": "1001", "reason": "系统取消"}),
     lambda: Order.objects.get(channel_order_id=A_MEITUAN_ORDER).status, "cancelled"),
    ("meituan refund apply, whole order",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "apply", "reason": "不想要了",
                                          "refund_id": "R9"}),
     lambda: AfterSalesRequest.objects.values_list("scope", "status").get(), ("order", "requested")),
    ("meituan refund apply, partial",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "part", "money": "28",
                                          "food": FOOD, "reason": "少送了", "refund_id": "R9"}),
     lambda: AfterSalesRequest.objects.values_list("scope", "status", "amount").get(),
     ("lines", "requested", Decimal("28.00"))),
    ("meituan refund agree",
     lambda: ("meituan", "refund_order", {"order_id": A_MEITUAN_ORDER, "notify_type": "agree", "reason": "同意",
                                          "refund_id": "R9"}),
     lambda: Order.objects.get(channel_order_id=A_MEITUAN_ORDER).status, "cancelled"),
    ("eleme 10 create", lambda: ("eleme", 10, eleme_order(id="3025112212000099"), ELEME_SHOP),
     lambda: Order.objects.filter(channel_order_id="3025112212000099").values_list("status", flat=True).get(),
     "paid"),
    ("eleme 15 invalidate",
     lambda: ("eleme", 15, _el_message(shopId=int(ELEME_SHOP), state="invalid", role=3, reason="系统取消"),
              ELEME_SHOP),
     lambda: Order.objects.get(channel_order_id=A_ELEME_ORDER).status, "cancelled"),
    ("eleme 30 refund apply, whole order",
     lambda: ("eleme", 30, _el_message(shopId=int(ELEME_SHOP), refundStatus="applied", reason="少送了",
                                       refundType="normal"), ELEME_SHOP),
     lambda: AfterSalesRequest.objects.values_list("scope", "status").get(), ("order", "requested")),
    ("eleme 30 refund apply, partial",
     lambda: ("eleme", 30, _el_message(shopId=int(ELEME_SHOP), refundStatus="applied", reason="少送了",
                                       refundType="part", totalPrice=24, goodsList=GOODS), ELEME_SHOP),
     lambda: AfterSalesRequest.objects.values_list("scope", "status", "amount").get(),
     ("lines", "requested", Decimal("24.00"))),
]


@pytest.mark.parametrize(("push", "read", "expected"), [case[1:] for case in OWNED], ids=[case[0] for case in OWNED])
def test_the_same_push_signed_by_the_owning_brand_applies(client, brands, caplog, push, read, expected):
    platform = push()[0]
    before = world()

    response = _send(client, brands, f"a_{platform}", push)

    assert (response.status_code, response.json()) == ((200, {"data": "ok"}) if platform == "meituan"
                                                       else (200, {"message": "ok"}))
    assert read() == expected
    assert world() != before
    assert refusals(caplog) == []


@pytest.mark.django_db(transaction=True)
def test_an_eleme_completed_push_signed_by_the_owning_brand_applies(client, brands):
    with running_simulator() as sim:
        eleme_shop(sim, brands["a"])
        made = sim_orders(sim, "eleme", {"shop": ELEME_SHOP, "lines": [{"extend_code": "ZS001"}]})[0]
        platform_order_ingest(binding=brands["a_eleme"], payload=made)
        order = Order.objects.get(channel_order_id=made["id"])
        order_transition(order_id=order.pk, action="accept", actor=POS)
        ElemeAdapter().accept(brands["a_eleme"], made["id"])  # what the outbox would send
        assert requests.post(f"{sim.base_url}/_sim/eleme/orders/{made['id']}/complete", json={},
                             timeout=5).status_code == 200

        response = eleme_push(client, 18, {"orderId": made["id"], "state": "settled", "shopId": int(ELEME_SHOP)},
                              binding=brands["a_eleme"])

    assert (response.status_code, response.json()) == (200, {"message": "ok"})
    assert Order.objects.get(pk=order.pk).status == "delivered"


# --- an order we do not know: fetched with the verifying binding, and its shop checked -----------


@pytest.mark.django_db(transaction=True)
def test_a_push_about_an_unknown_order_that_brand_bs_platform_places_in_as_shop_changes_nothing(
        client, brands, caplog):
    # Brand B points its bindings at a platform it controls, which answers orders of A's shops.
    with running_simulator() as sim:
        for binding, body in ((brands["b_meituan"], {"app_poi_code": MEITUAN_SHOP}),
                              (brands["b_eleme"], {"shop_id": ELEME_SHOP, "token": "el-token-b"})):
            register = {"app_id": binding.app_id, "app_key": binding.app_id, "secret": binding.secret, **body}
            path = "meituan/shops" if binding.platform == "meituan" else "eleme/shops"
            assert requests.post(f"{sim.base_url}/_sim/{path}", json=register, timeout=5).status_code == 201
            binding.base_url = sim.base_url
            binding.save()
        mt_order = str(sim_orders(sim, "meituan", {"shop": MEITUAN_SHOP})[0]["order_id"])
        el_order = sim_orders(sim, "eleme", {"shop": ELEME_SHOP})[0]["id"]
        before = world()

        cancel = meituan_push(client, "cancel_order", {"order_id": mt_order, "reason_code": "1001", "reason": "x"},
                              binding=brands["b_meituan"])
        invalid = eleme_push(client, 14, {"orderId": el_order, "shopId": int(B_ELEME_SHOP), "state": "invalid"},
                             binding=brands["b_eleme"])
        settled = eleme_push(client, 18, {"orderId": el_order, "shopId": int(B_ELEME_SHOP), "state": "settled"},
                             binding=brands["b_eleme"])

    assert (cancel.status_code, cancel.json()) == mt_error(403, 700, f"shop '{MEITUAN_SHOP}' is not this binding's")
    assert (invalid.status_code, invalid.json()) == el_error(403, f"shop '{ELEME_SHOP}' is not this binding's")
    assert (settled.status_code, settled.json()) == el_error(403, f"shop '{ELEME_SHOP}' is not this binding's")
    assert world() == before
    assert refusals(caplog) == [
        (brands["b_meituan"].pk, "meituan", MEITUAN_SHOP, mt_order),
        (brands["b_eleme"].pk, "eleme", ELEME_SHOP, el_order),
        (brands["b_eleme"].pk, "eleme", ELEME_SHOP, el_order),
    ]


# --- one platform app serving several of our shops -------------------------------------------------


def test_a_shared_app_id_and_secret_acts_only_on_the_order_of_the_shop_it_concerns(client, brands):
    """The demo's shape: one Meituan app id and secret for several stores of a brand.
    A cancel push (it names no shop) reaches the store that holds the order."""
    second = StoreBindingFactory(store=StoreFactory(brand=brands["a_store"].brand), platform="meituan",
                                 shop_code="mt-poi-002", app_id="6001", secret="mt-secret")

    response = meituan_push(client, "cancel_order", {"order_id": A_MEITUAN_ORDER, "reason_code": "1001",
                                                     "reason": "系统取消"}, binding=second)

    assert (response.status_code, response.json()) == (200, {"data": "ok"})
    assert Order.objects.get(channel_order_id=A_MEITUAN_ORDER).status == "cancelled"


def test_a_shared_app_id_push_naming_one_shop_cannot_touch_the_others_order(client, brands, caplog):
    second = StoreBindingFactory(store=StoreFactory(brand=brands["a_store"].brand), platform="meituan",
                                 shop_code="mt-poi-002", app_id="6001", secret="mt-secret")
    before = world()

    response = meituan_push(client, "create_order", meituan_order(app_poi_code="mt-poi-002", status=9),
                            binding=second)

    assert (response.status_code, response.json()) == NOT_THIS_SHOPS_MT
    assert world() == before
    assert refusals(caplog) == [(second.pk, "meituan", "mt-poi-002", A_MEITUAN_ORDER)]


# --- pulls and reconciliation ----------------------------------------------------------------------


def _platform_answers(monkeypatch, adapter, answers):
    """The platform's answers, by Meituan path or Ele.me action (what would leave the machine)."""
    def call(self, binding, *args):
        route = args[1] if adapter is MeituanAdapter else args[0]
        return answers[route]
    monkeypatch.setattr(adapter, "call", call)


def test_a_meituan_pull_skips_an_order_of_another_shop_and_goes_on(brands, monkeypatch, caplog):
    # B's platform answers, for B's shop, first an order of A's shop, then one reusing A's order id.
    foreign = meituan_order(order_id=27900000000099, day_seq=1)
    reused = meituan_order(app_poi_code=B_MEITUAN_SHOP, day_seq=2, status=9)
    details = iter([foreign, reused])
    _platform_answers(monkeypatch, MeituanAdapter, {
        "order/getOrderDaySeq": {"day_seq": 2}, "order/getOrderIdByDaySeq": {"order_id": 1},
    })
    monkeypatch.setattr(MeituanAdapter, "fetch_order", lambda self, binding, order_id: next(details))
    before = world()

    result = binding_pull(binding_id=brands["b_meituan"].pk)

    assert (result.pulled, result.created) == (0, 0)
    assert result.errors == [f"BindingMismatch: shop '{MEITUAN_SHOP}' is not this binding's",
                             f"BindingMismatch: order {A_MEITUAN_ORDER} is not this shop's"]
    assert world() == before
    assert refusals(caplog) == [(brands["b_meituan"].pk, "meituan", MEITUAN_SHOP, "27900000000099"),
                                (brands["b_meituan"].pk, "meituan", B_MEITUAN_SHOP, A_MEITUAN_ORDER)]


def test_an_eleme_pull_skips_an_order_of_another_shop_and_ingests_its_own(brands, monkeypatch, caplog):
    stock_set(store_id=brands["b_eleme"].store_id,
              sku_id=SkuFactory(brand=brands["b_eleme"].store.brand, code="ZS001").pk, on_hand=5)
    foreign = eleme_order(id="3025112212000099", createdAt="2026-11-22T12:30:01")
    reused = eleme_order(shopId=int(B_ELEME_SHOP), status="invalid", createdAt="2026-11-22T12:30:02")
    own = eleme_order(id="3025112212000100", shopId=int(B_ELEME_SHOP), createdAt="2026-11-22T12:30:03")
    _platform_answers(monkeypatch, ElemeAdapter, {
        "eleme.order.getUnprocessOrders": [foreign["id"], reused["id"], own["id"]],
        "eleme.order.mgetOrders": {o["id"]: o for o in (foreign, reused, own)},
        "eleme.order.getAllOrders": {"list": []},
    })
    a_orders = world()["orders"]

    result = binding_pull(binding_id=brands["b_eleme"].pk)

    assert (result.pulled, result.created) == (1, 1)
    assert result.errors == [f"BindingMismatch: shop '{ELEME_SHOP}' is not this binding's",
                             f"BindingMismatch: order {A_ELEME_ORDER} is not this shop's"]
    assert world()["orders"][:2] == a_orders
    assert Order.objects.get(channel_order_id="3025112212000100").store_id == brands["b_eleme"].store_id
    assert refusals(caplog) == [(brands["b_eleme"].pk, "eleme", ELEME_SHOP, "3025112212000099"),
                                (brands["b_eleme"].pk, "eleme", B_ELEME_SHOP, A_ELEME_ORDER)]


@pytest.mark.django_db(transaction=True)
def test_reconciling_an_order_the_platform_now_places_in_another_shop_changes_nothing(brands, caplog):
    """B's order, as B's platform answers it on the next check, names A's shop: skipped, logged."""
    with running_simulator() as sim:
        for binding, body in ((brands["b_meituan"], {"app_poi_code": MEITUAN_SHOP}),
                              (brands["b_eleme"], {"shop_id": ELEME_SHOP, "token": "el-token-b"})):
            register = {"app_id": binding.app_id, "app_key": binding.app_id, "secret": binding.secret, **body}
            path = "meituan/shops" if binding.platform == "meituan" else "eleme/shops"
            assert requests.post(f"{sim.base_url}/_sim/{path}", json=register, timeout=5).status_code == 201
            binding.base_url = sim.base_url
            binding.save()
        an_hour_ago = int(time.time()) - 3600
        mt = sim_orders(sim, "meituan", {"shop": MEITUAN_SHOP, "created_at": an_hour_ago})[0]
        el = sim_orders(sim, "eleme", {"shop": ELEME_SHOP, "created_at": an_hour_ago})[0]
        # Ingested into B's store while the platform still said B's shop.
        platform_order_ingest(binding=brands["b_meituan"], payload={**mt, "app_poi_code": B_MEITUAN_SHOP})
        platform_order_ingest(binding=brands["b_eleme"], payload={**el, "shopId": int(B_ELEME_SHOP)})
        requests.post(f"{sim.base_url}/_sim/meituan/orders/{mt['order_id']}/cancel", json={}, timeout=5)
        requests.post(f"{sim.base_url}/_sim/eleme/orders/{el['id']}/cancel", json={}, timeout=5)
        before = world()

        result = platform_orders_reconcile(now=timezone.now() + timedelta(minutes=1))

    assert result.checked == 0
    assert sorted(error.split(": ", 1)[1] for error in result.errors) == sorted([
        f"BindingMismatch: shop '{MEITUAN_SHOP}' is not this binding's",
        f"BindingMismatch: shop '{ELEME_SHOP}' is not this binding's",
    ])
    assert world() == before
    assert sorted(refusals(caplog)) == sorted([
        (brands["b_meituan"].pk, "meituan", MEITUAN_SHOP, str(mt["order_id"])),
        (brands["b_eleme"].pk, "eleme", ELEME_SHOP, el["id"]),
    ])
