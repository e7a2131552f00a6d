"""The security matrix: for EVERY POS endpoint, no token and a revoked token
answer 401; another store's order or event is 404 (or ignored, for ack); a
cashier terminal cannot do what only a manager terminal may (403)."""

from decimal import Decimal

import pytest

from core.actors import Actor
from orders.models import Order, StoreFeedEvent, VoucherCode
from orders.services import LineInput
from orders.services.vouchers import IssuedCode, voucher_codes_record_issued
from pos.services import pos_terminal_revoke
from tests.order_helpers import make_order, walk
from tests.pos.conftest import token_client

BASE = "/api/pos/v1"

# (method, path template, body); {order_no} is filled with an order of the store.
ENDPOINTS = [
    ("get", "events", None),
    ("post", "events/ack", {"ids": [1]}),
    ("get", "orders", None),
    ("get", "orders/{order_no}", None),
    ("post", "orders/{order_no}/accept", {}),
    ("post", "orders/{order_no}/reject", {"reason_code": "other"}),
    ("post", "orders/{order_no}/ready", {}),
    ("post", "orders/{order_no}/dispatch", {}),
    ("post", "orders/{order_no}/complete", {}),
    ("post", "stock/sales", {"receipt_no": "R1", "lines": [{"sku": "RICE", "qty": 1}]}),
    ("post", "stock/availability", {"sku": "RICE", "available": False}),
    ("post", "vouchers/redeem", {"code": "V1"}),
    ("get", "menu", None),
]
ORDER_ENDPOINTS = [e for e in ENDPOINTS if "{order_no}" in e[1]]


def call(client, method, path, body, order_no="X"):
    url = f"{BASE}/{path.format(order_no=order_no)}"
    return getattr(client, method)(url, body, format="json") if method == "post" else client.get(url)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_no_token_is_401(store, skus, method, path, body):
    order = make_order(store=store, paid=True)

    response = call(token_client(None), method, path, body, order.order_no)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    assert Order.objects.get(pk=order.pk).status == "paid"


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_revoked_token_is_401(store, skus, cashier, method, path, body):
    terminal, token = cashier
    order = make_order(store=store, paid=True)
    pos_terminal_revoke(terminal_id=terminal.pk)

    response = call(token_client(token), method, path, body, order.order_no)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert Order.objects.get(pk=order.pk).status == "paid"


@pytest.mark.parametrize(("method", "path", "body"), ORDER_ENDPOINTS)
def test_another_stores_order_is_404_and_untouched(other_store, pos_manager, method, path, body):
    theirs = make_order(store=other_store, paid=True)

    response = call(pos_manager, method, path, body, theirs.order_no)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "order_not_found"
    assert Order.objects.get(pk=theirs.pk).status == "paid"


def test_another_stores_orders_and_events_never_show_in_lists(store, other_store, pos):
    make_order(store=other_store, paid=True)

    assert pos.get(f"{BASE}/orders").json()["count"] == 0
    assert pos.get(f"{BASE}/events").json() == {"events": []}


def test_ack_ignores_another_stores_event_ids(store, other_store, pos):
    theirs = make_order(store=other_store, paid=True)
    event = StoreFeedEvent.objects.get(order=theirs)

    response = pos.post(f"{BASE}/events/ack", {"ids": [event.pk, 999999]}, format="json")

    assert response.json() == {"acked": 0}
    assert StoreFeedEvent.objects.get(pk=event.pk).acked_at is None


def test_acking_twice_is_harmless(store, pos, cashier):
    order = make_order(store=store, paid=True)
    event = StoreFeedEvent.objects.get(order=order)

    first = pos.post(f"{BASE}/events/ack", {"ids": [str(event.pk)]}, format="json")
    second = pos.post(f"{BASE}/events/ack", {"ids": [str(event.pk)]}, format="json")

    assert (first.json(), second.json()) == ({"acked": 1}, {"acked": 0})
    assert StoreFeedEvent.objects.get(pk=event.pk).acked_by == str(cashier[0].pk)


def test_another_stores_voucher_code_is_404(other_store, pos):
    voucher = make_order(store=other_store, order_type="voucher",
                         lines=[LineInput(name="50元代金券", unit_price=Decimal("45.00"), quantity=1)])
    walk(voucher, "pay")
    voucher_codes_record_issued(order_no=voucher.order_no, actor=Actor.system("oms"),
                                codes=[IssuedCode(code="EV0000000777", line_no=1)])

    response = pos.post(f"{BASE}/vouchers/redeem", {"code": "EV0000000777"}, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "voucher_not_found"
    assert Order.objects.get(pk=voucher.pk).status == "issued"
    assert VoucherCode.objects.get(code="EV0000000777").state == "issued"


def test_another_brands_sku_is_unknown_to_sales_and_availability(store, other_store, pos):
    from tests.factories import SkuFactory, StoreFactory

    SkuFactory(brand=StoreFactory().brand, code="FOREIGN")

    sale = pos.post(f"{BASE}/stock/sales", {"receipt_no": "R1", "lines": [{"sku": "FOREIGN", "qty": 1}]},
                    format="json")
    availability = pos.post(f"{BASE}/stock/availability", {"sku": "FOREIGN", "available": False}, format="json")

    assert (sale.status_code, availability.status_code) == (400, 400)
    assert sale.json()["error"]["code"] == "unknown_sku"


def test_a_cashier_terminal_cannot_reject(store, pos):
    order = make_order(store=store, paid=True)

    response = pos.post(f"{BASE}/orders/{order.order_no}/reject", {"reason_code": "store_busy"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "terminal_role_not_allowed", "message": "This terminal's role may not do this.",
        "detail": {"action": "reject", "role": "cashier"},
    }
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_a_manager_terminal_may_reject(store, pos_manager):
    order = make_order(store=store, paid=True)

    response = pos_manager.post(f"{BASE}/orders/{order.order_no}/reject", {"reason_code": "store_busy"},
                                format="json")

    assert response.status_code == 200


def test_idempotency_keys_are_per_terminal(store, pos, pos_manager):
    first = make_order(store=store, paid=True)
    second = make_order(store=store, paid=True)

    a = pos.post(f"{BASE}/orders/{first.order_no}/accept", {}, format="json", HTTP_IDEMPOTENCY_KEY="same")
    b = pos_manager.post(f"{BASE}/orders/{second.order_no}/accept", {}, format="json", HTTP_IDEMPOTENCY_KEY="same")

    assert (a.status_code, b.status_code) == (200, 200)
    assert b.json()["order_no"] == second.order_no
