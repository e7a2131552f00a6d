"""Batched placement (orders.services.placement): same prices, same checks and
same refusals as one placement at a time, written a batch per transaction."""

import threading
import time
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import OperationalError, connection, transaction
from django.utils import timezone, translation

from catalog.models import StockDeductionMode
from inventory.models import Stock, StockMovement
from inventory.services import stock_ledger_mismatches, stock_set
from orders.models import Order, OrderEvent
from orders.services import expiry, placement
from orders.services.cart import Cart, CartItem, order_place_one
from orders.services.checkout import order_place
from orders.services.expiry import orders_expire_unpaid
from orders.services.placement import PlacementRequest, orders_place_batch
from promotions.models import FlashSaleReservation, FlashSaleUsage
from tests.factories import (
    CouponFactory,
    CouponTemplateFactory,
    CustomerFactory,
    MemberTierFactory,
    PromotionFactory,
    SkuFactory,
    StoreFactory,
    StoreSkuFactory,
)


def _far():
    return timezone.now() + timedelta(days=365 * 5)


def _on_hand(store, sku) -> int:
    return Stock.objects.get(store=store, sku=sku).on_hand


def _requests(customers, cart, **kwargs):
    return [PlacementRequest(customer=c, cart=cart, channel="miniapp", now=timezone.now(), **kwargs)
            for c in customers]


def _pickup(store, *items, **kwargs):
    return Cart(store_id=store.pk, order_type="pickup", items=tuple(CartItem(code, qty) for code, qty in items),
                **kwargs)


def _snapshot(order: Order) -> dict:
    """Everything a placement decides, without what differs per order (number, customer, ids)."""
    return {
        "amounts": (order.subtotal, order.discount_total, order.merchant_discount, order.packaging_fee,
                    order.delivery_fee, order.total, order.status, order.channel, order.order_type),
        "expires_after": order.expires_at - order.placed_at,
        "lines": [(line.line_no, line.sku_code, line.name, line.unit_price, line.quantity, line.discount,
                   line.line_total, line.packaging_fee, line.stock_mode) for line in order.lines.order_by("line_no")],
        "discounts": sorted((d.kind, d.reference, d.amount) for d in order.discounts.all()),
        "events": [(e.action, e.from_status, e.to_status, e.actor_kind) for e in order.events.all()],
        "pricing": order.raw_payload["pricing"],
        "ledger": sorted(StockMovement.objects.filter(reference=order.order_no).values_list("stock__sku__code", "delta")),
        "flash": sorted(FlashSaleReservation.objects.filter(order_ref=order.order_no)
                        .values_list("promotion_id", "quantity")),
    }


@pytest.fixture
def sizes(monkeypatch):
    """The sizes of the batches written; the first one is slowed down so that the
    placements arriving meanwhile queue and go together as the next batch."""
    written = []
    real_batch = placement.orders_place_batch

    def slow_first_batch(requests):
        written.append(len(requests))
        if len(written) == 1:
            time.sleep(0.3)
        real_batch(requests)

    monkeypatch.setattr(placement, "orders_place_batch", slow_first_batch)
    return written


def _run_all(threads, *, timeout):
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)


@pytest.fixture
def store():
    return StoreFactory(delivery_fee="5.00")


@pytest.fixture
def menu(store):
    rice = SkuFactory(brand=store.brand, code="RICE", price="12.00", packaging_fee="1.00",
                      stock_mode=StockDeductionMode.ON_ORDER)
    tea = SkuFactory(brand=store.brand, code="TEA", price="9.50", packaging_fee="0.50",
                     stock_mode=StockDeductionMode.ON_PAYMENT)
    soup = SkuFactory(brand=store.brand, code="SOUP", price="6.00")
    for sku in (rice, tea, soup):
        StoreSkuFactory(store=store, sku=sku)
    stock_set(store_id=store.pk, sku_id=rice.pk, on_hand=50)
    stock_set(store_id=store.pk, sku_id=tea.pk, on_hand=50)
    return {"rice": rice, "tea": tea, "soup": soup}


