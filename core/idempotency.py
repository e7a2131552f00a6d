"""Idempotency-Key handling for every POST of the public APIs.

Use ``IdempotentAPIView`` (or mix ``IdempotencyMixin`` into a DRF view): a POST
that carries ``Idempotency-Key`` runs in one transaction together with the
reservation of the key; the rendered response is stored and replayed byte for
byte to a retry with the same body; the same key with another body gets 422.
"""

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone

from core.errors import IdempotencyKeyInvalid, IdempotencyKeyReused
from core.models import IdempotencyRecord

HEADER = "Idempotency-Key"


class _Replay(Exception):
    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record


def idempotency_key_check(*, raw_key: str) -> str:
    if not (1 <= len(raw_key) <= 64) or not raw_key.isprintable():
        raise IdempotencyKeyInvalid()
    return raw_key


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(part)
        digest.update(b"\x00")
    return digest.hexdigest()


def credential_for(request) -> str:
    """Whose key space a key belongs to: the authenticated principal."""
    scope = getattr(request.auth, "idempotency_scope", None)
    if scope:
        return str(scope)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return "anonymous"


def idempotency_records_purge(*, now=None) -> int:
    """Delete stored responses older than IDEMPOTENCY_TTL_HOURS (at least 24 h)."""
    now = now or timezone.now()
    hours = max(24, settings.IDEMPOTENCY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=now - timedelta(hours=hours)).delete()
    return deleted


class IdempotencyMixin:
    """DRF view mixin; must come before APIView in the bases."""

    _idempotency_record: IdempotencyRecord | None = None

    def dispatch(self, request, *args, **kwargs):
        raw_key = request.headers.get(HEADER)
        if request.method != "POST" or raw_key is None:
            return super().dispatch(request, *args, **kwargs)
        # The body must be read before DRF wraps the request.
        self._idempotency_fingerprint = request_fingerprint(
            method=request.method, path=request.get_full_path(), body=request.body
        )
        self._idempotency_raw_key = raw_key
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            record = self._idempotency_record
            if record is not None:
                if hasattr(response, "render") and not response.is_rendered:
                    response.render()
                record.status_code = response.status_code
                record.content_type = response.get("Content-Type", "")
                record.body = bytes(response.content)
                record.save(update_fields=["status_code", "content_type", "body"])
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raw_key = getattr(self, "_idempotency_raw_key", None)
        if raw_key is None:
            return
        key = idempotency_key_check(raw_key=raw_key)
        credential = credential_for(request)
        try:
            with transaction.atomic():
                self._idempotency_record = IdempotencyRecord.objects.create(
                    credential=credential, key=key, fingerprint=self._idempotency_fingerprint
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.get(credential=credential, key=key)
            if existing.fingerprint != self._idempotency_fingerprint:
                raise IdempotencyKeyReused(detail={"key": key}) from None
            raise _Replay(existing) from None

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            record = exc.record
            response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)
