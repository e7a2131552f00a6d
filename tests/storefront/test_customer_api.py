from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import StoreMode
from inventory.models import Stock
from inventory.services import stock_ledger_mismatches
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import order_transition
from orders.services.expiry import orders_expire_unpaid
from core.actors import Actor
from tests.factories import CustomerFactory, SkuFactory, StoreFactory, StoreSkuFactory
from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db


def cart(shop, **extra):
    body = {"store": shop["store"].pk, "order_type": "pickup",
            "lines": [{"sku": "RICE", "qty": 2}, {"sku": "TEA", "qty": 1}]}
    body.update(extra)
    return body


def on_hand(shop, name):
    return Stock.objects.get(store=shop["store"], sku=shop[name]).on_hand


def test_login_with_a_one_time_code_gives_a_token(settings, shop):
    settings.CUSTOMER_OTP_DEV_ECHO = True
    from rest_framework.test import APIClient

    client = APIClient()
    sent = client.post("/api/v1/auth/code", {"brand": shop["store"].brand.code, "phone": "13900005678"},
                       format="json")
    assert sent.status_code == 200
    wrong = client.post("/api/v1/auth/token", {"brand": shop["store"].brand.code, "phone": "13900005678",
                                               "code": "000000" if sent.json()["dev_code"] != "000000" else "111111"},
                        format="json")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "login_failed"
    issued = client.post("/api/v1/auth/token", {"brand": shop["store"].brand.code, "phone": "13900005678",
                                                "code": sent.json()["dev_code"]}, format="json")
    assert issued.status_code == 201
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.json()['token']}")
    assert client.get("/api/v1/orders").status_code == 200


def test_no_token_is_401_in_the_error_shape():
    from rest_framework.test import APIClient

    response = APIClient().get("/api/v1/orders")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_menu_shows_prices_availability_and_stock(api, shop):
    Stock.objects.filter(sku=shop["tea"]).update(on_hand=0)
    menu = api.get(f"/api/v1/stores/{shop['store'].pk}/menu").json()
    skus = {s["sku"]: s for c in menu["categories"] for item in c["items"] for s in item["skus"]}
    assert skus["RICE"] == {"sku": "RICE", "spec": "", "price": "12.00", "packaging_fee": "1.00",
                            "available": True, "sold_out": False, "stock": 10}
    assert (skus["TEA"]["available"], skus["TEA"]["sold_out"], skus["TEA"]["stock"]) == (False, True, 0)
    assert (skus["SOUP"]["available"], skus["SOUP"]["stock"]) == (True, None)


def test_menu_of_another_brands_store_is_404(api):
    other = StoreFactory()
    response = api.get(f"/api/v1/stores/{other.pk}/menu")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "store_not_found"