@pytest.mark.django_db
def test_a_batch_writes_each_order_exactly_as_a_single_placement_would(store, menu):
    gold = MemberTierFactory(brand=store.brand, price_rate=D("0.950"))
    PromotionFactory(brand=store.brand, name="满30减5", tiers=[{"threshold": "30.00", "reduction": "5.00"}],
                     starts_at=timezone.now() - timedelta(days=1), ends_at=_far())
    flash = PromotionFactory(brand=store.brand, kind="flash_sale", name="奶茶秒杀", tiers=[], flash_price=D("1.00"),
                             purchase_limit=2, target_skus=[menu["tea"]],
                             starts_at=timezone.now() - timedelta(days=1), ends_at=_far())
    cart = _pickup(store, ("RICE", 2), ("TEA", 1), ("SOUP", 1))
    alone, *together = [CustomerFactory(brand=store.brand, tier=gold) for _ in range(4)]
    single = order_place_one(customer=alone, cart=cart, channel="miniapp", now=timezone.now())
    requests = _requests(together, cart)

    orders_place_batch(requests)

    assert [r.error for r in requests] == [None, None, None]
    expected = _snapshot(single)
    # flash sale 8.50 (tea at 1.00), 满30减5 on 31.00, member 5% of 26.00 = 1.30; packaging 2.00 + 0.50 + 1.00
    assert expected["amounts"][:6] == (D("39.50"), D("14.80"), D("14.80"), D("3.50"), D("0.00"), D("28.20"))
    assert [line[5] for line in expected["lines"]] == [D("4.88"), D("8.70"), D("1.22")]
    assert expected["flash"] == [(flash.pk, 1)]
    assert expected["ledger"] == [("RICE", -2), ("TEA", -1)]  # the flash sale takes tea at order time
    for request in requests:
        assert _snapshot(request.order) == expected
        assert request.order.customer_id == request.customer.pk
    assert [r.order.day_seq for r in requests] == [2, 3, 4]
    assert (_on_hand(store, menu["rice"]), _on_hand(store, menu["tea"])) == (42, 46)
    assert FlashSaleUsage.objects.filter(used=1).count() == 4
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_a_batch_admits_carts_in_arrival_order_and_refuses_the_rest_as_out_of_stock(store, menu):
    stock_set(store_id=store.pk, sku_id=menu["rice"].pk, on_hand=3)
    customers = [CustomerFactory(brand=store.brand) for _ in range(5)]
    requests = _requests(customers, _pickup(store, ("RICE", 1)))

    orders_place_batch(requests)

    assert [r.order is not None for r in requests] == [True, True, True, False, False]
    for refused in requests[3:]:
        assert refused.error.code == "out_of_stock"
        assert refused.error.detail == {"skus": {str(menu["rice"].pk): {"wanted": 1, "on_hand": 0}}}
    assert sorted(Order.objects.values_list("customer_id", flat=True)) == [c.pk for c in customers[:3]]
    assert [r.order.day_seq for r in requests[:3]] == [1, 2, 3]  # 4 and 5 are the refused carts' gaps
    assert OrderEvent.objects.count() == 3
    assert _on_hand(store, menu["rice"]) == 0
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_a_flash_sale_limit_holds_inside_one_batch(store, menu):
    flash = PromotionFactory(brand=store.brand, kind="flash_sale", name="秒杀", tiers=[], flash_price=D("1.00"),
                             purchase_limit=2, target_skus=[menu["tea"]],
                             starts_at=timezone.now() - timedelta(days=1), ends_at=_far())
    buyer, other = CustomerFactory(brand=store.brand), CustomerFactory(brand=store.brand)
    cart = _pickup(store, ("TEA", 1))
    requests = _requests([buyer, buyer, other, buyer], cart)

    orders_place_batch(requests)

    assert [r.error is None for r in requests] == [True, True, True, False]
    assert requests[3].error.code == "purchase_limit_exceeded"
    assert requests[3].error.detail == {"limit": 2, "already": 2}
    usage = dict(FlashSaleUsage.objects.filter(promotion=flash).values_list("customer_id", "used"))
    assert usage == {buyer.pk: 2, other.pk: 1}
    assert FlashSaleReservation.objects.filter(promotion=flash).count() == 3
    assert all(r.order.total == D("1.50") for r in requests[:3])  # flash price 1.00 + packaging 0.50
    assert _on_hand(store, menu["tea"]) == 47
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_carts_with_coupons_are_placed_one_by_one_and_still_reserve_their_coupon(store, menu):
    customers = [CustomerFactory(brand=store.brand) for _ in range(3)]
    template = CouponTemplateFactory(brand=store.brand, value=D("3.00"))
    coupon = CouponFactory(template=template, customer=customers[1], code="SAVE3",
                           valid_from=timezone.now() - timedelta(days=1), valid_until=_far())
    requests = _requests(customers, _pickup(store, ("RICE", 1)))
    requests[1].cart = _pickup(store, ("RICE", 1), coupon_codes=("SAVE3",))

    orders_place_batch(requests)

    assert [r.error for r in requests] == [None, None, None]
    assert [r.order.total for r in requests] == [D("13.00"), D("10.00"), D("13.00")]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_ref) == ("reserved", requests[1].order.order_no)
    assert _on_hand(store, menu["rice"]) == 47


