"""Long statements built once per process, sent with PostgreSQL's own placeholders.

psycopg turns the ``%s`` placeholders of a statement into PostgreSQL's ``$1, $2, ...``
on every execute, and keeps the result only for statements shorter than 4,096
characters with at most 50 parameters. A multi-row INSERT of orders (51 columns a
row) is longer than that: psycopg split it with a regular expression on every
batch (1.4 ms for 16 orders, about a tenth of a web worker's CPU per hot-SKU order;
docs/benchmarks.md). ``native_cursor()`` gives a Django cursor (its wrappers, query
log and error translation as usual) whose statements are converted once per
distinct text here and handed to psycopg's ``RawCursor``, which sends them as they
are. With server-side binding only (the default, ``DB_SERVER_SIDE_BINDING``): with
client-side binding, and on SQLite, it is Django's plain cursor.

For statements built by code (Django's compiler, fixed SQL), not for text holding
string literals: a ``%s`` or ``$`` inside a literal would be taken for a placeholder,
so a ``$`` or any ``%`` other than ``%s`` and ``%%`` is refused.
"""

from __future__ import annotations

import re
from functools import lru_cache

import psycopg
from django.db import connection

_PLACEHOLDER = re.compile(r"%(.)", re.DOTALL)


@lru_cache(maxsize=1024)
def native_placeholders(sql: str) -> str:
    """``sql`` with ``%s`` as ``$1, $2, ...`` in order and ``%%`` as ``%``."""
    if "$" in sql:
        raise ValueError("a statement for native placeholders must not contain '$'")
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        if match.group(1) == "%":
            return "%"
        if match.group(1) != "s":
            raise ValueError(f"unsupported placeholder %{match.group(1)}")
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(replace, sql)


def native_binding() -> bool:
    """Whether the default connection sends parameters apart from the statement (psycopg's
    server-side binding), which native placeholders need."""
    return connection.vendor == "postgresql" and connection.settings_dict["OPTIONS"].get("server_side_binding") is True


def native_cursor():
    """A cursor of the default connection for ``execute(sql, params)`` with ``%s``
    placeholders (see the module docstring); use it as ``with native_cursor() as cursor``."""
    if not native_binding():
        return connection.cursor()
    # What connection.cursor() does, with psycopg's RawCursor under Django's wrapper.
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        raw = _NativeCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


class _NativeCursor(psycopg.RawCursor):
    """psycopg's cursor for ``$n`` placeholders, given ``%s`` ones (converted once per text)."""

    def execute(self, query, params=None, **kwargs):
        return super().execute(native_placeholders(query), params, **kwargs)

    def executemany(self, query, params_seq, **kwargs):
        return super().executemany(native_placeholders(query), params_seq, **kwargs)
