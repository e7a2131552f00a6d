"""Model fields of our own."""

from django.db import models


class DocumentJSONField(models.JSONField):
    """A JSONField holding whole documents (a platform's order payload, kilobytes each).

    Bulk inserts of rows with such a field use a multi-row VALUES, not Django's UNNEST
    of one array per column: for UNNEST psycopg writes every document into a text
    array literal, escaping it in Python, which costs more than the planning UNNEST
    saves (25 pulled orders: 10.3 ms with UNNEST, 6.8 ms with VALUES; docs/benchmarks.md).
    Defining ``get_placeholder`` is what makes Django's PostgreSQL compiler keep VALUES
    (django.db.backends.postgresql.compiler.SQLInsertCompiler); the placeholder is the
    plain one. Stored exactly as a JSONField: the column is the same jsonb.
    """

    def get_placeholder(self, value, compiler, connection) -> str:
        return "%s"