@pytest.mark.django_db
def test_bad_carts_get_their_own_errors_and_the_others_are_placed(store, menu):
    other_brand_store = StoreFactory()
    customers = [CustomerFactory(brand=store.brand) for _ in range(4)]
    requests = _requests(customers, _pickup(store, ("RICE", 1)))
    requests[0].cart = _pickup(store, ("NOPE", 1))
    requests[2].cart = Cart(store_id=store.pk, order_type="pickup", items=(CartItem("RICE", 0),))
    requests[3].cart = _pickup(other_brand_store, ("RICE", 1))

    orders_place_batch(requests)

    assert [getattr(r.error, "code", None) for r in requests] == [
        "unknown_sku", None, "invalid_quantity", "store_not_found"]
    assert requests[0].error.detail == {"skus": ["NOPE"]}
    assert Order.objects.count() == 1 and requests[1].order.customer_id == customers[1].pk
    assert _on_hand(store, menu["rice"]) == 49


@pytest.mark.django_db
def test_a_hook_that_fails_fails_only_its_own_placement(store, menu):
    customers = [CustomerFactory(brand=store.brand) for _ in range(3)]
    hooked = []

    def hook(order):
        if order.customer_id == customers[1].pk:
            raise RuntimeError("answer could not be stored")
        hooked.append(order.order_no)

    requests = _requests(customers, _pickup(store, ("RICE", 2)), on_created=hook)

    orders_place_batch(requests)

    assert isinstance(requests[1].error, RuntimeError)
    assert requests[1].order is None
    assert [r.order.customer_id for r in (requests[0], requests[2])] == [customers[0].pk, customers[2].pk]
    # The batch failed as a whole and its carts were placed again one by one.
    assert hooked[-2:] == [requests[0].order.order_no, requests[2].order.order_no]
    assert Order.objects.count() == 2
    assert _on_hand(store, menu["rice"]) == 46
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_one_batch_places_carts_of_two_stores(store, menu):
    second = StoreFactory(brand=store.brand)
    StoreSkuFactory(store=second, sku=menu["rice"])
    stock_set(store_id=second.pk, sku_id=menu["rice"].pk, on_hand=1)
    customers = [CustomerFactory(brand=store.brand) for _ in range(3)]
    requests = _requests(customers, _pickup(store, ("RICE", 1)))
    requests[1].cart = requests[2].cart = _pickup(second, ("RICE", 1))

    orders_place_batch(requests)

    assert [r.order.store_id if r.order else r.error.code for r in requests] == [store.pk, second.pk,
                                                                                  "out_of_stock"]
    assert (_on_hand(store, menu["rice"]), _on_hand(second, menu["rice"])) == (49, 0)
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_placements_in_one_process_are_written_in_batches(store, menu, sizes):
    """Placements arriving while a batch is written wait and go together as the
    next batch; each is answered with its own order, its hook run in its own language."""
    customers = [CustomerFactory(brand=store.brand) for _ in range(12)]
    barrier = threading.Barrier(12)
    answers, languages = {}, {}

    def buyer(index):
        language = "zh-hans" if index % 2 else "en"
        try:
            with translation.override(language):
                barrier.wait(timeout=10)
                if index:
                    time.sleep(0.05)  # buyer 0 leads the first batch
                order = order_place(customer=customers[index], cart=_pickup(store, ("RICE", 1)), channel="miniapp",
                                    on_created=lambda o: languages.__setitem__(o.customer_id, translation.get_language()))
                answers[index] = order
        finally:
            connection.close()

    _run_all([threading.Thread(target=buyer, args=(i,)) for i in range(12)], timeout=60)

    assert sorted(answers) == list(range(12))
    assert all(answers[i].customer_id == customers[i].pk for i in range(12))
    assert sizes[0] == 1 and sum(sizes) == 12 and max(sizes[1:]) == 11
    assert languages == {customers[i].pk: ("zh-hans" if i % 2 else "en") for i in range(12)}
    assert Order.objects.count() == 12
    assert _on_hand(store, menu["rice"]) == 38
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_api_creates_are_batched_and_each_key_keeps_its_own_answer(store, menu, sizes):
    """POST /api/v1/orders with Idempotency-Key from 8 buyers at once: the answers
    are stored inside the batch, each in its buyer's language, and replay exactly."""
    from tests.orders.conftest import client_for

    customers = [CustomerFactory(brand=store.brand) for _ in range(8)]
    clients = [client_for(c) for c in customers]
    barrier = threading.Barrier(8)
    body = {"store": store.pk, "order_type": "pickup", "lines": [{"sku": "RICE", "qty": 1}]}
    answers = {}

    def post(index):
        language = "zh-hans" if index % 2 else "en"
        try:
            barrier.wait(timeout=10)
            if index:
                time.sleep(0.05)
            answers[index] = clients[index].post("/api/v1/orders", body, format="json",
                                                 HTTP_IDEMPOTENCY_KEY=f"key-{index}", HTTP_ACCEPT_LANGUAGE=language)
        finally:
            connection.close()

    _run_all([threading.Thread(target=post, args=(i,)) for i in range(8)], timeout=60)

    assert sorted(answers) == list(range(8))
    assert [answers[i].status_code for i in range(8)] == [201] * 8
    assert max(sizes[1:]) == 7
    for index in range(8):
        first = answers[index].json()
        order = Order.objects.get(order_no=first["order_no"])
        assert order.customer_id == customers[index].pk
        assert first["buyer_status"] == ("待支付" if index % 2 else "Awaiting payment")
        replay = clients[index].post("/api/v1/orders", body, format="json", HTTP_IDEMPOTENCY_KEY=f"key-{index}",
                                     HTTP_ACCEPT_LANGUAGE="en")
        assert (replay.status_code, replay.json()) == (201, first)
    assert Order.objects.count() == 8
    assert _on_hand(store, menu["rice"]) == 42


