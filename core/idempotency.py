"""Idempotency-Key handling for every POST of the public APIs.

Use ``IdempotentAPIView`` (or mix ``IdempotencyMixin`` into a DRF view): a POST
that carries ``Idempotency-Key`` runs in one transaction together with the
reservation of the key; the rendered response is stored and replayed byte for
byte to a retry with the same body; the same key with another body gets 422.

A view whose work calls a third party over the network (starting a payment)
sets ``idempotency_atomic = False``: holding a transaction across an HTTP call
to somebody else is what this project never does. The key is then reserved in
its own short transaction (a row without a status code: "in progress"), the
view runs outside any transaction (its service must itself be idempotent), and
the answer is stored when it is known. A retry while the first request is still
running gets 409 ``idempotency_key_in_progress``; a reservation left behind by
a crashed process is taken over after ``STALE_RESERVATION``; a 5xx answer is
not stored (the reservation is dropped), so the retry runs again.
"""

import hashlib
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from core.errors import IdempotencyKeyInProgress, IdempotencyKeyInvalid, IdempotencyKeyReused
from core.groupcommit import GroupCommit, Submitted
from core.models import IdempotencyRecord
from core.nativesql import native_cursor

HEADER = "Idempotency-Key"
# A reservation this old without an answer belongs to a request that died.
STALE_RESERVATION = timedelta(seconds=120)


class _Replay(Exception):
    def __init__(self, record: IdempotencyRecord) -> None:
        self.record = record


def _record_reserve(*, credential: str, key: str, fingerprint: str) -> IdempotencyRecord:
    """The reservation: one INSERT of a record without an answer (written once here: this runs
    on every POST with a key). Raises IntegrityError if the key is taken. In autocommit on
    PostgreSQL, the reservations of requests arriving together in this process are one
    INSERT (``_RESERVATIONS``); otherwise the same INSERT for this one alone."""
    item = _Reservation(record=IdempotencyRecord(credential=credential, key=key, fingerprint=fingerprint,
                                                 created_at=timezone.now()))
    if (connection.vendor == "postgresql" and not connection.in_atomic_block
            and int(settings.REQUEST_GROUP_MAX) > 1):
        return _RESERVATIONS.submit(item)
    _reservations_write([item])
    return item.outcome()


@dataclass(eq=False, kw_only=True)
class _Reservation(Submitted):
    record: IdempotencyRecord  # to insert; the result once it is


def _reservations_write(batch: list[_Reservation]) -> None:
    """The reservations of ``batch`` in one ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
    (in autocommit each is committed when its request goes on); a key taken already, or twice
    in the batch, gets IntegrityError, which the request handles as a taken key."""
    opts = IdempotencyRecord._meta
    names = ("credential", "key", "fingerprint", "content_type", "body", "created_at")
    quote = connection.ops.quote_name
    params = [opts.get_field(name).get_db_prep_save(getattr(item.record, name), connection=connection)
              for item in batch for name in names]
    row = f"({', '.join(['%s'] * len(names))})"
    with native_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(opts.get_field(name).column) for name in names)}) "
            f"VALUES {', '.join([row] * len(batch))} ON CONFLICT DO NOTHING "
            f"RETURNING {quote(opts.pk.column)}, {quote(opts.get_field('credential').column)}, "
            f"{quote(opts.get_field('key').column)}", params)
        reserved = {(credential, key): pk for pk, credential, key in cursor.fetchall()}
    for item in batch:
        pk = reserved.pop((item.record.credential, item.record.key), None)
        if pk is None:
            item.error = IntegrityError("duplicate key value violates unique constraint "
                                        "idempotency_unique_credential_key")
            continue
        item.record.pk = pk
        item.record._state.adding, item.record._state.db = False, connection.alias
        item.result = item.record


# Reservations arriving together in this process (core.groupcommit): one INSERT for them.
_RESERVATIONS = GroupCommit(_reservations_write, size=lambda: int(settings.REQUEST_GROUP_MAX))


