"""A pull writes the orders it fetched a page at a time (issue 15): the page writes
exactly what ingesting its payloads one at a time writes, refuses nothing more or
less, and a page that fails is written again one order at a time."""

import json
import threading

import pytest
from django.db import transaction

from catalog.models import PlatformSkuMapping, StoreSku
from channels.adapters.base import PlatformError, PulledOrder
from channels.adapters.meituan import MeituanAdapter
from channels.models import StoreBinding
from channels.services import binding_pull, platform_order_ingest
from channels.services.intake import PageNotWhole, platform_orders_ingest_page
from channels.services.walk import WalkAhead
from inventory.models import Stock, StockMovement, StockShortfall
from inventory.services import stock_set
from orders.models import Order, OrderEvent
from orders.models.feed import StoreFeedEvent
from tests.channels.samples import meituan_order
from tests.factories import SkuFactory, StoreBindingFactory, StoreFactory


def _line(code, name, quantity, price, sku_id, box=0):
    return {"app_food_code": code, "food_name": name, "sku_id": sku_id, "quantity": quantity, "price": price,
            "box_num": box, "box_price": 1.0 if box else 0, "unit": "份", "food_property": "", "spec": ""}


def _payloads(shop_code: str, first_id: int) -> list[dict]:
    """Seven payloads of one shop: flags of every kind, stock running out in turn, one
    order twice in the page, one already confirmed and one cancelled on the platform."""
    chicken = lambda n: _line("HC001", "宫保鸡丁", n, 28.0, "1001001", box=n)  # noqa: E731
    rice = lambda n: _line("ZS001", "扬州炒饭", n, 24.0, "1001002")  # noqa: E731

    def order(number, lines, **changes):
        total = sum(line["price"] * line["quantity"] + line["box_num"] * line["box_price"] for line in lines) + 5
        changes = {"total": total, "original_price": total, **changes}
        return meituan_order(order_id=first_id + number, wm_order_id_view=str(first_id + number),
                             app_poi_code=shop_code, day_seq=number, detail=json.dumps(lines, ensure_ascii=False),
                             extras="[]", **changes)

    return [
        meituan_order(order_id=first_id, wm_order_id_view=str(first_id), app_poi_code=shop_code),  # unknown SKU, discount
        order(1, [chicken(6)]),
        order(2, [chicken(3), rice(1)]),  # 2 chickens left: 1 short; the last rice
        order(3, [rice(1)], status=4),  # confirmed on the platform already; no rice left
        order(4, [chicken(1)], total=1.0),  # the platform's total disagrees
        order(1, [chicken(6)]),  # the second order again, in the same page
        order(5, [rice(2)], status=9),  # cancelled on the platform
    ]


@pytest.fixture
def twins(db):
    """Two stores of one brand, alike in everything (auto-accept on, 10 chickens and one
    rice each), each bound to its own Meituan shop."""
    first = StoreFactory(name="徐汇店", auto_accept=True)
    second = StoreFactory(name="静安店", brand=first.brand, auto_accept=True)
    chicken = SkuFactory(brand=first.brand, code="HC001", price="28.00")
    rice = SkuFactory(brand=first.brand, code="ZS001", price="24.00")
    bindings = []
    for store, shop_code in ((first, "mt-page-a"), (second, "mt-page-b")):
        stock_set(store_id=store.pk, sku_id=chicken.pk, on_hand=10)
        stock_set(store_id=store.pk, sku_id=rice.pk, on_hand=1)
        bindings.append(StoreBindingFactory(store=store, platform="meituan", shop_code=shop_code))
    return {"paged": bindings[0], "one_by_one": bindings[1], "chicken": chicken, "rice": rice}