@pytest.mark.django_db
def test_each_cart_is_priced_and_refused_in_its_buyers_language(store, menu):
    """The leader prices and refuses every cart of the batch: names, explanations
    and messages are still in the language the buyer asked in."""
    gold = MemberTierFactory(brand=store.brand, price_rate=D("0.950"))
    PromotionFactory(brand=store.brand, kind="flash_sale", name="秒杀", tiers=[], flash_price=D("1.00"),
                     purchase_limit=1, target_skus=[menu["tea"]], starts_at=timezone.now() - timedelta(days=1),
                     ends_at=_far())
    english_buyer, chinese_buyer = (CustomerFactory(brand=store.brand, tier=gold) for _ in range(2))
    with translation.override("en"):
        english = _requests([english_buyer, english_buyer], _pickup(store, ("RICE", 2), ("TEA", 1)))
    with translation.override("zh-hans"):  # also the leader's language
        chinese = _requests([chinese_buyer], _pickup(store, ("RICE", 2), ("TEA", 1)))
        orders_place_batch([chinese[0], *english])

    assert sorted(d.name for d in english[0].order.discounts.all()) == ["Member price", "秒杀"]
    assert sorted(d.name for d in chinese[0].order.discounts.all()) == ["会员价", "秒杀"]
    assert english[0].order.raw_payload["pricing"]["discounts"][1]["explanation"] == \
        "Member price: pays 95% of 25.00, 1.25 off"  # 24.00 rice + 1.00 flash-priced tea
    assert english[1].error.code == "purchase_limit_exceeded"
    assert str(english[1].error.message) == \
        "Purchase limit reached: at most 1 per customer, 1 already bought or held."


@pytest.mark.django_db
def test_a_store_whose_reads_fail_has_its_carts_placed_one_by_one(store, menu, monkeypatch):
    customers = [CustomerFactory(brand=store.brand) for _ in range(3)]
    template = CouponTemplateFactory(brand=store.brand, value=D("3.00"))
    CouponFactory(template=template, customer=customers[2], code="SAVE3",
                  valid_from=timezone.now() - timedelta(days=1), valid_until=_far())
    requests = _requests(customers, _pickup(store, ("RICE", 1)))
    requests[2].cart = _pickup(store, ("RICE", 1), coupon_codes=("SAVE3",))

    def failing_snapshot(**kwargs):
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr(placement, "_store_snapshot", failing_snapshot)
    orders_place_batch(requests)

    assert [r.error for r in requests] == [None, None, None]
    assert [r.order.total for r in requests] == [D("13.00"), D("13.00"), D("10.00")]
    assert _on_hand(store, menu["rice"]) == 47


