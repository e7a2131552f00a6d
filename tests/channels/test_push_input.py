"""Hostile input at the push receivers: a 4xx in the platform's shape, never a 5xx, and
nothing written; platform texts with NUL bytes are stored without them (push and pull)."""

import json
import time

import pytest

from aftersales.models import AfterSalesRequest
from channels.services import binding_pull, platform_order_ingest
from core.actors import Actor
from orders.models import Order, OrderEvent
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.push_helpers import eleme_body, eleme_push, meituan_push
from tests.channels.samples import ELEME_SHOP, MEITUAN_SHOP, eleme_order, meituan_order
from tests.channels.sim_helpers import eleme_shop, meituan_shop, sim_orders

POS = Actor(kind="pos", id="T1")
DEEP = "[" * 2000 + "]" * 2000


def _post_eleme(client, text):
    return client.post("/channels/push/eleme", text, content_type="application/json")


def _answer(response):
    return response.status_code, response.json()


def _eleme_text(**fields):
    """An Ele.me push body as raw JSON text (what json.dumps cannot write: 1e400, huge integers)."""
    body = {"requestId": '"r1"', "type": "14", "appId": '"el-key"', "message": '"{}"', "shopId": ELEME_SHOP,
            "timestamp": str(int(time.time())), "signature": '"' + "0" * 32 + '"', "userId": "0", **fields}
    return "{" + ",".join(f'"{key}":{value}' for key, value in body.items()) + "}"


# --- Ele.me: shape before signature, then the message -------------------------------------------


@pytest.mark.parametrize(("text", "answer"), [
    ("not json", (400, "body is not valid JSON: malformed JSON: Expecting value: line 1 column 1 (char 0)")),
    (_eleme_text(timestamp="1e400"), (400, "body is not valid JSON: a number is out of range")),
    (_eleme_text(timestamp="9" * 5000), (400, "body is not valid JSON: an integer has more than 40 digits")),
    (_eleme_text(timestamp='"' + "9" * 5000 + '"'), (400, "bad timestamp")),
    (_eleme_text(timestamp="1.5"), (400, "bad timestamp")),
    (_eleme_text(timestamp="true"), (400, "bad timestamp")),
    (_eleme_text(type="[" + ",".join(["1"] * 20000) + "]"), (400, "bad type")),
    (_eleme_text(type="10000000"), (400, "bad type")),
    (_eleme_text(type='"abc"'), (400, "bad type")),
    (_eleme_text(appId='{"a": 1}'), (400, "appId must be a string")),
    (_eleme_text(appId='"' + "k" * 65 + '"'), (400, "appId is longer than 64 characters")),
    (_eleme_text(shopId="[1, 2]"), (400, "shopId must be a string")),
    (_eleme_text(shopId='""'), (400, "shopId is required")),
    (_eleme_text(requestId='"' + "r" * 129 + '"'), (400, "requestId is longer than 128 characters")),
    (_eleme_text(message="[1, 2, 3]"), (400, "message must be a JSON string")),
    (_eleme_text(message=DEEP), (400, "body is not valid JSON: JSON nested deeper than 32 levels")),
    (_eleme_text(signature='"签名"'), (401, "bad signature")),
    (_eleme_text(signature="[1]"), (401, "bad signature")),
    ("[" + ",".join(["0"] * 150000) + "]", (413, "the body is larger than 262144 bytes")),
    ("[" + ",".join(["0"] * 1000) + "]", (400, "the body must be a JSON object")),
], ids=["not-json", "1e400", "5000-digit-timestamp", "5000-digit-timestamp-string", "float-timestamp",
        "bool-timestamp", "huge-array-type", "type-out-of-range", "text-type", "object-app-id", "long-app-id",
        "array-shop-id", "empty-shop-id", "long-request-id", "array-message", "deep-message", "non-hex-signature",
        "array-signature", "huge-array-body", "array-body"])
def test_a_malformed_eleme_push_gets_a_4xx_and_changes_nothing(client, shop, text, answer):
    orders, events = Order.objects.count(), OrderEvent.objects.count()

    response = _post_eleme(client, text)

    assert _answer(response) == (answer[0], {"message": answer[1]})
    assert (Order.objects.count(), OrderEvent.objects.count()) == (orders, events)