def _written(binding: StoreBinding) -> dict:
    """Everything intake wrote for a store, with what differs between twin stores (ids,
    order numbers, the platform's order ids, times) taken out."""
    store_id = binding.store_id
    orders = list(Order.objects.filter(store_id=store_id).order_by("day_seq"))
    number = {order.order_no: order.day_seq for order in orders}
    ours = {order.pk: order.day_seq for order in orders}
    return {
        "orders": [(order.day_seq, order.channel_day_seq, order.status, order.order_type, order.subtotal,
                    order.discount_total, order.packaging_fee, order.delivery_fee, order.total, order.paid_amount,
                    order.needs_attention, order.attention_reason, order.prep_minutes, order.accepted_at is not None,
                    order.raw_payload["day_seq"])
                   for order in orders],
        "lines": [(ours[line.order_id], line.line_no, line.sku_id, line.sku_code, line.name, line.quantity,
                   line.unit_price, line.discount, line.line_total, line.packaging_fee, line.platform_sku_id)
                  for order in orders for line in order.lines.order_by("line_no")],
        "discounts": [(ours[d.order_id], d.kind, d.name, d.amount, d.merchant_part, d.platform_part, d.reference)
                      for order in orders for d in order.discounts.order_by("id")],
        "events": [(ours[event.order_id], event.action, event.from_status, event.to_status, event.actor_kind,
                    event.actor_id, event.reason_code, event.reason, event.data)
                   for event in OrderEvent.objects.filter(order__store_id=store_id).order_by("order__day_seq", "id")],
        "feed": [(ours[row.order_id], row.type) for row in StoreFeedEvent.objects.filter(store_id=store_id)
                 .order_by("id")],
        "ledger": [(row.stock.sku_id, row.delta, row.reason, number[row.reference]) for row in
                   StockMovement.objects.filter(stock__store_id=store_id, reason="order").select_related("stock")
                   .order_by("id")],
        "ledger_back": sorted((row.stock.sku_id, row.delta, row.reason) for row in StockMovement.objects.filter(
            stock__store_id=store_id).exclude(reason__in=["order", "set"]).select_related("stock")),
        "shortfalls": [(row.sku_id, row.quantity, number[row.reference]) for row in
                       StockShortfall.objects.filter(store_id=store_id).order_by("id")],
        "on_hand": sorted(Stock.objects.filter(store_id=store_id).values_list("sku__code", "on_hand")),
        "stock_out": sorted(StoreSku.objects.filter(store_id=store_id).values_list("sku__code", "stock_out")),
        "learnt": sorted(PlatformSkuMapping.objects.filter(store_id=store_id).values_list(
            "sku__code", "platform_sku_id", "learnt")),
    }


@pytest.mark.django_db(transaction=True)
def test_a_page_writes_what_one_order_at_a_time_writes(twins):
    with transaction.atomic():
        paged = platform_orders_ingest_page(binding=twins["paged"],
                                            payloads=_payloads("mt-page-a", 27900000000100))
    one_by_one = [platform_order_ingest(binding=twins["one_by_one"], payload=payload)
                  for payload in _payloads("mt-page-b", 27900000000200)]

    assert [(r.created, r.applied) for r in paged] == [(r.created, r.applied) for r in one_by_one]
    assert [r.created for r in paged] == [True, True, True, True, True, False, True]
    a, b = _written(twins["paged"]), _written(twins["one_by_one"])
    assert a == b
    # And what that is, so the comparison cannot pass on two empty stores.
    assert [(o[0], o[2], o[10], o[11]) for o in a["orders"]] == [
        (1, "paid", True, "unknown SKU: RICE-X"),  # a person's call: not auto-accepted
        (2, "accepted", False, ""),
        (3, "accepted", True, "stock shortfall"),  # accepted, then short of a chicken
        (4, "accepted", True, "stock shortfall"),  # confirmed on the platform already
        (5, "paid", True, "platform total 1.00 differs from 34.00; stock shortfall"),
        (6, "cancelled", True, "stock shortfall"),
    ]
    chicken, rice = twins["chicken"].pk, twins["rice"].pk
    assert a["ledger"] == [(chicken, -2, "order", 1), (chicken, -6, "order", 2), (chicken, -2, "order", 3),
                           (rice, -1, "order", 3)]
    assert a["shortfalls"] == [(chicken, 1, 3), (rice, 1, 4), (chicken, 1, 5), (rice, 2, 6)]
    assert a["on_hand"] == [("HC001", 0), ("ZS001", 0)]
    assert a["stock_out"] == [("HC001", True), ("ZS001", True)]
    assert a["feed"] == [(1, "order.created"), (2, "order.created"), (3, "order.created"), (4, "order.created"),
                         (5, "order.created"), (6, "order.created"), (6, "order.cancelled")]


