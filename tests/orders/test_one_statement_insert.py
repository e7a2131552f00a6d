"""A single new order is written in one statement on PostgreSQL (issue 15): the INSERTs are
Django's own (compiled once, then only the values prepared, as Django prepares them), and
the order, its lines, discounts and event come back with their ids in order."""

from datetime import datetime
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery
from django.test.utils import CaptureQueriesContext
from psycopg.types.json import Jsonb

from core.actors import Actor
from orders.models import Order, OrderDiscount, OrderEvent, OrderLine
from core.sqlinsert import insert_statement
from orders.services.creation import DiscountInput, LineInput, order_create, order_draft
from tests.factories import StoreFactory

pytestmark = pytest.mark.postgres_only

FIXED = datetime(2026, 12, 5, 12, 30, 1, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))


def _draft(store):
    return order_draft(
        store=store, channel="miniapp", order_type="delivery", actor=Actor.system("test"), day_seq=41,
        lines=[LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, sku_code="HC001",
                         discount=Decimal("3.00"), options=[{"name": "辣度", "value": "微辣"}]),
               LineInput(name="米饭", unit_price=Decimal("2.50"), quantity=1, sku_code="RICE")],
        discounts=[DiscountInput(kind="promotion", name="满50减3", amount=Decimal("3.00"),
                                 merchant_part=Decimal("3.00"))],
        delivery_fee=Decimal("5.00"), address={"detail": "漕溪北路398号", "name": "王"}, placed_at=FIXED,
        raw_payload={"order_id": 1, "detail": [{"x": "y"}]})


def _comparable(statement):
    """Values as comparable objects (psycopg's Jsonb wrapper compares by identity)."""
    sql, params = statement
    return sql, [("jsonb", value.obj) if isinstance(value, Jsonb) else (type(value).__name__, value)
                 for value in params]


def _django_insert(model, objs):
    fields = [f for f in model._meta.concrete_fields if not f.generated and f is not model._meta.pk]
    query = InsertQuery(model)
    query.insert_values(fields, objs)
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [model._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, list(params)


@pytest.mark.django_db
def test_the_cached_statement_and_values_are_what_django_sends():
    store = StoreFactory()
    draft = _draft(store)
    expression = RawSQL("SELECT id FROM new_order", ())
    for child in (*draft.lines, draft.event):
        child.order_id = expression
    with mock.patch("django.utils.timezone.now", return_value=FIXED):
        for model, objs in ((Order, [draft.order]), (OrderLine, draft.lines), (OrderEvent, [draft.event])):
            first = _comparable(insert_statement(model, objs))  # compiled (or from the cache of an earlier test)
            again = _comparable(insert_statement(model, objs))  # from the cache
            assert again == first == _comparable(_django_insert(model, objs)), model.__name__


@pytest.mark.django_db
def test_a_new_order_is_one_insert_statement_with_its_ids_in_order():
    store = StoreFactory()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        order = order_create(store=store, channel="miniapp", order_type="delivery", actor=Actor.system("test"),
                             day_seq=7, lines=[LineInput(name=f"菜{n}", unit_price=Decimal("1.00"), quantity=1,
                                                         sku_code=f"S{n}") for n in range(3)],
                             discounts=[DiscountInput(kind="promotion", name="减", amount=Decimal("0"),
                                                      merchant_part=Decimal("0"))])

    inserts = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(inserts) == 1 and inserts[0].startswith("WITH new_order AS (INSERT INTO")
    lines = list(OrderLine.objects.filter(order=order).order_by("id"))
    assert [(line.pk, line.line_no, line.name) for line in order.lines.all()] == [
        (line.pk, line.line_no, line.name) for line in lines]
    assert [line.line_no for line in lines] == [1, 2, 3]
    assert [d.pk for d in order.discounts.all()] == list(OrderDiscount.objects.filter(order=order).values_list(
        "pk", flat=True))
    event = OrderEvent.objects.get(order=order)
    assert (event.action, event.to_status) == ("create", "pending_payment")
    assert Order.objects.get(pk=order.pk).order_no == order.order_no
