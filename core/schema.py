"""The OpenAPI schema's conventions, in one place (drf-spectacular's ``DEFAULT_SCHEMA_CLASS``).

``ApiAutoSchema`` adds what every operation of the APIs shares and what no view
should have to repeat:

- the error answers: the one error shape of CONTRACTS.md (``core.api.error_body``)
  as the ``Error`` component, on each status an operation can give (see
  ``error_statuses``);
- the ``Idempotency-Key`` header on every POST (``core.idempotency``);
- one tag per API (customer, pos, backoffice), so Swagger UI shows each API as a group;
- unique component names for the serializers nested in a view (``class Input``):
  named after the operation, ``pos_order_accept`` -> ``PosOrderAcceptInput``;
- request fields as strict as DRF validates them, where drf-spectacular leaves them
  looser: a string that may not be blank has ``minLength`` 1 and a non-space (unless a
  pattern already says more), a list that may not be empty ``minItems`` 1 (and its
  ``max_length`` as ``maxItems``), a decimal string at least one digit. A client built
  from the schema (or schemathesis) then sends what the API accepts.

A view that can give a status these rules cannot see (a signed callback's 401, an
unknown brand's 404 on login) names it itself:
``extend_schema(responses={..., 401: error_response("Bad signature.")})``.
"""

from __future__ import annotations

import sys

from django.core.validators import RegexValidator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import get_doc
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.views import APIView

from core.idempotency import HEADER as IDEMPOTENCY_HEADER

ERROR_DESCRIPTIONS = {
    400: "Invalid input: a malformed body or query, a field that does not validate "
         "(`detail` per field), a bad Idempotency-Key.",
    401: "No credentials, bad credentials, or (signed callbacks) a bad signature.",
    403: "Authenticated, but this role may not do this.",
    404: "Not found, or it belongs to another tenant.",
    409: "Not allowed in the current state, or a conflicting concurrent change "
         "(`detail` carries the current status); or the same Idempotency-Key still in progress.",
    415: "The body is not JSON (`Content-Type` must be application/json).",
    422: "The Idempotency-Key was already used with a different request body.",
    429: "Throttled; `Retry-After` says when to try again.",
}
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# One tag per API (Swagger UI groups by tag), by path prefix, most specific first.
API_TAGS = (("/api/pos/v1/", "pos"), ("/api/backoffice/v1/", "backoffice"), ("/api/v1/", "customer"))


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine code, e.g. `transition_not_allowed`.")
    message = serializers.CharField(help_text="Human-readable, in the request's language.")
    detail = serializers.DictField(help_text="Per-field errors or facts about the refusal; `{}` when none.")


class Error(serializers.Serializer):
    """The one error shape of every API error answer (``core.api.error_body``)."""

    error = ErrorDetail()


def error_response(description: str) -> OpenApiResponse:
    """An error answer a view names itself (``extend_schema(responses={401: error_response("...")})``)."""
    return OpenApiResponse(Error, description=description)


def _camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def _enclosing_class(cls: type) -> type | None:
    """The class ``cls`` is defined in (``OrderAcceptApi`` for ``OrderAcceptApi.Input``), or None."""
    outer_path = cls.__qualname__.split(".")[:-1]
    if not outer_path or "<locals>" in outer_path:
        return None
    outer = sys.modules.get(cls.__module__)
    for name in outer_path:
        outer = getattr(outer, name, None)
    return outer if isinstance(outer, type) else None


class ApiAutoSchema(AutoSchema):
    def error_statuses(self) -> set[int]:
        """The error statuses this operation can answer with, from what the view declares.

        400 for every write and every read with query parameters (a body or query that
        does not validate); 401 and 403 where credentials are needed; 404 where the path
        names something or the list pages (a page past the end); 409 for every write (a
        state that refuses it, a concurrent change, an Idempotency-Key in flight) and 415
        (a body that is not JSON); 422 for every POST (an Idempotency-Key reused); 429
        where a throttle applies.
        """
        statuses = set()
        has_query = any(p.get("in") == "query" for p in self._get_parameters())
        if self.method in WRITE_METHODS or has_query:
            statuses.add(400)
        if self.view.get_authenticators():
            statuses |= {401, 403}
        if "{" in self.path or self._get_paginator() is not None:
            statuses.add(404)
        if self.method in WRITE_METHODS:
            statuses |= {409, 415}
        if self.method == "POST":
            statuses.add(422)
        if self.view.get_throttles():
            statuses.add(429)
        return statuses

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        error_ref = self.resolve_serializer(Error, "response").ref
        responses = operation["responses"]
        for status in sorted(self.error_statuses()):
            responses.setdefault(str(status), {
                "description": ERROR_DESCRIPTIONS[status],
                "content": {"application/json": {"schema": error_ref}},
            })
        return operation

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if direction != "request" or not isinstance(schema, dict) or getattr(field, "read_only", False):
            return schema
        if isinstance(field, serializers.ListSerializer | serializers.ListField):
            if not field.allow_empty:
                schema["minItems"] = max(schema.get("minItems", 0), 1)
            if field.max_length is not None:
                schema["maxItems"] = field.max_length
        elif isinstance(field, serializers.DecimalField) and "pattern" in schema and field.max_whole_digits:
            whole = field.max_whole_digits
            schema["pattern"] = (fr"^-?(?:\d{{1,{whole}}}(?:\.\d{{0,{field.decimal_places}}})?"
                                 fr"|\.\d{{1,{field.decimal_places}}})$")
        elif (isinstance(field, serializers.CharField) and not field.allow_blank and schema.get("type") == "string"
              and "pattern" not in schema and "enum" not in schema
              and not any(isinstance(v, RegexValidator) for v in field.validators)):
            schema["minLength"] = max(schema.get("minLength", 0), 1)
            if field.trim_whitespace:
                schema["pattern"] = r"\S"  # blank once trimmed is blank
        return schema

    def get_description(self):
        """The method's docstring, else the view's own: not one inherited from a base view
        ("Base of every POS view" describes no operation)."""
        method = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        own_doc = type(self.view).__dict__.get("__doc__")
        return get_doc(method) or (get_doc(type(self.view)) if own_doc else "")

    def get_tags(self):
        for prefix, tag in API_TAGS:
            if self.path.startswith(prefix):
                return [tag]
        return super().get_tags()

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.method == "POST":
            parameters = [*parameters, OpenApiParameter(
                IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
                pattern=r"^[!-~]{1,64}$",
                description="Makes a retry safe: the first completed answer for this key is stored "
                            "(at least 24 h) and replayed to a retry with the same body.")]
        return parameters

    def get_serializer_name(self, serializer, direction):
        """``PosOrderAcceptInput`` for ``OrderAcceptApi.Input`` of operation ``pos_order_accept``:
        every view may call its serializers ``Input`` and ``Output``."""
        cls = type(serializer)
        parts = cls.__qualname__.split(".")
        outer = _enclosing_class(cls)
        while outer is not None and not issubclass(outer, APIView):
            outer = _enclosing_class(outer)
        if outer is None:
            return super().get_serializer_name(serializer, direction)
        nested = parts[len(outer.__qualname__.split(".")):]
        return _camel(self.get_operation_id()) + "".join(nested)