@pytest.mark.django_db(transaction=True)
def test_a_page_with_another_shops_payload_writes_nothing(twins):
    payloads = _payloads("mt-page-a", 27900000000100)[:2] + _payloads("mt-page-b", 27900000000200)[:1]

    with pytest.raises(PageNotWhole), transaction.atomic():
        platform_orders_ingest_page(binding=twins["paged"], payloads=payloads)

    assert Order.objects.count() == 0
    assert StockMovement.objects.filter(reason="order").count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_page_needs_the_callers_transaction(twins):
    with pytest.raises(RuntimeError, match="caller's transaction"):
        platform_orders_ingest_page(binding=twins["paged"], payloads=_payloads("mt-page-a", 27900000000100))
    assert Order.objects.count() == 0


def _platform(monkeypatch, payloads: list[dict]):
    """The platform, for what would leave the machine: day sequences 1..n, each the order at that place."""
    by_id = {str(payload["order_id"]): payload for payload in payloads}
    ids = [str(payload["order_id"]) for payload in payloads]

    def call(self, binding, method, path, params):
        if path == "order/getOrderDaySeq":
            return {"day_seq": len(ids)}
        if path == "order/getOrderIdByDaySeq":
            return {"order_id": ids[int(params["day_seq"]) - 1]}
        return "ok"  # what the relay sends (order confirmations, sold-out)

    monkeypatch.setattr(MeituanAdapter, "call", call)
    monkeypatch.setattr(MeituanAdapter, "fetch_order", lambda self, binding, order_id: by_id[order_id])


def _too_long(payload: dict) -> dict:
    return {**payload, "wm_order_id_view": "9" * 80}  # a value no column holds: the INSERT fails


def _no_quantity(payload: dict) -> dict:
    lines = json.loads(payload["detail"])
    lines[0]["quantity"] = 0  # refused before anything is written
    return {**payload, "detail": json.dumps(lines)}


@pytest.mark.parametrize(("spoil", "error"), [
    pytest.param(_too_long, "PlatformPayloadError: order 27900000000102: a value does not fit",
                 marks=pytest.mark.postgres_only),  # SQLite does not enforce lengths
    (_no_quantity, "PlatformPayloadError: order 27900000000102: a line has quantity 0"),
])
@pytest.mark.django_db(transaction=True)
def test_a_page_that_fails_is_written_one_order_at_a_time(twins, monkeypatch, settings, spoil, error):
    settings.CHANNELS_INGEST_PAGE_WAIT_SECONDS = 5  # the three orders make one page
    payloads = _payloads("mt-page-a", 27900000000100)[1:4]
    payloads[1] = spoil(payloads[1])
    _platform(monkeypatch, payloads)

    result = binding_pull(binding_id=twins["paged"].pk)

    assert (result.pulled, result.created) == (2, 2)
    assert len(result.errors) == 1 and result.errors[0].startswith(error)
    assert sorted(Order.objects.values_list("channel_order_id", flat=True)) == ["27900000000101", "27900000000103"]
    state = StoreBinding.objects.get(pk=twins["paged"].pk).pull_state
    assert list(state["missing"].values()) == [[2]]