def test_a_body_that_is_not_utf8_gets_a_400(client, shop):
    response = client.post("/channels/push/eleme", b'{"type": "\xff\xfe"}', content_type="application/json")

    assert _answer(response) == (400, {"message": "body is not valid JSON: the body is not UTF-8"})


@pytest.mark.parametrize(("message", "answer"), [
    (DEEP, "message is not valid JSON: JSON nested deeper than 32 levels"),
    ('{"orderId": "1", "totalPrice": 1e400}', "message is not valid JSON: a number is out of range"),
    ('{"orderId": ' + "9" * 5000 + "}", "message is not valid JSON: an integer has more than 40 digits"),
    ("[1, 2]", "message must be a JSON object"),
    ('{"orderId": ["1"]}', "the message's order id must be a string"),
    ('{"orderId": "' + "1" * 65 + '"}', "the message's order id is longer than 64 characters"),
    ('{"orderId": "1", "refundType": "part", "goodsList": [{"quantity": 1e30, "price": 1}]}',
     "quantity out of range: 1e+30"),
    ('{"orderId": "1", "refundType": "part", "totalPrice": "NaN"}', "amount out of range: 'NaN'"),
], ids=["deep", "1e400", "5000-digit-id", "array", "array-order-id", "long-order-id", "huge-quantity", "nan-amount"])
def test_a_signed_eleme_message_that_is_malformed_gets_a_400(client, shop, message, answer):
    response = eleme_push(client, 30, message, binding=shop["eleme"])

    assert _answer(response) == (400, {"message": answer})
    assert AfterSalesRequest.objects.count() == 0


@pytest.mark.parametrize(("order", "answer"), [
    (eleme_order(daySn=10**30), "daySn out of range: 1000000000000000000000000000000"),
    (eleme_order(totalPrice=1e30), "not an amount: 1e+30"),
    (eleme_order(totalPrice=123456789), "amount out of range: 123456789"),
    (eleme_order(groups=[{"name": "1号篮子", "items": [{"name": "炒饭", "price": 24, "quantity": "many"}]}]),
     "quantity is not an integer: 'many'"),
    (eleme_order(groups="lots"), "groups must be a list of objects"),
    (eleme_order(groups=[{"items": [7]}]), "items must be a list of objects"),
    (eleme_order(createdAt="yesterday"), "not a time: 'yesterday'"),
    (eleme_order(id="9" * 70), "the message's order id is longer than 64 characters"),
], ids=["huge-day-sn", "huge-total", "total-past-our-columns", "text-quantity", "text-groups", "number-items", "bad-time", "long-id"])
def test_a_signed_eleme_order_with_bad_values_gets_a_400_and_no_order(client, shop, order, answer):
    response = eleme_push(client, 10, order, binding=shop["eleme"])

    assert _answer(response) == (400, {"message": answer})
    assert Order.objects.count() == 0


# --- Meituan: the form, and the JSON strings inside it --------------------------------------------


def test_a_meituan_form_past_the_size_limit_gets_a_413(client, shop):
    response = client.post("/channels/push/meituan/create_order", "caution=" + "x" * 300_000,
                           content_type="application/x-www-form-urlencoded")

    assert _answer(response) == (413, {"data": "ng", "error": {"code": 700,
                                                                "msg": "the body is larger than 262144 bytes"}})


@pytest.mark.parametrize(("form", "answer"), [
    ("&".join(f"f{n}=1" for n in range(1500)), (400, 700, "malformed form: The number of GET/POST parameters "
                                                          "exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.")),
    (f"app_id=6001&timestamp={'9' * 5000}&sig={'0' * 32}&order_id=1", (400, 700, "bad timestamp")),
    (f"app_id=6001&timestamp=-5&sig={'0' * 32}&order_id=1", (400, 700, "bad timestamp")),
    (f"app_id={'k' * 65}&timestamp={int(time.time())}&sig={'0' * 32}&order_id=1",
     (400, 700, "app_id is longer than 64 characters")),
    (f"app_id=6001&timestamp={int(time.time())}&sig=%E7%AD%BE&order_id=1", (401, 703, "bad signature")),
    (f"app_id=6001&timestamp={int(time.time())}&sig={'0' * 32}&order_id=1&detail={DEEP}",
     (401, 703, "bad signature")),
], ids=["too-many-fields", "5000-digit-timestamp", "negative-timestamp", "long-app-id", "non-hex-sig",
        "unsigned-deep-detail"])
