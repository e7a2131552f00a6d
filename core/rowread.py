"""A fixed read of one row and the rows its foreign keys name, as plain SQL built once.

For reads every request makes (authentication): building the ORM query cost more than running
it. ``JoinedRead(base, joins)`` is ``base.objects.select_related(...)`` for a fixed shape: the
SQL is built once per process, each column goes through the converters the ORM would apply
(SQLite hands back strings and naive datetimes where PostgreSQL types them), and the instances
come back linked as ``select_related`` links them (an outer join that found nothing: None).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.db import connection
from django.db.models import Model


@dataclass(frozen=True)
class Join:
    """``model`` joined on ``owner``'s foreign key ``field`` (a field name of ``owner``);
    ``outer`` for a nullable key."""

    model: type[Model]
    owner: type[Model]
    field: str
    outer: bool = False


class JoinedRead:
    def __init__(self, base: type[Model], joins: tuple[Join, ...], where: tuple[str, ...],
                 extra: tuple[tuple[str, str], ...] = (), suffix: str = "") -> None:
        """``where``: one condition per entry, the parameters in the same order: ``"column"``
        (of ``base``) or ``"tN.column"`` (of the N-th model: 0 is ``base``, then the joins in
        order) compared with ``=``; ``"... IN"`` with a list parameter; ``"... IS NULL"`` taking
        none. ``extra``: (attribute, SQL expression over the aliases) set on each base instance
        as read (an annotation; no conversion, so keep to integers and text). ``suffix``: SQL
        after the WHERE clause (``ORDER BY t0.sku_id FOR UPDATE``)."""
        self.base, self.joins, self.where, self.extra, self.suffix = base, joins, where, extra, suffix

    @property
    def models(self) -> list[type[Model]]:
        return [self.base, *(join.model for join in self.joins)]

    def _alias(self, model: type[Model]) -> str:
        return f"t{self.models.index(model)}"

    def _sql(self, in_sizes: tuple[int, ...]) -> str:
        q = connection.ops.quote_name
        columns = [f"{self._alias(model)}.{q(f.column)}" for model in self.models
                   for f in model._meta.concrete_fields]
        columns += [f"({expression})" for _name, expression in self.extra]
        joins = []
        for join in self.joins:
            column = join.owner._meta.get_field(join.field).column
            joins.append(f"{'LEFT OUTER' if join.outer else 'INNER'} JOIN {q(join.model._meta.db_table)} "
                         f"{self._alias(join.model)} ON {self._alias(join.model)}.{q(join.model._meta.pk.column)} "
                         f"= {self._alias(join.owner)}.{q(column)}")
        conditions, sizes = [], iter(in_sizes)
        for entry in self.where:
            target, _sep, op = entry.partition(" ")
            alias, _dot, column = target.rpartition(".")
            target = f"{alias or 't0'}.{q(column)}"
            if op == "IS NULL":
                conditions.append(f"{target} IS NULL")
            elif op == "IN":
                conditions.append(f"{target} IN ({', '.join(['%s'] * next(sizes))})")
            else:
                conditions.append(f"{target} = %s")
        return (f"SELECT {', '.join(columns)} FROM {q(self.base._meta.db_table)} t0 {' '.join(joins)} "
                f"WHERE {' AND '.join(conditions)}{' ' + self.suffix if self.suffix else ''}")

    def _statement(self, params: tuple) -> tuple[str, list]:
        flat, sizes = [], []
        values = iter(params)
        for entry in self.where:
            if entry.endswith(" IS NULL"):
                continue
            value = next(values)
            if entry.endswith(" IN"):
                value = list(value)
                sizes.append(len(value))
                flat += value
            else:
                flat.append(value)
        sizes = tuple(sizes)
        sql = self._sized.get(sizes)
        if sql is None:
            sql = self._sized[sizes] = self._sql(sizes)
        return sql, flat

    @cached_property
    def _sized(self) -> dict[tuple[int, ...], str]:
        return {}

    @cached_property
    def _converters(self) -> list[tuple]:
        converters = []
        for model in self.models:
            for field in model._meta.concrete_fields:
                expression = field.get_col(model._meta.db_table)
                converters.append((expression, connection.ops.get_db_converters(expression)
                                   + expression.get_db_converters(connection)))
        return converters

    def first(self, *params) -> Model | None:
        """The base row matching ``params`` with its joined rows attached, or None."""
        sql, flat = self._statement(params)
        with connection.cursor() as cursor:
            cursor.execute(sql, flat)
            row = cursor.fetchone()
        return None if row is None else self.instance(row)

    def all(self, *params) -> list[Model]:
        """Every base row matching ``params`` (an ``IN`` entry with no value: none, no query)."""
        return [self.instance(row) for row in self.rows(*params)]

    def rows(self, *params) -> list[tuple]:
        """The rows ``all`` reads, as they come from the database (``instance(row)`` builds one;
        the base model's columns come first, in its concrete fields' order)."""
        if any(entry.endswith(" IN") and not value for entry, value in
               zip([e for e in self.where if not e.endswith(" IS NULL")], params, strict=True)):
            return []
        sql, flat = self._statement(params)
        with connection.cursor() as cursor:
            cursor.execute(sql, flat)
            return cursor.fetchall()

    @cached_property
    def _layout(self) -> tuple[list[tuple], list[tuple]]:
        """Built once: the columns that have converters (index, expression, functions), and per
        model its slice of the row, its field names and where its id is."""
        converting = [(i, expression, functions) for i, (expression, functions) in enumerate(self._converters)
                      if functions]
        models, start = [], 0
        for model in self.models:
            attnames = [f.attname for f in model._meta.concrete_fields]
            models.append((model, start, start + len(attnames), attnames, attnames.index(model._meta.pk.attname)))
            start += len(attnames)
        return converting, models

    def instance(self, row) -> Model:
        """The base instance of one row, its joined rows attached (fresh instances each call)."""
        converting, models = self._layout
        width = len(self._converters)
        extras = row[width:]
        values = list(row[:width])
        for i, expression, functions in converting:
            value = values[i]
            for function in functions:
                value = function(value, expression, connection)
            values[i] = value
        instances: dict[type[Model], Model | None] = {}
        alias = connection.alias
        for model, start, end, attnames, pk_index in models:
            chunk = values[start:end]
            instances[model] = None if chunk[pk_index] is None else model.from_db(alias, attnames, chunk)
        for join in self.joins:
            owner = instances[join.owner]
            if owner is not None:
                join.owner._meta.get_field(join.field).set_cached_value(owner, instances[join.model])
        base = instances[self.base]
        for (name, _expression), value in zip(self.extra, extras, strict=True):
            setattr(base, name, value)
        return base