@pytest.mark.django_db
def test_a_cart_whose_pricing_fails_unexpectedly_is_placed_on_its_own(store, menu, monkeypatch):
    customers = [CustomerFactory(brand=store.brand) for _ in range(3)]
    requests = _requests(customers, _pickup(store, ("RICE", 1)))
    real = placement.cart_price_from_rows
    calls = []

    def flaky(*, customer, **kwargs):
        calls.append(customer.pk)
        if customer.pk == customers[0].pk:
            raise ValueError("a price that is not a whole cent")
        return real(customer=customer, **kwargs)

    monkeypatch.setattr(placement, "cart_price_from_rows", flaky)
    orders_place_batch(requests)

    # The batch priced all three; the first one was then placed by the single path (cart_price).
    assert calls == [c.pk for c in customers]
    assert [r.error for r in requests] == [None, None, None]
    assert sorted(Order.objects.values_list("customer_id", flat=True)) == sorted(c.pk for c in customers)
    assert _on_hand(store, menu["rice"]) == 47


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_batch_waiting_for_a_lock_at_one_store_holds_up_no_other_store(store, menu):
    other = StoreFactory(brand=store.brand)
    StoreSkuFactory(store=other, sku=menu["rice"])
    stock_set(store_id=other.pk, sku_id=menu["rice"].pk, on_hand=50)
    first, second = CustomerFactory(brand=store.brand), CustomerFactory(brand=store.brand)
    locked, release = threading.Event(), threading.Event()
    done = {}

    def stock_count_at_first_store():
        try:
            with transaction.atomic():
                Stock.objects.select_for_update().get(store=store, sku=menu["rice"])
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    def place(name, customer, where):
        try:
            done[name] = order_place(customer=customer, cart=_pickup(where, ("RICE", 1)), channel="miniapp")
        finally:
            connection.close()

    holder = threading.Thread(target=stock_count_at_first_store)
    holder.start()
    assert locked.wait(10)
    waiting = threading.Thread(target=place, args=("first", first, store))
    waiting.start()
    time.sleep(0.3)  # its placement now waits for the locked stock row
    other_store = threading.Thread(target=place, args=("second", second, other))
    other_store.start()
    other_store.join(5)
    placed_meanwhile = sorted(done)
    release.set()
    for thread in (waiting, holder):
        thread.join(20)

    assert placed_meanwhile == ["second"]
    assert sorted(done) == ["first", "second"]
    assert (_on_hand(store, menu["rice"]), _on_hand(other, menu["rice"])) == (49, 49)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_expiry_sweep_and_a_batch_lock_counters_and_stock_in_one_order(store, menu, monkeypatch):
    """The sweep releases flash-sale counters before stock, as placements lock
    them: a sweep that has started releasing while a batch holds its buyers'
    counters never closes a wait cycle (it used to: deadlock, and the batch fell
    back to one by one)."""
    PromotionFactory(brand=store.brand, kind="flash_sale", name="秒杀", tiers=[], flash_price=D("1.00"),
                     purchase_limit=5, target_skus=[menu["rice"]], starts_at=timezone.now() - timedelta(days=3),
                     ends_at=_far())
    late, other = CustomerFactory(brand=store.brand), CustomerFactory(brand=store.brand)
    cart = _pickup(store, ("RICE", 1))
    expired = order_place_one(customer=late, cart=cart, channel="miniapp", now=timezone.now() - timedelta(days=1))
    sweep_started, batch_locking_stock = threading.Event(), threading.Event()
    real_release, real_stocks_lock = expiry.flash_sale_limits_release_for_orders, placement.stocks_lock

    def release_while_the_batch_runs(**kwargs):
        sweep_started.set()
        batch_locking_stock.wait(5)
        time.sleep(0.2)  # the batch holds the counters and asks for the stock row now
        return real_release(**kwargs)

    def stocks_lock(**kwargs):
        batch_locking_stock.set()
        return real_stocks_lock(**kwargs)

    fallbacks, errors = [], []
    monkeypatch.setattr(expiry, "flash_sale_limits_release_for_orders", release_while_the_batch_runs)
    monkeypatch.setattr(placement, "stocks_lock", stocks_lock)
    monkeypatch.setattr(placement.logger, "warning", lambda *args, **kwargs: fallbacks.append(args))
    requests = _requests([late, other], cart)

    def sweep():
        try:
            orders_expire_unpaid()
        except Exception as exc:  # asserted on below
            errors.append(exc)
        finally:
            connection.close()

    def batch():
        try:
            sweep_started.wait(5)
            orders_place_batch(requests)
        finally:
            connection.close()

    _run_all([threading.Thread(target=sweep), threading.Thread(target=batch)], timeout=30)

    assert errors == [] and fallbacks == []
    assert [r.error for r in requests] == [None, None]
    expired.refresh_from_db()
    assert expired.status == "cancelled"
    assert FlashSaleUsage.objects.get(customer=late).used == 1  # the expired unit back, the new one held
    assert _on_hand(store, menu["rice"]) == 48
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_many_buyers_with_mixed_multi_line_carts_keep_stock_limits_and_ledger_exact(store, menu):
    """24 buyers, 4 orders each, random 1-3 line carts over three tracked SKUs, one
    of them in a flash sale limited to 2 per customer: whatever the batches were,
    nothing is oversold, no customer holds more than the limit, every unit taken is
    on an on-order line and in the ledger, and every refusal is one a single placement gives."""
    import random

    flash = PromotionFactory(brand=store.brand, kind="flash_sale", name="秒杀", tiers=[], flash_price=D("1.00"),
                             purchase_limit=2, target_skus=[menu["tea"]],
                             starts_at=timezone.now() - timedelta(days=1), ends_at=_far())
    initial = {"RICE": 15, "TEA": 10, "SOUP": 6}
    menu["soup"].stock_mode = StockDeductionMode.ON_ORDER
    menu["soup"].save(update_fields=["stock_mode"])
    for code, sku in (("RICE", menu["rice"]), ("TEA", menu["tea"]), ("SOUP", menu["soup"])):
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=initial[code])
    customers = [CustomerFactory(brand=store.brand) for _ in range(24)]
    rng = random.Random(20261201)
    carts = [[_pickup(store, *[(code, rng.randint(1, 2)) for code in rng.sample(sorted(initial), rng.randint(1, 3))])
              for _ in range(4)] for _ in customers]
    before = placement.placement_batch_stats()
    barrier = threading.Barrier(len(customers))
    refusals, unexpected = [], []

    def buyer(index):
        try:
            barrier.wait(timeout=10)
            for cart in carts[index]:
                try:
                    order_place(customer=customers[index], cart=cart, channel="miniapp")
                except Exception as exc:  # sorted below
                    (refusals if getattr(exc, "code", None) else unexpected).append(exc)
        finally:
            connection.close()

    _run_all([threading.Thread(target=buyer, args=(i,)) for i in range(len(customers))], timeout=120)

    assert unexpected == []
    assert {e.code for e in refusals} <= {"out_of_stock", "sku_unavailable", "purchase_limit_exceeded"}
    orders = list(Order.objects.prefetch_related("lines", "discounts"))
    assert len(orders) + len(refusals) == 96
    taken = {code: 0 for code in initial}
    for order in orders:
        for line in order.lines.all():
            if line.stock_mode == StockDeductionMode.ON_ORDER:  # tea beyond the flash limit: on payment
                taken[line.sku_code] += line.quantity
        assert order.discount_total == sum((line.discount for line in order.lines.all()), D("0.00"))
        assert order.total == order.subtotal - order.discount_total + order.packaging_fee
    on_hand = {code: _on_hand(store, sku) for code, sku in (("RICE", menu["rice"]), ("TEA", menu["tea"]),
                                                            ("SOUP", menu["soup"]))}
    assert all(value >= 0 for value in on_hand.values())
    assert {code: initial[code] - on_hand[code] for code in initial} == taken
    held = {}
    for customer_id, quantity in FlashSaleReservation.objects.filter(promotion=flash).values_list(
            "customer_id", "quantity"):
        held[customer_id] = held.get(customer_id, 0) + quantity
    assert all(units <= 2 for units in held.values())
    assert sum(held.values()) == taken["TEA"]  # tea is taken at order time exactly when flash-priced
    assert dict(FlashSaleUsage.objects.filter(promotion=flash, used__gt=0).values_list("customer_id", "used")) == held
    assert stock_ledger_mismatches() == []
    after = placement.placement_batch_stats()
    assert after["placements"] - before["placements"] == 96
    assert after["batches"] - before["batches"] < 96  # some placements went together