def test_a_malformed_meituan_push_gets_a_4xx_before_its_signature_is_trusted(client, shop, form, answer):
    response = client.post("/channels/push/meituan/cancel_order", form,
                           content_type="application/x-www-form-urlencoded")

    assert _answer(response) == (answer[0], {"data": "ng", "error": {"code": answer[1], "msg": answer[2]}})


@pytest.mark.parametrize(("fields", "answer"), [
    ({"detail": DEEP}, "detail is not valid JSON: JSON nested deeper than 32 levels"),
    ({"extras": DEEP}, "extras is not valid JSON: JSON nested deeper than 32 levels"),
    ({"detail": '[{"app_food_code": "HC001", "quantity": 1, "price": 1e400}]'},
     "detail is not valid JSON: a number is out of range"),
    ({"detail": '[{"app_food_code": "HC001", "quantity": 1e30, "price": 1}]'}, "value out of range: 1e+30"),
    ({"detail": '{"app_food_code": "HC001"}'}, "detail is not a list of objects"),
    ({"total": "1e400"}, "not an amount: '1e400'"),
    ({"total": "100000000"}, "amount out of range: '100000000'"),
    ({"total": "NaN"}, "amount out of range: 'NaN'"),
    ({"shipping_fee": "Infinity"}, "not an amount: 'Infinity'"),
    ({"day_seq": "9" * 5000}, "value out of range: '" + "9" * 5000 + "'"[:100]),
    ({"ctime": "99999999999999"}, "not a time: '99999999999999'"),
    ({"order_id": "9" * 70, "wm_order_id_view": "1"}, "order_id is longer than 64 characters"),
], ids=["deep-detail", "deep-extras", "1e400-price", "huge-quantity", "object-detail", "1e400-total",
        "total-past-our-columns", "nan-total",
        "infinite-fee", "5000-digit-day-seq", "far-ctime", "long-order-id"])
def test_a_signed_meituan_order_with_bad_values_gets_a_400_and_no_order(client, shop, fields, answer):
    response = meituan_push(client, "create_order", meituan_order(**fields), binding=shop["meituan"])

    assert _answer(response) == (400, {"data": "ng", "error": {"code": 700, "msg": answer[:100]}})
    assert Order.objects.count() == 0


@pytest.mark.parametrize(("fields", "answer"), [
    ({"food": DEEP}, "food is not valid JSON: JSON nested deeper than 32 levels"),
    ({"food": '[{"app_food_code": "HC001", "count": 1, "refund_price": 1e400}]'},
     "food is not valid JSON: a number is out of range"),
    ({"food": '[{"app_food_code": "HC001", "count": "' + "9" * 5000 + '", "refund_price": 1}]'},
     "value out of range: '" + "9" * 5000),
    ({"money": "1e400"}, "not an amount: '1e400'"),
], ids=["deep-food", "1e400-food", "5000-digit-count", "1e400-money"])
def test_a_signed_meituan_refund_with_bad_values_gets_a_400(client, shop, fields, answer):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order

    response = meituan_push(client, "refund_order", {"order_id": order.channel_order_id, "notify_type": "part",
                                                     "money": "1", "reason": "x", **fields}, binding=shop["meituan"])

    assert _answer(response) == (400, {"data": "ng", "error": {"code": 700, "msg": answer[:100]}})
    assert AfterSalesRequest.objects.count() == 0


# --- NUL bytes: removed at the adapter edge, pushed or pulled ------------------------------------


def test_a_pushed_meituan_order_with_nul_bytes_is_stored_without_them(client, shop):
    detail = json.loads(meituan_order()["detail"])
    detail[1]["food_name"] = "米\x00饭"

    response = meituan_push(client, "create_order", meituan_order(
        caution="少\x00辣", recipient_name="王\x00先生", detail=json.dumps(detail, ensure_ascii=False)),
        binding=shop["meituan"])

    assert _answer(response) == (200, {"data": "ok"})
    order = Order.objects.get()
    assert (order.customer_note, order.contact_name) == ("少辣", "王先生")
    assert list(order.lines.values_list("name", flat=True)) == ["宫保鸡丁", "米饭"]
    assert (order.raw_payload["caution"], order.raw_payload["recipient_name"]) == ("少辣", "王先生")


