"""Django's own multi-row INSERT, compiled once per shape: for the hot write paths.

``bulk_create`` compiles its INSERT on every call, and ``get_db_prep_save`` prepares
each value through the connection proxy: for a batch of 16 orders (51 columns) that
was more CPU than sending it (docs/benchmarks.md). Here the statement Django's
compiler writes for ``objs`` (every concrete field but the id, ``pre_save`` applied,
``RETURNING id``) is kept per model, row count and expression columns; after that only
the values are prepared, as Django prepares them. The values that Django's PostgreSQL
backend hands on unchanged (text, booleans, decimals, dates, aware datetimes, integer
keys, None for those fields) skip the call, and a JSON object or array goes straight
to the backend's JSON adapter. tests/core/test_sqlinsert.py holds statements and values
equal to Django's.

The statement is always Django's multi-row VALUES (its generic compiler), never the
UNNEST of one array per column its PostgreSQL compiler picks for several rows: UNNEST
saves PostgreSQL some planning, but psycopg writes every array as a text literal,
escaping each element in Python, and that cost more than it saved once the statement
is sent with native placeholders (``core.nativesql``) and prepared by the server after
two runs (a batch of 16 placements: 7.5 ms of CPU with UNNEST, 6.5 ms with VALUES).

``insert_rows(model, objs)`` is ``model.objects.bulk_create(objs)`` for models without
signals on create: the ids are set on the objects in the order given (the ids of a
multi-row INSERT rise in its VALUES order, which is what bulk_create relies on too).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    IntegerField,
    JSONField,
    PositiveBigIntegerField,
    PositiveIntegerField,
    PositiveSmallIntegerField,
    SmallAutoField,
    SmallIntegerField,
    TextField,
)
from django.db.models.sql import InsertQuery
from django.db.models.sql.compiler import SQLInsertCompiler

from core.nativesql import native_binding, native_cursor

# Field classes whose get_db_prep_save on PostgreSQL returns a value of these types, and None,
# as it is (a subclass counts when it prepares values as they do: _prepares_as).
_UNCHANGED = {CharField: (str,), TextField: (str,), BooleanField: (bool,), DecimalField: (Decimal,),
              DateField: (date,)}
_INTEGERS = {IntegerField, PositiveIntegerField, SmallIntegerField, BigIntegerField, PositiveSmallIntegerField,
             PositiveBigIntegerField}
_AUTO = {AutoField, BigAutoField, SmallAutoField}


_PREPARING = ("get_db_prep_save", "get_db_prep_value", "get_prep_value", "to_python")


def _prepares_as(cls, base) -> bool:
    """``cls`` is ``base`` or a subclass that prepares values with ``base``'s own methods
    (django-fsm's FSMField is a CharField so; core.fields.DocumentJSONField a JSONField)."""
    return issubclass(cls, base) and all(getattr(cls, name) is getattr(base, name) for name in _PREPARING)


def _preparer(field):
    """``field.get_db_prep_save(value, connection=conn)`` as a function of (value, conn)."""
    cls = type(field)
    if field.is_relation and type(field.target_field) in _AUTO:
        return lambda value, conn: value if value is None or type(value) is int else field.get_db_prep_save(
            value, connection=conn)
    if cls is DateTimeField:
        return lambda value, conn: value if value is None or (
            type(value) is datetime and value.tzinfo is not None) else field.get_db_prep_save(value, connection=conn)
    if cls in _INTEGERS:
        internal = field.get_internal_type()

        def prepare(value, conn):
            if value is None:
                return None
            if type(value) is int:  # what IntegerField.get_db_prep_value ends with
                return conn.ops.adapt_integerfield_value(value, internal)
            return field.get_db_prep_save(value, connection=conn)

        return prepare
    if _prepares_as(cls, JSONField):
        encoder = field.encoder
        return lambda value, conn: conn.ops.adapt_json_value(value, encoder) if type(value) in (
            dict, list) else field.get_db_prep_save(value, connection=conn)
    kinds = next((kinds for base, kinds in _UNCHANGED.items() if _prepares_as(cls, base)), None)
    if kinds is not None:
        return lambda value, conn: value if value is None or type(value) in kinds else field.get_db_prep_save(
            value, connection=conn)
    return lambda value, conn: field.get_db_prep_save(value, connection=conn)


# model -> (fields in INSERT order, their preparers)
_FIELDS: dict[type, tuple[list, list]] = {}
# (model, which values of each row are SQL expressions) -> statement
_STATEMENTS: dict[tuple, str] = {}


def _model_fields(model) -> tuple[list, list]:
    known = _FIELDS.get(model)
    if known is None:
        fields = [f for f in model._meta.concrete_fields if not f.generated and f is not model._meta.pk]
        known = _FIELDS[model] = (fields, [_preparer(f) for f in fields])
    return known


def insert_statement(model, objs: list) -> tuple[str, list]:
    """Django's multi-row VALUES ``INSERT ... RETURNING id`` of ``objs`` on the default database
    (the rows ``bulk_create(objs)`` writes) and its parameters; the short cuts of the values are
    PostgreSQL's. ``pre_save`` is applied to the objects (auto_now fields are set), as by bulk_create."""
    conn = connections[DEFAULT_DB_ALIAS]
    fields, preparers = _model_fields(model)
    rows = [[field.pre_save(obj, True) for field in fields] for obj in objs]
    key = (model, tuple(tuple(hasattr(value, "as_sql") for value in row) for row in rows))
    sql = _STATEMENTS.get(key)
    if sql is None:
        query = InsertQuery(model)
        query.insert_values(fields, objs)
        compiler = SQLInsertCompiler(query, conn, conn.alias)  # multi-row VALUES, never UNNEST
        compiler.returning_fields = [model._meta.pk]
        [(sql, params)] = compiler.as_sql()
        _STATEMENTS[key] = sql
        return sql, list(params)
    return sql, [prepare(value, conn) for row in rows for prepare, value in zip(preparers, row, strict=True)
                 if not hasattr(value, "as_sql")]


def insert_rows(model, objs: list) -> None:
    """``model.objects.bulk_create(objs)``: one INSERT compiled once per shape on PostgreSQL
    with server-side binding, Django's bulk_create elsewhere."""
    if not objs:
        return
    if not native_binding() or any(obj.pk is not None for obj in objs):
        model.objects.bulk_create(objs)
        return
    sql, params = insert_statement(model, objs)
    with native_cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    alias = connections[DEFAULT_DB_ALIAS].alias
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, alias
