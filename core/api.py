"""API plumbing shared by every app: the error shape, pagination, base views."""

import copy
import logging
from decimal import Decimal

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views import defaults
from rest_framework import exceptions as drf_exceptions
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError, NotFound
from core.idempotency import IdempotencyMixin

logger = logging.getLogger(__name__)

# The largest id a BigAutoField holds. An input id is bounded by it: a larger one names
# nothing, and SQLite cannot even bind it (OverflowError, a 500).
ID_MAX = 2**63 - 1

_DRF_CODES = {
    drf_exceptions.ParseError: "malformed_request",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.PermissionDenied: "permission_denied",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
    drf_exceptions.ValidationError: "invalid_input",
}


CENT = Decimal("0.01")


def money_text(value) -> str:
    """An amount as the APIs' DecimalField(decimal_places=2) renders it ("12.50")."""
    return f"{Decimal(value).quantize(CENT):f}"


def datetime_text(value) -> str | None:
    """A datetime as DRF's DateTimeField renders it: local time, ISO 8601, "Z" for UTC. For
    answers built by hand beside a serializer that must stay byte for byte the same."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class ConstantChoiceField(serializers.ChoiceField):
    """A ChoiceField whose ``choices`` are a constant (a model's ``Choices``): DRF clones a
    serializer's fields for every request it validates, deep-copying their arguments, and
    deep-copying the lazily translated labels of the choices was 4% of an order create.
    Here they are passed on as they are; everything else is cloned as DRF clones it."""

    def __deepcopy__(self, memo):
        kwargs = {key: value if key in ("choices", "validators", "regex") else copy.deepcopy(value, memo)
                  for key, value in self._kwargs.items()}
        return self.__class__(*self._args, **kwargs)


def error_body(*, code: str, message, detail: dict | None = None) -> dict:
    return {"error": {"code": code, "message": str(message), "detail": detail or {}}}


def exception_handler(exc, context):
    """The one error shape of CONTRACTS.md: {"error": {code, message, detail}}."""
    if isinstance(exc, DomainError):
        return Response(
            error_body(code=exc.code, message=exc.message, detail=exc.detail), status=exc.status_code
        )
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    if not isinstance(exc, drf_exceptions.APIException):
        return None  # a bug: let Django answer 500 and log it

    code = _DRF_CODES.get(type(exc), "error")
    headers = {}
    if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
        headers["Retry-After"] = str(int(exc.wait))
    if isinstance(exc, drf_exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        message = _("The input is not valid.")
        return Response(error_body(code=code, message=message, detail=detail), status=400)
    if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
        # DRF would answer 403 when no authenticator offers a challenge; the contract says 401,
        # with the challenge of the view's first authenticator (RFC 9110: a 401 names its scheme).
        view, request = context.get("view"), context.get("request")
        challenge = view.get_authenticate_header(request) if view is not None and request is not None else None
        if challenge:
            headers["WWW-Authenticate"] = challenge
        return Response(error_body(code=code, message=exc.detail), status=status.HTTP_401_UNAUTHORIZED,
                        headers=headers)
    return Response(error_body(code=code, message=exc.detail), status=exc.status_code, headers=headers)


def not_found_view(request, exception):
    """``handler404``: under /api/ a path that names no endpoint (letters where a store id
    goes, a slash inside an order number) answers in the error shape like every API error;
    elsewhere Django's own page."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code="not_found", message=_("Not found.")), status=404)
    return defaults.page_not_found(request, exception)


def bad_request_view(request, exception):
    """``handler400``: what Django refuses before a view answers (a body past
    DATA_UPLOAD_MAX_MEMORY_SIZE, a disallowed Host) is, under /api/, a 400 in the error shape."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(code="malformed_request", message=_("The request could not be processed.")),
                            status=400)
    return defaults.bad_request(request, exception)


class DefaultPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class BaseAPIView(IdempotencyMixin, APIView):
    """Base of every API view: idempotent POSTs, the shared error shape."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # PostgreSQL compares no text holding a NUL character (the query itself fails):
        # a path naming one names nothing.
        if any(isinstance(value, str) and "\x00" in value for value in kwargs.values()):
            raise NotFound()