def test_a_pushed_meituan_refund_reason_with_nul_bytes_is_stored_without_them(client, shop):
    order = platform_order_ingest(binding=shop["meituan"], payload=meituan_order()).order

    response = meituan_push(client, "refund_order", {"order_id": order.channel_order_id, "notify_type": "apply",
                                                     "reason": "少\x00送了", "refund_id": "R\x001"},
                            binding=shop["meituan"])

    assert _answer(response) == (200, {"data": "ok"})
    assert AfterSalesRequest.objects.values_list("reason", "platform_refund_id").get() == ("少送了", "R1")


def test_a_pushed_eleme_order_with_nul_bytes_is_stored_without_them(client, shop):
    stock_order = eleme_order(description="不要\x00香菜", consignee="李\x00女士")
    stock_order["groups"][0]["items"][0]["name"] = "扬州\x00炒饭"
    body = eleme_body(10, stock_order, binding=shop["eleme"])

    response = _post_eleme(client, json.dumps(body, ensure_ascii=False))

    assert _answer(response) == (200, {"message": "ok"})
    order = Order.objects.get()
    assert (order.customer_note, order.contact_name) == ("不要香菜", "李女士")
    assert list(order.lines.values_list("name", flat=True)) == ["扬州炒饭"]
    assert (order.raw_payload["description"], order.raw_payload["groups"][0]["items"][0]["name"]) == (
        "不要香菜", "扬州炒饭")


def test_a_pushed_eleme_refund_reason_with_nul_bytes_is_stored_without_them(client, shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order()).order
    order_transition(order_id=order.pk, action="accept", actor=POS)

    response = eleme_push(client, 30, {"orderId": order.channel_order_id, "reason": "少\x00送了",
                                       "refundType": "normal"}, binding=shop["eleme"])

    assert _answer(response) == (200, {"message": "ok"})
    assert AfterSalesRequest.objects.values_list("reason", flat=True).get() == "少送了"


def test_an_identifier_with_a_nul_byte_is_refused_before_it_is_looked_up(client, shop):
    order = platform_order_ingest(binding=shop["eleme"], payload=eleme_order()).order
    body = eleme_body(30, {"orderId": order.channel_order_id, "refundType": "normal"}, binding=shop["eleme"],
                      shop_id=ELEME_SHOP + "\x00")

    eleme = _post_eleme(client, json.dumps(body))
    meituan = meituan_push(client, "cancel_order", {"order_id": "1", "app_poi_code": "mt\x00"},
                           binding=shop["meituan"])

    assert _answer(eleme) == (400, {"message": "shopId has control characters"})
    assert _answer(meituan) == (400, {"data": "ng", "error": {"code": 700, "msg": "app_poi_code has control characters"}})
    assert AfterSalesRequest.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_pulled_orders_with_nul_bytes_are_stored_without_them(shop):
    with running_simulator() as sim:
        meituan_shop(sim, shop)
        eleme_shop(sim, shop)
        sim_orders(sim, "meituan", {"shop": MEITUAN_SHOP, "caution": "少\x00辣",
                                    "lines": [{"app_food_code": "NEW1", "food_name": "米\x00饭"}]})
        sim_orders(sim, "eleme", {"shop": ELEME_SHOP, "description": "不要\x00香菜",
                                  "lines": [{"extend_code": "NEW2", "name": "炒\x00饭"}]})

        pulled = [binding_pull(binding_id=shop[platform].pk) for platform in ("meituan", "eleme")]

    assert [(result.created, result.errors) for result in pulled] == [(1, []), (1, [])]
    meituan = Order.objects.get(channel="meituan")
    eleme = Order.objects.get(channel="eleme")
    assert (meituan.customer_note, list(meituan.lines.values_list("name", flat=True))) == ("少辣", ["米饭"])
    assert (eleme.customer_note, list(eleme.lines.values_list("name", flat=True))) == ("不要香菜", ["炒饭"])
    assert (meituan.raw_payload["caution"], eleme.raw_payload["description"]) == ("少辣", "不要香菜")