@pytest.mark.django_db(transaction=True)
def test_a_backlog_is_written_in_pages_with_the_pull_state_past_each(twins, monkeypatch, settings):
    settings.CHANNELS_INGEST_PAGE_ORDERS = 4
    settings.CHANNELS_INGEST_PAGE_WAIT_SECONDS = 5
    stock_set(store_id=twins["paged"].store_id, sku_id=twins["chicken"].pk, on_hand=100)
    payloads = [meituan_order(order_id=27900000000300 + n, wm_order_id_view=str(27900000000300 + n),
                              app_poi_code="mt-page-a", day_seq=n + 1,
                              detail=json.dumps([_line("HC001", "宫保鸡丁", 1, 28.0, "1001001")]), extras="[]",
                              total=33.0, original_price=33.0) for n in range(10)]
    _platform(monkeypatch, payloads)
    states = []
    original = StoreBinding.objects.filter

    def spy(*args, **kwargs):  # the pull state each page commits
        query = original(*args, **kwargs)
        update = query.update

        def recorded(**fields):
            if "pull_state" in fields and "pull_lease_until" in fields and fields["pull_lease_until"] is not None:
                states.append((Order.objects.count(), dict(fields["pull_state"])))
            return update(**fields)

        query.update = recorded
        return query

    monkeypatch.setattr(StoreBinding.objects, "filter", spy)
    result = binding_pull(binding_id=twins["paged"].pk)

    assert (result.pulled, result.created, result.errors) == (10, 10, [])
    day = next(iter(states[0][1]))
    assert [(count, state[day]) for count, state in states] == [(4, 4), (8, 8), (10, 10)]
    assert Stock.objects.get(store_id=twins["paged"].store_id, sku=twins["chicken"]).on_hand == 90


# --- the walk ahead ------------------------------------------------------------------------------


def test_the_walk_hands_over_its_orders_in_order_and_its_error_after_them():
    def walk(known):
        yield PulledOrder(key=("d", 1), payload={"n": 1})
        yield PulledOrder(key=("d", 2), payload={"n": 2})
        raise PlatformError("getOrderIdByDaySeq: down")

    ahead = WalkAhead(walk, known=None, ahead=4)
    seen = []
    try:
        with pytest.raises(PlatformError, match="down"):
            for page in ahead.pages(size=10, wait=5):
                seen += [pulled.payload["n"] for pulled in page]
    finally:
        ahead.close()
    assert seen == [1, 2]


def test_the_walks_database_question_is_answered_by_the_pulling_thread():
    asked_on = []

    def known(ids):
        asked_on.append(threading.get_ident())
        return {"2"}

    def walk(known):
        found = known(["1", "2", "3"])
        for order_id in ("1", "2", "3"):
            if order_id not in found:
                yield PulledOrder(key=order_id, payload={"id": order_id})

    ahead = WalkAhead(walk, known=known, ahead=1)
    try:
        pages = [[pulled.key for pulled in page] for page in ahead.pages(size=1, wait=0)]
    finally:
        ahead.close()
    assert pages == [["1"], ["3"]]
    assert asked_on == [threading.get_ident()]


def test_a_page_is_handed_over_when_full_or_when_its_wait_is_over():
    release = threading.Event()

    def walk(known):
        for n in range(5):
            yield PulledOrder(key=n, payload={"n": n})
        release.wait(5)  # the platform is slow for the sixth
        yield PulledOrder(key=5, payload={"n": 5})

    ahead = WalkAhead(walk, known=None, ahead=10)
    pages = []
    try:
        for page in ahead.pages(size=3, wait=0.2):
            pages.append([pulled.key for pulled in page])
            if len(pages) == 2:
                release.set()
    finally:
        ahead.close()
    assert pages == [[0, 1, 2], [3, 4], [5]]


def test_closing_the_walk_stops_it_when_the_pull_leaves_early():
    made = []

    def walk(known):
        for n in range(1000):
            made.append(n)
            yield PulledOrder(key=n, payload={"n": n})

    ahead = WalkAhead(walk, known=None, ahead=2)
    first = next(iter(ahead.pages(size=1, wait=0)))
    ahead.close()

    assert [pulled.key for pulled in first] == [0]
    assert not ahead._thread.is_alive()
    assert len(made) <= 5  # the queue held two, no more were fetched