def _record_answer(record: IdempotencyRecord, *, status_code: int, content_type: str, body: bytes) -> int:
    """Store the answer in ``record`` if it is still this request's reservation (unanswered,
    same reservation time); 1 if it did."""
    opts = IdempotencyRecord._meta
    quote = connection.ops.quote_name
    column = lambda name: quote(opts.get_field(name).column)  # noqa: E731
    prep = lambda name, value: opts.get_field(name).get_db_prep_save(value, connection=connection)  # noqa: E731
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(opts.db_table)} SET {column('status_code')} = %s, {column('content_type')} = %s, "
            f"{column('body')} = %s WHERE {quote(opts.pk.column)} = %s AND {column('status_code')} IS NULL "
            f"AND {column('created_at')} = %s",
            [status_code, content_type, prep("body", body), record.pk, prep("created_at", record.created_at)])
        return cursor.rowcount


# Answers waiting to be written together (``idempotency_answers_together``); None: write at once.
_answers_waiting: ContextVar[list | None] = ContextVar("idempotency_answers_waiting", default=None)


@contextmanager
def idempotency_answers_together():
    """Inside the block, the answers views store with ``idempotency_answer`` are written
    together when it ends: one UPDATE for all of them instead of one each (a batch of
    order placements answers many requests in one transaction). Each is still written
    only where its reservation is still its request's; if one is not (a retry took the
    key over), ``IdempotencyKeyInProgress`` is raised and the caller's transaction must
    roll back, as it does when one answer is written alone."""
    waiting: list = []
    token = _answers_waiting.set(waiting)
    try:
        yield
    finally:
        _answers_waiting.reset(token)
    if waiting:
        _records_answer_together(waiting)


