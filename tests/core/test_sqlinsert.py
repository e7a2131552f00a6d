"""core.sqlinsert: the INSERT compiled once per shape is Django's own, its values are the
ones Django prepares on PostgreSQL (where it is used), and insert_rows writes and identifies
rows as bulk_create does (its own statement on PostgreSQL, bulk_create on SQLite).
core.nativesql: statements reach PostgreSQL with its own placeholders through Django's cursor."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.sql import InsertQuery
from django.db.models.sql.compiler import SQLInsertCompiler
from django.test.utils import CaptureQueriesContext
from psycopg.types.json import Jsonb

from core.nativesql import native_binding, native_cursor, native_placeholders
from core.sqlinsert import _preparer, insert_rows, insert_statement
from core.actors import Actor
from inventory.models import MovementReason, Stock, StockMovement
from orders.models import Order, OrderLine
from orders.services.creation import LineInput, order_draft
from tests.factories import SkuFactory, StoreFactory

FIXED = datetime(2026, 12, 5, 12, 30, 1, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))


def _comparable(values):
    out = []
    for value in values:
        if isinstance(value, list):
            out.append(("list", _comparable(value)))
        elif isinstance(value, Jsonb):  # psycopg's wrapper compares by identity
            out.append(("jsonb", value.obj))
        else:
            out.append((type(value).__name__, value))
    return out


def _django_insert(model, objs, *, values=True):
    """The INSERT Django compiles for ``objs``: its generic multi-row VALUES (``values``), or
    what its backend's compiler picks (UNNEST for several rows on PostgreSQL)."""
    fields = [f for f in model._meta.concrete_fields if not f.generated and f is not model._meta.pk]
    query = InsertQuery(model)
    query.insert_values(fields, objs)
    compiler = (SQLInsertCompiler(query, connection, connection.alias) if values
                else query.get_compiler(connection=connection))
    compiler.returning_fields = [model._meta.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, list(params)


def _movements(stock, n):
    return [StockMovement(stock=stock, delta=-(i + 1), reason=MovementReason.ORDER, reference=f"R{i}",
                          note="" if i % 2 else "备注", written_off=i) for i in range(n)]


@pytest.mark.postgres_only
@pytest.mark.django_db
@pytest.mark.parametrize("rows", [1, 2, 5])
def test_statement_and_values_are_what_django_sends(rows):
    """Django's multi-row VALUES, where its PostgreSQL compiler would pick UNNEST for several rows."""
    store = StoreFactory()
    stock = Stock.objects.create(store=store, sku=SkuFactory(brand=store.brand), on_hand=9)
    with mock.patch("django.utils.timezone.now", return_value=FIXED):
        objs = _movements(stock, rows)
        first = insert_statement(StockMovement, objs)  # compiled (or from the cache of an earlier test)
        again = insert_statement(StockMovement, objs)  # from the cache
        django = _django_insert(StockMovement, objs)
    assert again[0] == first[0] == django[0]
    assert _comparable(again[1]) == _comparable(first[1]) == _comparable(django[1])
    assert " VALUES " in first[0]
    assert (" SELECT * FROM UNNEST(" in _django_insert(StockMovement, objs, values=False)[0]) == (rows > 1)


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_orders_values_of_every_kind_are_what_django_prepares():
    """Orders keep a multi-row VALUES (their raw payload is a DocumentJSONField); text, keys,
    decimals, dates, aware and empty datetimes, small integers and JSON, as Django prepares them."""
    store = StoreFactory()
    drafts = [order_draft(store=store, channel="miniapp", order_type="delivery" if n else "pickup",
                          actor=Actor.system("test"), day_seq=40 + n, placed_at=FIXED + timedelta(minutes=n),
                          lines=[LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, sku_code="HC1")],
                          delivery_fee=Decimal("5.00") if n else Decimal("0.00"),
                          address={"detail": "漕溪北路398号"} if n else {}, raw_payload={"n": n},
                          paid=n == 2)
              for n in range(3)]
    orders = [draft.order for draft in drafts]
    with mock.patch("django.utils.timezone.now", return_value=FIXED):
        first = insert_statement(Order, orders)
        again = insert_statement(Order, orders)
        django = _django_insert(Order, orders)
    assert again[0] == first[0] == django[0]
    assert " SELECT * FROM UNNEST(" not in django[0]
    assert _comparable(again[1]) == _comparable(first[1]) == _comparable(django[1])


@pytest.mark.django_db
@pytest.mark.postgres_only
@pytest.mark.parametrize(("name", "value"), [
    ("business_date", datetime(2026, 12, 5, 12, 0, tzinfo=ZoneInfo("UTC"))),  # a datetime for a date
    ("day_seq", "7"),  # text for an integer
    ("prep_minutes", Decimal("15")),
    ("day_seq", None),
    ("day_seq", 7),
    ("subtotal", "12.5"),  # text for a decimal
    ("subtotal", Decimal("12.50")),
    ("order_no", 123),  # an integer for text
    ("order_no", "A1"),
    ("store", "5"),  # text for a key
    ("store", 5),
    ("after_sales_open", 1),  # an integer for a boolean
    ("after_sales_open", False),
    ("address", {"a": [1, 2]}),
    ("address", ["x", {"y": 1}]),
    ("address", "text"),  # a JSON string: through Django
    ("address", None),
    ("raw_payload", {"订单": "中文", "n": 1.5}),
    ("business_date", date(2026, 12, 5)),
    ("placed_at", FIXED),
    ("paid_at", None),
    ("status", "paid"),
])
def test_each_value_is_what_get_db_prep_save_gives(name, value):
    """The short cuts hand on only what Django hands on; anything else goes through Django."""
    field = Order._meta.get_field(name)
    assert _comparable([_preparer(field)(value, connection)]) == _comparable(
        [field.get_db_prep_save(value, connection=connection)])


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_a_naive_datetime_is_made_aware_as_django_makes_it():
    field = Order._meta.get_field("placed_at")
    naive = datetime(2026, 12, 5, 12, 0)
    with pytest.warns(RuntimeWarning):
        ours = _preparer(field)(naive, connection)
    with pytest.warns(RuntimeWarning):
        theirs = field.get_db_prep_save(naive, connection=connection)
    assert ours == theirs and ours.tzinfo is not None


