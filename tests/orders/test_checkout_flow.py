"""Own-channel ordering end to end: promotions, coupons, stock modes, payment
over real HTTP through the project's simulator, expiry and the races between them."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests
from django.db import connection
from django.utils import timezone

from catalog.models import StockDeductionMode
from core.actors import Actor
from inventory.models import Stock
from inventory.services import stock_ledger_mismatches, stock_set
from orders.models import Order, OrderEvent, OrderStatus
from orders.services import order_transition
from orders.services.cart import Cart, CartItem
from orders.services.checkout import order_place
from orders.services.expiry import orders_expire_unpaid
from orders.services.payment import order_payment_confirm
from orders.tasks import reconcile_payments_task
from payments.models import PaymentRefund, PaymentTransaction
from promotions.models import Coupon
from simulator.testing import running_simulator
from tests.factories import (
    CouponFactory,
    CouponTemplateFactory,
    CustomerFactory,
    PromotionFactory,
    SkuFactory,
    StoreFactory,
    StoreSkuFactory,
)
from tests.orders.conftest import client_for
from tests.channels.sim_helpers import threads_run, wait_for

API_KEY = "flow-test-key"
MCHID = "1900000077"
D = Decimal


def _far(years: int = 5):
    return timezone.now() + timedelta(days=365 * years)


def on_hand(store, sku) -> int:
    return Stock.objects.get(store=store, sku=sku).on_hand


# --- promotions and coupons in an order --------------------------------------------
@pytest.mark.django_db
def test_order_applies_full_reduction_and_coupon_and_apportions_to_lines(shop, customer):
    store = shop["store"]
    PromotionFactory(brand=store.brand, name="满30减5", tiers=[{"threshold": "30.00", "reduction": "5.00"}],
                     starts_at=timezone.now() - timedelta(days=1), ends_at=_far())
    template = CouponTemplateFactory(brand=store.brand, value=D("3.00"))
    coupon = CouponFactory(template=template, customer=customer, code="SAVE3",
                           valid_from=timezone.now() - timedelta(days=1), valid_until=_far())
    api = client_for(customer)

    response = api.post("/api/v1/orders", {"store": store.pk, "order_type": "pickup",
                                           "lines": [{"sku": "RICE", "qty": 2}, {"sku": "TEA", "qty": 1}],
                                           "coupon_codes": ["SAVE3"]}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["amounts"]["subtotal"] == "33.50"
    assert body["amounts"]["discount"] == "8.00"
    assert body["amounts"]["total"] == "28.00"  # 33.50 - 8.00 + packaging 2.50
    line_discounts = [D(line["discount"]) for line in body["lines"]]
    assert sum(line_discounts) == D("8.00")
    assert all(line["line_total"] == f"{D(line['unit_price']) * line['quantity'] - D(line['discount']):.2f}"
               for line in body["lines"])
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_ref) == ("reserved", body["order_no"])

    # cancelling releases the coupon again
    api.post(f"/api/v1/orders/{body['order_no']}/cancel", {}, format="json")
    coupon.refresh_from_db()
    assert coupon.status == "available"


@pytest.mark.django_db
def test_used_coupon_is_refused_with_its_reason_code(shop, customer):
    template = CouponTemplateFactory(brand=shop["store"].brand, value=D("3.00"))
    CouponFactory(template=template, customer=customer, code="USED1", status="used", order_ref="OLDORDER",
                  valid_from=timezone.now() - timedelta(days=1), valid_until=_far())
    response = client_for(customer).post(
        "/api/v1/orders", {"store": shop["store"].pk, "order_type": "pickup", "lines": [{"sku": "RICE", "qty": 1}],
                           "coupon_codes": ["USED1"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "coupon_used"
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_flash_sale_forces_deduction_on_order_and_limits_per_customer(shop, customer):
    store, tea = shop["store"], shop["tea"]  # tea is on-payment normally
    PromotionFactory(brand=store.brand, kind="flash_sale", name="奶茶秒杀", tiers=[], flash_price=D("1.00"),
                     purchase_limit=2, target_skus=[tea], starts_at=timezone.now() - timedelta(days=1),
                     ends_at=_far())
    cart = Cart(store_id=store.pk, order_type="pickup", items=(CartItem("TEA", 2),))

    order = order_place(customer=customer, cart=cart, channel="miniapp")

    assert order.subtotal == D("19.00")
    assert order.discount_total == D("17.00")
    assert on_hand(store, tea) == 3  # taken at order time because of the flash sale
    second = order_place(customer=customer, cart=Cart(store_id=store.pk, order_type="pickup",
                                                      items=(CartItem("TEA", 1),)), channel="miniapp")
    assert second.discount_total == D("0.00")  # limit of 2 reached: normal price
    assert stock_ledger_mismatches() == []


# --- payment over real HTTP -------------------------------------------------------
@pytest.fixture
def wxpay(settings, live_server):
    with running_simulator(wxpay_api_key=API_KEY, wxpay_mchid=MCHID, notify_backoff=(0.05, 0.1, 0.2),
                           notify_max_attempts=30, notify_timeout=3.0, refund_delay=0.05) as sim:
        settings.PAYMENT_PROVIDERS = {"wxpay": {
            "base_url": sim.base_url, "appid": "wxflowtest", "mchid": MCHID, "api_key": API_KEY,
            "notify_url": f"{live_server.url}/api/v1/payments/notify/wxpay", "timeout": 3.0, "retries": 1}}
        yield sim


def sim_pay(sim, out_trade_no: str, **options) -> None:
    response = requests.post(f"{sim.base_url}/_sim/wxpay/pay", json={"out_trade_no": out_trade_no, **options},
                             timeout=5)
    assert response.status_code == 200, response.text


def _place_and_start_payment(shop, customer):
    api = client_for(customer)
    created = api.post("/api/v1/orders", {"store": shop["store"].pk, "order_type": "pickup",
                                          "lines": [{"sku": "RICE", "qty": 2}, {"sku": "TEA", "qty": 1}]},
                       format="json").json()
    started = api.post(f"/api/v1/orders/{created['order_no']}/pay", {"provider": "wxpay"}, format="json")
    assert started.status_code == 200, started.json()
    return created["order_no"], started.json()


@pytest.mark.django_db(transaction=True)
def test_payment_notify_marks_paid_takes_on_payment_stock_and_replays_change_nothing(wxpay, shop, customer):
    order_no, started = _place_and_start_payment(shop, customer)
    assert started["params"]["package"].startswith("prepay_id=")
    assert started["amount"] == "36.00"

    sim_pay(wxpay, started["out_trade_no"], times=2)  # the provider delivers the notify twice

    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == OrderStatus.PAID)
    time.sleep(0.5)  # let the replay arrive
    order = Order.objects.get(order_no=order_no)
    assert (order.paid_amount, order.payment_provider) == (D("36.00"), "wxpay")
    assert OrderEvent.objects.filter(order=order, action="pay").count() == 1
    assert (on_hand(shop["store"], shop["rice"]), on_hand(shop["store"], shop["tea"])) == (8, 4)
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_lost_notify_is_recovered_by_the_reconciliation_job(wxpay, shop, customer):
    order_no, started = _place_and_start_payment(shop, customer)
    sim_pay(wxpay, started["out_trade_no"], notify=False)
    PaymentTransaction.objects.filter(out_trade_no=started["out_trade_no"]).update(
        created_at=timezone.now() - timedelta(minutes=5))

    assert reconcile_payments_task.apply().get() == 1

    assert Order.objects.get(order_no=order_no).status == OrderStatus.PAID
    assert reconcile_payments_task.apply().get() == 0


@pytest.mark.django_db(transaction=True)
def test_payment_arriving_after_expiry_is_refunded(wxpay, shop, customer):
    order_no, started = _place_and_start_payment(shop, customer)
    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=16)) == 1

    sim_pay(wxpay, started["out_trade_no"])

    assert wait_for(lambda: PaymentRefund.objects.filter(transaction__out_trade_no=started["out_trade_no"]).exists())
    order = Order.objects.get(order_no=order_no)
    assert order.status == OrderStatus.CANCELLED
    refund = PaymentRefund.objects.get(transaction__out_trade_no=started["out_trade_no"])
    assert (refund.amount, refund.reason) == (D("36.00"), "order_cancelled_before_payment")
    assert on_hand(shop["store"], shop["rice"]) == 10
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_on_payment_stock_gone_at_notify_time_cancels_and_refunds_with_a_reason(wxpay, shop, customer):
    order_no, started = _place_and_start_payment(shop, customer)
    stock_set(store_id=shop["store"].pk, sku_id=shop["tea"].pk, on_hand=0, note="walk-in rush")

    sim_pay(wxpay, started["out_trade_no"])

    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == OrderStatus.CANCELLED)
    order = Order.objects.get(order_no=order_no)
    assert order.cancel_reason_code == "out_of_stock_at_payment"
    assert wait_for(lambda: PaymentRefund.objects.filter(transaction__out_trade_no=started["out_trade_no"]).exists())
    assert on_hand(shop["store"], shop["rice"]) == 10  # on-order stock went back
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_pay_refuses_when_on_payment_stock_is_already_gone(shop, customer):
    api = client_for(customer)
    created = api.post("/api/v1/orders", {"store": shop["store"].pk, "order_type": "pickup",
                                          "lines": [{"sku": "TEA", "qty": 2}]}, format="json").json()
    Stock.objects.filter(sku=shop["tea"]).update(on_hand=1)
    response = api.post(f"/api/v1/orders/{created['order_no']}/pay", {"provider": "wxpay"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "out_of_stock"
    assert PaymentTransaction.objects.count() == 0


# --- PostgreSQL concurrency ---------------------------------------------------------
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_no_oversell_when_many_customers_order_the_last_units():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, code="HOT", price=D("9.90"), stock_mode=StockDeductionMode.ON_ORDER)
    StoreSkuFactory(store=store, sku=sku)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=6)
    customers = [CustomerFactory(brand=store.brand) for _ in range(16)]
    cart = Cart(store_id=store.pk, order_type="pickup", items=(CartItem("HOT", 1),))

    results, errors = threads_run(16, lambda i: order_place(customer=customers[i], cart=cart, channel="miniapp"))

    assert len(results) == 6
    # Refused at the deduction (out_of_stock) or, arriving after the last unit went,
    # already at the price check (sku_unavailable: sold out).
    assert len(errors) == 10 and {getattr(e, "code", None) for e in errors} <= {"out_of_stock", "sku_unavailable"}
    assert on_hand(store, sku) == 0
    assert Order.objects.count() == 6
    assert stock_ledger_mismatches() == []
    # Day numbers are drawn before each placement's transaction: unique, never
    # reused; the 10 refused placements left gaps among the 16 numbers drawn.
    numbers = sorted(Order.objects.values_list("day_seq", flat=True))
    assert len(set(numbers)) == 6 and set(numbers) <= set(range(1, 17))


@pytest.mark.django_db(transaction=True)
def test_a_refused_placement_leaves_a_gap_in_the_day_numbers_and_changes_nothing_else():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, code="LAST", price=D("9.90"), stock_mode=StockDeductionMode.ON_ORDER)
    StoreSkuFactory(store=store, sku=sku)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=1)
    customer = CustomerFactory(brand=store.brand)
    first = order_place(customer=customer, cart=Cart(store_id=store.pk, order_type="pickup",
                                                     items=(CartItem("LAST", 1),)), channel="miniapp")
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=1)
    with pytest.raises(Exception) as refused:
        order_place(customer=customer, cart=Cart(store_id=store.pk, order_type="pickup",
                                                 items=(CartItem("LAST", 2),)), channel="miniapp")
    assert refused.value.code == "out_of_stock"
    second = order_place(customer=customer, cart=Cart(store_id=store.pk, order_type="pickup",
                                                      items=(CartItem("LAST", 1),)), channel="miniapp")

    assert (first.day_seq, second.day_seq) == (1, 3)
    assert second.order_no.endswith("00003")
    assert Order.objects.count() == 2
    assert on_hand(store, sku) == 0
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_multi_line_orders_in_opposite_orders_do_not_deadlock():
    store = StoreFactory()
    skus = [SkuFactory(brand=store.brand, code=f"M{i}", stock_mode=StockDeductionMode.ON_ORDER) for i in range(3)]
    for sku in skus:
        StoreSkuFactory(store=store, sku=sku)
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=500)
    customers = [CustomerFactory(brand=store.brand) for _ in range(10)]

    def place(i):
        codes = [s.code for s in (skus if i % 2 else reversed(skus))]
        for _ in range(5):
            order_place(customer=customers[i], cart=Cart(store_id=store.pk, order_type="pickup",
                                                         items=tuple(CartItem(c, 1) for c in codes)),
                        channel="miniapp")
        return i

    results, errors = threads_run(10, place)

    assert errors == []
    assert [on_hand(store, s) for s in skus] == [450, 450, 450]
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_one_coupon_used_by_concurrent_orders_goes_to_exactly_one():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, code="C1", price=D("20.00"))
    StoreSkuFactory(store=store, sku=sku)
    customer = CustomerFactory(brand=store.brand)
    CouponFactory(template=CouponTemplateFactory(brand=store.brand, value=D("5.00")), customer=customer,
                  code="ONLYONE", valid_from=timezone.now() - timedelta(days=1), valid_until=_far())
    cart = Cart(store_id=store.pk, order_type="pickup", items=(CartItem("C1", 1),), coupon_codes=("ONLYONE",))

    results, errors = threads_run(8, lambda i: order_place(customer=customer, cart=cart, channel="miniapp"))

    assert len(results) == 1
    assert len(errors) == 7
    assert Coupon.objects.get(code="ONLYONE").order_ref == results[0].order_no
    assert Order.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_payment_racing_the_expiry_job_ends_consistent():
    for _round in range(8):
        store = StoreFactory()
        sku = SkuFactory(brand=store.brand, price=D("10.00"), stock_mode=StockDeductionMode.ON_ORDER)
        StoreSkuFactory(store=store, sku=sku)
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=5)
        customer = CustomerFactory(brand=store.brand)
        order = order_place(customer=customer, cart=Cart(store_id=store.pk, order_type="pickup",
                                                         items=(CartItem(sku.code, 1),)), channel="miniapp")
        later = timezone.now() + timedelta(minutes=20)

        def move(i):
            if i == 0:
                return orders_expire_unpaid(now=later)
            return order_payment_confirm(order_no=order.order_no, provider="wxpay", transaction_id=f"T{order.pk}",
                                         amount=order.total).outcome

        results, errors = threads_run(2, move)

        assert errors == []
        final = Order.objects.get(pk=order.pk)
        outcome = next(r for r in results if isinstance(r, str))
        if outcome == "paid":
            assert final.status == OrderStatus.PAID
            assert on_hand(store, sku) == 4
        else:
            assert outcome == "refund_cancelled"
            assert final.status == OrderStatus.CANCELLED
            assert on_hand(store, sku) == 5
            assert OrderEvent.objects.filter(order=final, action="payment_refund").count() == 1
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_expiry_runs_at_once_cancel_each_order_once():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand, stock_mode=StockDeductionMode.ON_ORDER)
    StoreSkuFactory(store=store, sku=sku)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=100)
    customer = CustomerFactory(brand=store.brand)
    for _ in range(30):
        order_place(customer=customer, cart=Cart(store_id=store.pk, order_type="pickup",
                                                 items=(CartItem(sku.code, 2),)), channel="miniapp")
    assert on_hand(store, sku) == 40

    later = timezone.now() + timedelta(minutes=20)
    results, errors = threads_run(2, lambda i: orders_expire_unpaid(now=later, batch_size=7))

    assert errors == []
    assert sum(results) == 30
    assert Order.objects.filter(status=OrderStatus.CANCELLED).count() == 30
    assert OrderEvent.objects.filter(action="cancel").count() == 30
    assert on_hand(store, sku) == 100
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_stock_is_conserved_through_create_pay_cancel_and_expire(shop, customer):
    store, rice, tea = shop["store"], shop["rice"], shop["tea"]
    cart = Cart(store_id=store.pk, order_type="pickup", items=(CartItem("RICE", 1), CartItem("TEA", 1)))
    paid = order_place(customer=customer, cart=cart, channel="miniapp")
    order_payment_confirm(order_no=paid.order_no, provider="wxpay", transaction_id="TX1", amount=paid.total)
    cancelled = order_place(customer=customer, cart=cart, channel="miniapp")
    order_transition(order_id=cancelled.pk, action="cancel", actor=Actor(kind="customer", id=str(customer.pk)))
    expired = order_place(customer=customer, cart=cart, channel="miniapp")
    orders_expire_unpaid(now=timezone.now() + timedelta(minutes=30))

    assert Order.objects.get(pk=paid.pk).status == OrderStatus.PAID
    assert Order.objects.get(pk=expired.pk).status == OrderStatus.CANCELLED
    assert (on_hand(store, rice), on_hand(store, tea)) == (9, 4)
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_refund_that_could_not_start_is_retried_by_the_owed_refunds_job(wxpay, shop, customer):
    from orders.tasks import retry_owed_refunds_task

    order_no, started = _place_and_start_payment(shop, customer)
    sim_pay(wxpay, started["out_trade_no"])
    assert wait_for(lambda: Order.objects.get(order_no=order_no).status == OrderStatus.PAID)
    # the client tries twice (retries=1): both refund calls of the cancel fail
    requests.post(f"{wxpay.base_url}/_sim/faults", json={"path_prefix": "/v3/refund", "mode": "error500",
                                                         "count": 2}, timeout=5)

    cancelled = client_for(customer).post(f"/api/v1/orders/{order_no}/cancel", {"reason": "不要了"}, format="json")

    assert cancelled.status_code == 200  # the cancel stands even though the provider failed
    assert not PaymentRefund.objects.exclude(refund_id="").exists()
    retry_owed_refunds_task.apply().get()
    refund = PaymentRefund.objects.get(transaction__order_ref=order_no)
    assert refund.refund_id != ""
    assert (refund.amount, refund.reason) == (D("36.00"), "customer_cancelled")


# --- paying with an Idempotency-Key: the provider call is outside any transaction -----
def _place(shop, customer) -> str:
    created = client_for(customer).post("/api/v1/orders", {"store": shop["store"].pk, "order_type": "pickup",
                                                           "lines": [{"sku": "RICE", "qty": 1}]}, format="json")
    assert created.status_code == 201, created.json()
    return created.json()["order_no"]


@pytest.mark.django_db(transaction=True)
def test_pay_with_a_key_calls_the_provider_outside_a_transaction_and_replays_the_answer(
        wxpay, shop, customer, monkeypatch):
    from payments.provider import WxPayClient

    seen = []
    original = WxPayClient.prepay_create

    def spy(self, **kwargs):
        seen.append((connection.in_atomic_block, PaymentTransaction.objects.filter(
            out_trade_no=kwargs["out_trade_no"]).exists()))
        return original(self, **kwargs)

    monkeypatch.setattr(WxPayClient, "prepay_create", spy)
    order_no = _place(shop, customer)
    api = client_for(customer)

    first = api.post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="pay-1")
    again = api.post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json",
                     HTTP_IDEMPOTENCY_KEY="pay-1")

    assert first.status_code == 200, first.json()
    assert seen == [(False, True)]  # no transaction open; the payment row already committed
    assert again.status_code == 200 and again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert PaymentTransaction.objects.filter(order_ref=order_no).count() == 1


@pytest.mark.django_db(transaction=True)
def test_pay_key_still_in_progress_is_409_and_a_stale_one_is_taken_over(wxpay, shop, customer):
    from core.idempotency import request_fingerprint
    from core.models import IdempotencyRecord

    order_no = _place(shop, customer)
    path = f"/api/v1/orders/{order_no}/pay"
    body = b'{"provider":"wxpay"}'
    IdempotencyRecord.objects.create(credential=f"customer:{customer.pk}", key="pay-2",
                                     fingerprint=request_fingerprint(method="POST", path=path, body=body))
    api = client_for(customer)

    busy = api.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="pay-2")
    assert busy.status_code == 409
    assert busy.json()["error"] == {"code": "idempotency_key_in_progress", "message": busy.json()["error"]["message"],
                                    "detail": {"key": "pay-2"}}
    assert PaymentTransaction.objects.filter(order_ref=order_no).count() == 0

    IdempotencyRecord.objects.filter(key="pay-2").update(created_at=timezone.now() - timedelta(seconds=121))
    taken = api.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="pay-2")
    assert taken.status_code == 200, taken.json()
    assert IdempotencyRecord.objects.get(key="pay-2").status_code == 200
    assert PaymentTransaction.objects.filter(order_ref=order_no).count() == 1


@pytest.mark.django_db(transaction=True)
def test_pay_key_whose_provider_call_failed_is_not_kept_so_the_retry_runs(wxpay, shop, customer):
    from core.models import IdempotencyRecord

    order_no = _place(shop, customer)
    requests.post(f"{wxpay.base_url}/_sim/faults", json={"path_prefix": "/v3/pay/transactions/jsapi",
                                                          "mode": "error500", "count": 2}, timeout=5).raise_for_status()
    api = client_for(customer)

    failed = api.post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json",
                      HTTP_IDEMPOTENCY_KEY="pay-3")
    assert (failed.status_code, failed.json()["error"]["code"]) == (502, "payment_provider_error"), failed.content
    assert not IdempotencyRecord.objects.filter(key="pay-3").exists()

    retried = api.post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json",
                       HTTP_IDEMPOTENCY_KEY="pay-3")
    assert retried.status_code == 200, retried.json()
    assert "Idempotent-Replayed" not in retried
    assert IdempotencyRecord.objects.get(key="pay-3").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_money_taken_after_expiry_with_its_notify_lost_is_found_and_refunded(wxpay, shop, customer):
    order_no, started = _place_and_start_payment(shop, customer)
    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=16)) == 1
    assert PaymentTransaction.objects.get(order_ref=order_no).status == "closed"

    sim_pay(wxpay, started["out_trade_no"], notify=False)  # paid at the provider; the notify is lost

    assert reconcile_payments_task.apply().get() == 1
    payment = PaymentTransaction.objects.get(order_ref=order_no)
    assert payment.transaction_id != ""
    assert payment.paid_at is not None
    assert Order.objects.get(order_no=order_no).status == OrderStatus.CANCELLED
    refund = PaymentRefund.objects.get(transaction=payment)
    assert (refund.amount, refund.reason) == (D("36.00"), "order_cancelled_before_payment")
    assert reconcile_payments_task.apply().get() == 0
    assert on_hand(shop["store"], shop["rice"]) == 10


@pytest.mark.django_db(transaction=True)
def test_a_closed_unpaid_payment_is_asked_about_at_most_every_15_minutes(wxpay, shop, customer):
    order_no, started = _place_and_start_payment(shop, customer)
    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=16)) == 1

    def queries() -> int:
        calls = requests.get(f"{wxpay.base_url}/_sim/calls", params={"path_prefix": "/v3/pay/transactions/out-trade-no"},
                             timeout=5).json()["calls"]
        return len(calls)

    assert reconcile_payments_task.apply().get() == 0
    assert reconcile_payments_task.apply().get() == 0
    assert queries() == 1
    PaymentTransaction.objects.filter(order_ref=order_no).update(checked_at=timezone.now() - timedelta(minutes=16))
    assert reconcile_payments_task.apply().get() == 0
    assert queries() == 2


@pytest.mark.django_db(transaction=True)
def test_a_payment_the_provider_cannot_answer_for_does_not_stop_the_reconciliation(wxpay, shop, customer, caplog):
    order_no, started = _place_and_start_payment(shop, customer)
    assert orders_expire_unpaid(now=timezone.now() + timedelta(minutes=16)) == 1
    sim_pay(wxpay, started["out_trade_no"], notify=False)
    # An older open payment whose query the provider keeps failing (HTTP 500).
    PaymentTransaction.objects.create(
        provider="wxpay", out_trade_no="UNKNOWN-AT-PROVIDER", order_ref="no-such-order", brand=shop["store"].brand,
        description="ghost", amount=D("1.00"), amount_fen=100, prepay_id="",
    )
    PaymentTransaction.objects.filter(out_trade_no="UNKNOWN-AT-PROVIDER").update(
        created_at=timezone.now() - timedelta(hours=1))
    requests.post(f"{wxpay.base_url}/_sim/faults", json={
        "path_prefix": "/v3/pay/transactions/out-trade-no/UNKNOWN-AT-PROVIDER", "mode": "error500", "count": 10,
    }, timeout=5).raise_for_status()

    with caplog.at_level("ERROR", logger="orders.tasks"):
        assert reconcile_payments_task.apply().get() == 1

    failures = [r for r in caplog.records if r.getMessage() == "payment reconciliation failed"]
    assert [r.out_trade_no for r in failures] == ["UNKNOWN-AT-PROVIDER"]
    refund = PaymentRefund.objects.get(transaction__order_ref=order_no)
    assert (refund.amount, refund.reason) == (D("36.00"), "order_cancelled_before_payment")
    ghost = PaymentTransaction.objects.get(out_trade_no="UNKNOWN-AT-PROVIDER")
    assert (ghost.status, ghost.checked_at is not None) == ("created", True)


@pytest.mark.django_db(transaction=True)
def test_a_slow_pay_request_whose_key_was_taken_over_leaves_the_answer_to_the_retry(
        wxpay, shop, customer, monkeypatch):
    from core.models import IdempotencyRecord
    from payments.provider import WxPayClient

    original = WxPayClient.prepay_create
    claimed_by_retry = timezone.now() + timedelta(seconds=1)

    def slow(self, **kwargs):
        # While this request waits on the provider, a retry takes the stale key over.
        IdempotencyRecord.objects.filter(key="pay-slow").update(created_at=claimed_by_retry)
        return original(self, **kwargs)

    monkeypatch.setattr(WxPayClient, "prepay_create", slow)
    order_no = _place(shop, customer)

    response = client_for(customer).post(f"/api/v1/orders/{order_no}/pay", {"provider": "wxpay"}, format="json",
                                         HTTP_IDEMPOTENCY_KEY="pay-slow")

    assert response.status_code == 200
    record = IdempotencyRecord.objects.get(key="pay-slow")
    assert (record.status_code, record.created_at) == (None, claimed_by_retry)  # the retry's to answer