def _records_answer_together(waiting: list[tuple[IdempotencyRecord, int, str, bytes]]) -> None:
    if connection.vendor != "postgresql":
        for record, status_code, content_type, body in waiting:
            if not _record_answer(record, status_code=status_code, content_type=content_type, body=body):
                raise IdempotencyKeyInProgress(detail={"key": record.key})
        return
    opts = IdempotencyRecord._meta
    quote = connection.ops.quote_name
    column = lambda name: quote(opts.get_field(name).column)  # noqa: E731
    rows = ", ".join(["(%s::bigint, %s::integer, %s::text, %s::bytea, %s::timestamptz)"] * len(waiting))
    params = [value for record, status_code, content_type, body in waiting
              for value in (record.pk, status_code, content_type, body, record.created_at)]
    with native_cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(opts.db_table)} AS r SET {column('status_code')} = v.status_code, "
            f"{column('content_type')} = v.content_type, {column('body')} = v.body "
            f"FROM (VALUES {rows}) AS v(id, status_code, content_type, body, created_at) "
            f"WHERE r.{quote(opts.pk.column)} = v.id AND r.{column('status_code')} IS NULL "
            f"AND r.{column('created_at')} = v.created_at RETURNING r.{quote(opts.pk.column)}", params)
        written = {row[0] for row in cursor.fetchall()}
    for record, *_answer in waiting:
        if record.pk not in written:
            raise IdempotencyKeyInProgress(detail={"key": record.key})


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
    # False: reserve the key in its own transaction and run the view outside one (see the module).
    idempotency_atomic = True

    def dispatch(self, request, *args, **kwargs):
        raw_key = request.headers.get(HEADER)
        if request.method != "POST" or raw_key is None:
            return super().dispatch(request, *args, **kwargs)
        # The body must be read before DRF wraps the request.
        self._idempotency_fingerprint = request_fingerprint(
            method=request.method, path=request.get_full_path(), body=request.body
        )
        self._idempotency_raw_key = raw_key
        if not self.idempotency_atomic:
            return self._dispatch_outside_transaction(request, *args, **kwargs)
        with transaction.atomic():
            response = super().dispatch(request, *args, **kwargs)
            self._idempotency_store(response)
        return response

    def _dispatch_outside_transaction(self, request, *args, **kwargs):
        try:
            response = super().dispatch(request, *args, **kwargs)
        except BaseException:
            self._idempotency_drop()
            raise
        if response.status_code >= 500:
            self._idempotency_drop()  # not an answer to keep: let the retry run again
        else:
            self._idempotency_store(response)
        return response

    def _idempotency_store(self, response) -> None:
        if not getattr(self, "_idempotency_answered", False):
            self._idempotency_write(response)

    def idempotency_answer(self, response) -> None:
        """Store ``response`` as the answer to this request's key.

        Called by ``dispatch`` when the view returns; a view in non-atomic mode may
        call it itself inside the transaction of its change, so that the change and
        its answer commit together (nothing runs twice even if the process dies right
        after). Conditional on the reservation still being this request's and still
        unanswered: a reservation taken over by a retry is left to the retry."""
        record = self._idempotency_record
        if record is None:
            return
        waiting = _answers_waiting.get()
        if waiting is not None and not self.idempotency_atomic:  # written with the others of its batch
            waiting.append((record, *self._idempotency_answer_parts(response)))
        elif not self._idempotency_write(response) and not self.idempotency_atomic:
            # A retry took this key over while we were slow: our change must not commit
            # beside the retry's (two orders for one key). Roll back; the client's next
            # retry gets the retry's answer.
            raise IdempotencyKeyInProgress(detail={"key": record.key})
        # Once committed there is nothing left to store; rolled back, dispatch stores the real answer.
        transaction.on_commit(lambda: setattr(self, "_idempotency_answered", True))

    def _idempotency_write(self, response) -> int:
        """The conditional UPDATE that stores ``response``; 1 if it did."""
        record = self._idempotency_record
        if record is None:
            return 0
        status_code, content_type, body = self._idempotency_answer_parts(response)
        return _record_answer(record, status_code=status_code, content_type=content_type, body=body)

    def _idempotency_answer_parts(self, response) -> tuple[int, str, bytes]:
        """The stored form of ``response``: status code, content type, rendered body."""
        if hasattr(response, "render") and not response.is_rendered:
            if getattr(response, "accepted_renderer", None) is None and hasattr(self, "finalize_response"):
                # Called from inside the view: negotiate the renderer as dispatch will.
                response = self.finalize_response(self.request, response)
            response.render()
        return response.status_code, response.get("Content-Type", ""), bytes(response.content)

    def _idempotency_drop(self) -> None:
        record = self._idempotency_record
        if record is not None:
            IdempotencyRecord.objects.filter(pk=record.pk, status_code__isnull=True,
                                             created_at=record.created_at).delete()

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raw_key = getattr(self, "_idempotency_raw_key", None)
        if raw_key is None:
            return
        key = idempotency_key_check(raw_key=raw_key)
        credential = credential_for(request)
        try:
            # Outside a transaction the INSERT commits on its own (no BEGIN / COMMIT round trips);
            # inside one (atomic views) a savepoint keeps a duplicate key from breaking it.
            with transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext():
                self._idempotency_record = _record_reserve(credential=credential, key=key,
                                                           fingerprint=self._idempotency_fingerprint)
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(credential=credential, key=key).first()
            if existing is None:  # its holder gave it up (a 5xx) between our insert and this read
                raise IdempotencyKeyInProgress(detail={"key": key}) from None
            if existing.fingerprint != self._idempotency_fingerprint:
                raise IdempotencyKeyReused(detail={"key": key}) from None
            if existing.status_code is None:  # only outside a transaction: another request holds the key
                now = timezone.now()
                taken_over = IdempotencyRecord.objects.filter(
                    pk=existing.pk, status_code__isnull=True, created_at=existing.created_at,
                    created_at__lt=now - STALE_RESERVATION,
                ).update(created_at=now)
                if not taken_over:
                    raise IdempotencyKeyInProgress(detail={"key": key}) from None
                # The new reservation time is this request's claim: the request that died (or
                # is merely slow) can no longer store or drop the answer.
                existing.created_at = now
                self._idempotency_record = existing
                return
            raise _Replay(existing) from None

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            record = exc.record
            response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
            response["Idempotent-Replayed"] = "true"
            return response
        return super().handle_exception(exc)