@pytest.mark.django_db
def test_insert_rows_writes_the_rows_and_sets_ids_in_order():
    store = StoreFactory()
    stock = Stock.objects.create(store=store, sku=SkuFactory(brand=store.brand), on_hand=9)
    objs = _movements(stock, 4)
    with CaptureQueriesContext(connection) as queries:
        insert_rows(StockMovement, objs)
    assert len([q for q in queries.captured_queries if q["sql"].startswith("INSERT")]) == 1
    assert all(obj.pk is not None and not obj._state.adding and obj._state.db == "default" for obj in objs)
    stored = list(StockMovement.objects.filter(stock=stock).order_by("pk").values_list(
        "pk", "delta", "reference", "note", "written_off"))
    assert stored == [(obj.pk, obj.delta, obj.reference, obj.note, obj.written_off) for obj in objs]
    assert [row[1] for row in stored] == [-1, -2, -3, -4]
    with CaptureQueriesContext(connection) as none:
        insert_rows(StockMovement, [])  # nothing to write: no statement
    assert none.captured_queries == []


@pytest.mark.django_db
def test_insert_rows_stores_what_bulk_create_stores():
    store = StoreFactory()
    stock = Stock.objects.create(store=store, sku=SkuFactory(brand=store.brand), on_hand=9)
    ours, theirs = _movements(stock, 5), _movements(stock, 5)
    for n, obj in enumerate(theirs):
        obj.reference = f"B{n}"
    with mock.patch("django.utils.timezone.now", return_value=FIXED):
        insert_rows(StockMovement, ours)
        StockMovement.objects.bulk_create(theirs)
    columns = ("stock_id", "delta", "reason", "note", "written_off", "created_at")
    stored = {row[0]: row[1:] for row in StockMovement.objects.values_list("reference", *columns)}
    assert [stored[f"R{n}"] for n in range(5)] == [stored[f"B{n}"] for n in range(5)]
    assert [obj.pk for obj in ours] == sorted(obj.pk for obj in ours)


@pytest.mark.django_db
def test_insert_rows_fails_like_bulk_create_on_a_unique_row():
    store = StoreFactory()
    stock = Stock.objects.create(store=store, sku=SkuFactory(brand=store.brand), on_hand=9)
    insert_rows(StockMovement, _movements(stock, 1))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(StockMovement, _movements(stock, 2))  # R0 again for the same stock and reason
    assert StockMovement.objects.filter(stock=stock).count() == 1


@pytest.mark.django_db
def test_rows_with_their_id_set_go_through_bulk_create():
    store = StoreFactory()
    stock = Stock.objects.create(store=store, sku=SkuFactory(brand=store.brand), on_hand=9)
    obj = _movements(stock, 1)[0]
    obj.pk = 987654
    insert_rows(StockMovement, [obj])
    assert StockMovement.objects.get(pk=987654).reference == "R0"


def test_native_placeholders():
    assert native_placeholders("SELECT %s, %s WHERE a LIKE 'x%%'") == "SELECT $1, $2 WHERE a LIKE 'x%'"
    assert native_placeholders("SELECT 1") == "SELECT 1"
    with pytest.raises(ValueError):
        native_placeholders("SELECT $1")
    with pytest.raises(ValueError):
        native_placeholders("SELECT %(name)s")


@pytest.mark.django_db
def test_native_cursor_runs_through_djangos_cursor():
    """Logged as sent with %s (the query log, CaptureQueriesContext), errors translated."""
    with CaptureQueriesContext(connection) as queries, native_cursor() as cursor:
        cursor.execute("SELECT %s + %s, '100%%'", [40, 2])
        assert cursor.fetchone() == (42, "100%")
    assert queries.captured_queries[-1]["sql"].startswith("SELECT ")
    with pytest.raises(IntegrityError), transaction.atomic(), native_cursor() as cursor:
        cursor.execute(f"INSERT INTO {OrderLine._meta.db_table} (order_id) VALUES (%s)", [None])


@pytest.mark.django_db
def test_native_binding_follows_the_settings():
    if connection.vendor != "postgresql":
        assert native_binding() is False
        return
    with mock.patch.dict(connection.settings_dict["OPTIONS"], {"server_side_binding": True}):  # the default
        assert native_binding() is True
        with native_cursor() as cursor:
            assert type(cursor.cursor).__name__ == "_NativeCursor"
            cursor.execute("SELECT %s::int, '5%%'", [1])
            assert cursor.fetchone() == (1, "5%")
    with mock.patch.dict(connection.settings_dict["OPTIONS"], {"server_side_binding": False}):  # PgBouncer
        assert native_binding() is False
        with native_cursor() as cursor:  # Django's plain cursor then
            assert type(cursor.cursor).__name__ != "_NativeCursor"
            cursor.execute("SELECT %s::int, '5%%'", [1])
            assert cursor.fetchone() == (1, "5%")
