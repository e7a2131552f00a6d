"""The 201 answer to a create is built from the order just written (no read back), and reads byte
for byte as a GET of the order at that moment: JSON key order of the address included."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order, OrderLine
from tests.factories import PromotionFactory

pytestmark = pytest.mark.django_db

ADDRESS = {"name": "王先生", "phone": "13800001234", "detail": "上海市徐汇区漕溪北路398号 3号楼 1201",
           "latitude": "31.189", "longitude": "121.436"}


@pytest.mark.parametrize("body", [
    {"order_type": "pickup", "lines": [{"sku": "RICE", "qty": 2}, {"sku": "TEA", "qty": 1}]},
    {"order_type": "delivery", "lines": [{"sku": "RICE", "qty": 3}, {"sku": "SOUP", "qty": 4}, {"sku": "TEA", "qty": 1}],
     "address": ADDRESS, "note": "不要香菜", "contact_name": "王先生", "contact_phone": "13800001234"},
    {"order_type": "pickup", "lines": [{"sku": "SOUP", "qty": 1}], "note": ""},
], ids=["pickup", "delivery-with-address-and-discount", "one-line"])
def test_the_created_answer_is_the_orders_answer(api, shop, body):
    now = timezone.now()
    PromotionFactory(brand=shop["store"].brand, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))

    with CaptureQueriesContext(connection) as queries:
        created = api.post("/api/v1/orders", {"store": shop["store"].pk, **body}, format="json",
                           HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex)
    read = api.get(f"/api/v1/orders/{created.json()['order_no']}")

    assert created.status_code == 201, created.content
    assert read.status_code == 200
    assert created.content == read.content
    line_table = OrderLine._meta.db_table
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and f'FROM "{line_table}"' in q["sql"]]


def test_the_discount_shows_in_the_created_answer(api, shop):
    now = timezone.now()
    PromotionFactory(brand=shop["store"].brand, starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))

    created = api.post("/api/v1/orders", {"store": shop["store"].pk, "order_type": "pickup",
                                          "lines": [{"sku": "RICE", "qty": 5}]}, format="json",
                       HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex).json()

    assert [(d["kind"], d["amount"]) for d in created["discounts"]] == [("full_reduction", "10.00")]
    assert created["amounts"]["discount"] == "10.00"
    assert Order.objects.get(order_no=created["order_no"]).discount_total == 10


def test_a_written_order_reads_as_its_row(shop):
    from tests.order_helpers import make_order

    order = make_order(store=shop["store"], order_type="delivery",
                       address={"longitude": "121.4", "detail": "漕溪北路398号", "zz": {"b": 1, "a": [{"yy": 1, "x": 2}]},
                                "name": "王先生"})
    row = Order.objects.get(pk=order.pk)

    assert list(order.address) == list(row.address)
    assert list(order.address["zz"]) == list(row.address["zz"])
    assert list(order.address["zz"]["a"][0]) == list(row.address["zz"]["a"][0])
    assert [line.pk for line in order.lines.all()] == list(row.lines.values_list("pk", flat=True))
