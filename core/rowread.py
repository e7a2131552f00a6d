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
    def __init__(self, base: type[Model], joins: tuple[Join, ...], where: tuple[str, ...]) -> None:
        """``where``: columns of ``base`` compared with ``=`` to the parameters, in order; a
        column named ``<name> IS NULL`` is taken as written."""
        self.base, self.joins, self.where = base, joins, where

    @property
    def models(self) -> list[type[Model]]:
        return [self.base, *(join.model for join in self.joins)]

    def _alias(self, model: type[Model]) -> str:
        return f"t{self.models.index(model)}"

    @cached_property
    def sql(self) -> str:
        q = connection.ops.quote_name
        columns = [f"{self._alias(model)}.{q(f.column)}" for model in self.models
                   for f in model._meta.concrete_fields]
        joins = []
        for join in self.joins:
            column = join.owner._meta.get_field(join.field).column
            joins.append(f"{'LEFT OUTER' if join.outer else 'INNER'} JOIN {q(join.model._meta.db_table)} "
                         f"{self._alias(join.model)} ON {self._alias(join.model)}.{q(join.model._meta.pk.column)} "
                         f"= {self._alias(join.owner)}.{q(column)}")
        conditions = [f"t0.{q(c[:-len(' IS NULL')])} IS NULL" if c.endswith(" IS NULL") else f"t0.{q(c)} = %s"
                      for c in self.where]
        return (f"SELECT {', '.join(columns)} FROM {q(self.base._meta.db_table)} t0 {' '.join(joins)} "
                f"WHERE {' AND '.join(conditions)}")

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
        with connection.cursor() as cursor:
            cursor.execute(self.sql, list(params))
            row = cursor.fetchone()
        if row is None:
            return None
        values = []
        for (expression, functions), value in zip(self._converters, row, strict=True):
            for function in functions:
                value = function(value, expression, connection)
            values.append(value)
        instances: dict[type[Model], Model | None] = {}
        start = 0
        for model in self.models:
            fields = model._meta.concrete_fields
            chunk = values[start:start + len(fields)]
            start += len(fields)
            pk = chunk[[f.attname for f in fields].index(model._meta.pk.attname)]
            instances[model] = None if pk is None else model.from_db(connection.alias, [f.attname for f in fields],
                                                                     chunk)
        for join in self.joins:
            owner = instances[join.owner]
            if owner is not None:
                join.owner._meta.get_field(join.field).set_cached_value(owner, instances[join.model])
        return instances[self.base]