def test_quote_computes_everything_on_the_server(api, shop):
    response = api.post("/api/v1/orders/quote", cart(shop, order_type="delivery", address={"detail": "人民路1号"}),
                        format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["subtotal"] == "33.50"
    assert body["packaging_fee"] == "2.50"
    assert body["delivery_fee"] == "5.00"
    assert body["total"] == "41.00"
    assert [(l["sku"], l["qty"], l["unit_price"], l["subtotal"]) for l in body["lines"]] == [
        ("RICE", 2, "12.00", "24.00"), ("TEA", 1, "9.50", "9.50")]
    assert Order.objects.count() == 0


def test_create_order_takes_on_order_stock_and_expires_in_15_minutes(api, shop):
    response = api.post("/api/v1/orders", cart(shop), format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending_payment"
    assert body["buyer_status"] == "Awaiting payment"
    assert body["amounts"] == {"subtotal": "33.50", "discount": "0.00", "delivery_fee": "0.00",
                               "packaging_fee": "2.50", "total": "36.00", "paid": "0.00",
                               "refunded": "0.00"}
    order = Order.objects.get(order_no=body["order_no"])
    assert order.expires_at - order.placed_at == timedelta(minutes=15)
    assert (on_hand(shop, "rice"), on_hand(shop, "tea")) == (8, 5)  # tea waits for payment
    assert body["allowed_actions"] == ["cancel"]


@pytest.mark.parametrize("order_type", ["pickup", "voucher"])
def test_the_create_answer_is_the_detail_answer_of_the_new_order(api, shop, order_type):
    from django.db import connection

    from tests.factories import PromotionFactory

    PromotionFactory(brand=shop["store"].brand, name="满30减5", tiers=[{"threshold": "30.00", "reduction": "5.00"}],
                     starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() + timedelta(days=30))
    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):  # (the test client's request_started resets connection.queries)
        created = api.post("/api/v1/orders", cart(shop, order_type=order_type), format="json",
                           HTTP_IDEMPOTENCY_KEY=f"answer-{order_type}")
    detail = api.get(f"/api/v1/orders/{created.json()['order_no']}")

    assert created.status_code == 201 and detail.status_code == 200
    assert created.json() == detail.json()
    assert created.json()["amounts"]["discount"] == "5.00"
    assert any("orders_orderline" in sql for sql in statements)
    # A new order has no refunds; its voucher codes (none yet) are read only for a voucher order.
    assert [sql for sql in statements if "payments_paymentrefund" in sql] == []
    assert len([sql for sql in statements if "FROM \"orders_vouchercode\"" in sql]) == (
        1 if order_type == "voucher" else 0)


def test_create_is_idempotent_per_key(api, shop):
    first = api.post("/api/v1/orders", cart(shop), format="json", HTTP_IDEMPOTENCY_KEY="same")
    again = api.post("/api/v1/orders", cart(shop), format="json", HTTP_IDEMPOTENCY_KEY="same")
    other_body = api.post("/api/v1/orders", cart(shop, note="x"), format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert other_body.status_code == 422
    assert other_body.json()["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1
    assert on_hand(shop, "rice") == 8


def test_a_refused_create_with_a_key_stores_the_refusal_and_writes_nothing(api, shop):
    body = cart(shop)
    body["lines"] = [{"sku": "RICE", "qty": 11}]  # 10 on hand

    first = api.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="too-many")
    again = api.post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="too-many")

    assert (first.status_code, first.json()["error"]["code"]) == (409, "out_of_stock")
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 0
    assert on_hand(shop, "rice") == 10


def _on_another_connection(work) -> None:
    """Run ``work`` now on a thread of its own (its own database connection, in
    autocommit), as a concurrent request would, and wait for it."""
    import threading

    from django.db import connection

    def run():
        try:
            work()
        finally:
            connection.close()  # this thread's connection

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=10)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_create_with_a_key_holds_the_stores_day_number_row_for_one_statement_only(shop, customer, monkeypatch):
    """Another placement at the same store can draw its number while this one's
    transaction is still open (the number is drawn in autocommit before it)."""
    from django.db import connection

    import orders.services.cart as cart_services
    from orders.services.creation import business_date_of, day_seq_next

    real_create = cart_services.order_create
    drawn = []

    def create_then_draw_from_elsewhere(**kwargs):
        order = real_create(**kwargs)
        assert connection.in_atomic_block

        def other_placement():
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '500ms'")
            drawn.append(day_seq_next(store_id=shop["store"].pk, business_date=business_date_of(timezone.now())))

        _on_another_connection(other_placement)
        return order

    monkeypatch.setattr(cart_services, "order_create", create_then_draw_from_elsewhere)

    response = client_for(customer).post("/api/v1/orders", cart(shop), format="json", HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 201
    assert (response.json()["day_seq"], drawn) == (1, [2])


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_slow_create_whose_key_a_retry_took_over_rolls_its_order_back(shop, customer, monkeypatch):
    """One key, one order: the original request, still running when a retry took its
    stale reservation over, must not commit an order of its own beside the retry's."""
    import orders.services.cart as cart_services
    from core.models import IdempotencyRecord

    real_create = cart_services.order_create

    def create_then_lose_the_key(**kwargs):
        order = real_create(**kwargs)
        # Meanwhile (after 120 s) a retry claims the reservation, and commits.
        _on_another_connection(lambda: IdempotencyRecord.objects.filter(key="slow").update(
            created_at=timezone.now() + timedelta(seconds=1)))
        return order

    monkeypatch.setattr(cart_services, "order_create", create_then_lose_the_key)

    response = client_for(customer).post("/api/v1/orders", cart(shop), format="json", HTTP_IDEMPOTENCY_KEY="slow")

    assert (response.status_code, response.json()["error"]["code"]) == (409, "idempotency_key_in_progress")
    assert Order.objects.count() == 0
    assert on_hand(shop, "rice") == 10
    assert IdempotencyRecord.objects.get(key="slow").status_code is None  # the retry's to answer


@pytest.mark.parametrize("body_change, code", [
    ({"lines": [{"sku": "NOPE", "qty": 1}]}, "unknown_sku"),
    ({"lines": [{"sku": "RICE", "qty": 0}]}, "invalid_input"),
    ({"lines": [{"sku": "RICE", "qty": -3}]}, "invalid_input"),
    ({"lines": [{"sku": "RICE", "qty": 100000}]}, "invalid_input"),
    ({"lines": [{"sku": "RICE", "qty": "2"}, {"sku": "RICE", "qty": 98}]}, "quantity_too_large"),
    ({"lines": []}, "invalid_input"),
    ({"order_type": "teleport"}, "invalid_input"),
    ({"order_type": "delivery"}, "address_required"),
    ({"lines": [{"sku": "RICE", "qty": 1, "price": "0.01"}]}, "price_fields_not_accepted"),
    ({"total": "1.00"}, "price_fields_not_accepted"),
    ({"discount": "30.00"}, "price_fields_not_accepted"),
])
def test_bad_carts_are_400_and_write_nothing(api, shop, body_change, code):
    response = api.post("/api/v1/orders", cart(shop, **body_change), format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert Order.objects.count() == 0
    assert (on_hand(shop, "rice"), on_hand(shop, "tea")) == (10, 5)


def test_malformed_json_is_400(api, shop):
    response = api.generic("POST", "/api/v1/orders", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"
    assert Order.objects.count() == 0


def test_sku_of_another_store_and_unavailable_sku_are_refused(api, shop):
    other_store = StoreFactory(brand=shop["store"].brand)
    elsewhere = SkuFactory(brand=shop["store"].brand, code="ONLYTHERE")
    StoreSkuFactory(store=other_store, sku=elsewhere)
    response = api.post("/api/v1/orders", cart(shop, lines=[{"sku": "ONLYTHERE", "qty": 1}]), format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "unknown_sku")

    shop["soup"].store_skus.update(is_available=False)
    response = api.post("/api/v1/orders", cart(shop, lines=[{"sku": "SOUP", "qty": 1}]), format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "sku_unavailable")
    assert Order.objects.count() == 0


def test_on_order_stock_shortage_is_409_out_of_stock(api, shop):
    response = api.post("/api/v1/orders", cart(shop, lines=[{"sku": "RICE", "qty": 11}]), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "out_of_stock"
    assert Order.objects.count() == 0
    assert on_hand(shop, "rice") == 10


def test_paused_store_refuses_new_orders(api, shop):
    shop["store"].mode = StoreMode.PAUSED
    shop["store"].save()
    response = api.post("/api/v1/orders", cart(shop), format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "store_not_accepting_orders"


def test_customer_sees_only_their_own_orders(api, shop):
    created = api.post("/api/v1/orders", cart(shop), format="json").json()
    stranger = client_for(CustomerFactory(brand=shop["store"].brand))

    assert stranger.get(f"/api/v1/orders/{created['order_no']}").status_code == 404
    assert stranger.post(f"/api/v1/orders/{created['order_no']}/cancel", {}, format="json").status_code == 404
    assert stranger.get("/api/v1/orders").json()["count"] == 0
    assert api.get("/api/v1/orders").json()["count"] == 1


def test_cancel_gives_stock_back(api, shop):
    created = api.post("/api/v1/orders", cart(shop), format="json").json()
    response = api.post(f"/api/v1/orders/{created['order_no']}/cancel", {"reason": "点错了"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert on_hand(shop, "rice") == 10
    again = api.post(f"/api/v1/orders/{created['order_no']}/cancel", {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["detail"]["status"] == "cancelled"
    assert on_hand(shop, "rice") == 10
    assert stock_ledger_mismatches() == []


def test_contact_change_until_dispatched(api, shop):
    body = cart(shop, order_type="delivery", address={"detail": "人民路1号"})
    created = api.post("/api/v1/orders", body, format="json").json()
    changed = api.patch(f"/api/v1/orders/{created['order_no']}/contact",
                        {"contact_phone": "13912345678", "address": {"detail": "人民路2号"}}, format="json")
    assert changed.status_code == 200
    assert changed.json()["address"] == {"detail": "人民路2号"}
    order = Order.objects.get(order_no=created["order_no"])
    assert order.phone_last4 == "5678"
    assert OrderEvent.objects.filter(order=order, action="modify").count() == 1

    for action, kind in (("pay", "payment"), ("accept", "pos"), ("dispatch", "pos")):
        order_transition(order_id=order.pk, action=action, actor=Actor(kind=kind))
    late = api.patch(f"/api/v1/orders/{created['order_no']}/contact", {"contact_phone": "13900000000"},
                     format="json")
    assert late.status_code == 409
    assert late.json()["error"]["detail"]["status"] == "dispatched"


def test_expiry_cancels_unpaid_orders_and_returns_stock(api, shop):
    created = api.post("/api/v1/orders", cart(shop), format="json").json()
    assert on_hand(shop, "rice") == 8

    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=14)) == 0
    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=16)) == 1
    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=17)) == 0

    order = Order.objects.get(order_no=created["order_no"])
    assert (order.status, order.cancel_reason_code) == (OrderStatus.CANCELLED, "payment_timeout")
    assert on_hand(shop, "rice") == 10
    assert stock_ledger_mismatches() == []


def _refunded(order_no, store, *, amount="36.00"):
    from payments.models import PaymentRefund, PaymentTransaction

    payment = PaymentTransaction.objects.create(
        provider="wxpay", out_trade_no=f"T{order_no}", order_ref=order_no, brand=store.brand, store=store,
        description="test", amount=Decimal(amount), amount_fen=int(Decimal(amount) * 100), status="refunded",
        transaction_id=f"WX{order_no}", paid_at=timezone.now())
    return PaymentRefund.objects.create(
        transaction=payment, refund_ref="cancel", out_refund_no=f"R{order_no}", amount=Decimal(amount),
        amount_fen=int(Decimal(amount) * 100), reason="order_cancelled", status="succeeded", refund_id="RF1")


def test_order_shows_its_provider_refunds(api, shop):
    created = api.post("/api/v1/orders", cart(shop), format="json").json()
    assert created["refunds"] == []
    _refunded(created["order_no"], shop["store"])

    refunds = api.get(f"/api/v1/orders/{created['order_no']}").json()["refunds"]

    assert [(r["refund_no"], r["amount"], r["reason"], r["status"]) for r in refunds] == [
        (f"R{created['order_no']}", "36.00", "order_cancelled", "succeeded")]


def test_order_list_with_refunds_keeps_a_constant_number_of_queries(api, shop, django_assert_num_queries):
    soup = cart(shop, lines=[{"sku": "SOUP", "qty": 1}])  # untracked: stock never runs out here
    # token, count, orders, lines, discounts, after-sales requests, voucher codes, refunds: the same
    # for 2 orders and for 6
    list_queries = 8
    for _ in range(2):
        _refunded(api.post("/api/v1/orders", soup, format="json").json()["order_no"], shop["store"])
    with django_assert_num_queries(list_queries):
        assert len(api.get("/api/v1/orders").json()["results"]) == 2
    for _ in range(4):
        _refunded(api.post("/api/v1/orders", soup, format="json").json()["order_no"], shop["store"])
    with django_assert_num_queries(list_queries):
        body = api.get("/api/v1/orders").json()
    assert len(body["results"]) == 6
    assert all(len(order["refunds"]) == 1 for order in body["results"])
