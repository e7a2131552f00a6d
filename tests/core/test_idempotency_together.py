"""Answers stored together (core.idempotency.idempotency_answers_together): a batch of
order placements writes its requests' Idempotency-Key answers in one UPDATE (issue 15),
each only where the reservation is still its request's."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext

from core.errors import IdempotencyKeyInProgress
from core.idempotency import IdempotencyMixin, _record_reserve, idempotency_answers_together
from core.models import IdempotencyRecord


class _View(IdempotencyMixin):
    """What the customer API's create view is to the mixin: answers stored outside dispatch's transaction."""

    idempotency_atomic = False

    def __init__(self, record):
        self._idempotency_record = record


def _views(count):
    return [_View(_record_reserve(credential=f"customer:{n}", key=f"key-{n}", fingerprint="f" * 64))
            for n in range(count)]


def _answer(n):
    return HttpResponse(f'{{"order": {n}}}'.encode(), status=201, content_type="application/json")


def _stored():
    return list(IdempotencyRecord.objects.order_by("key").values_list("key", "status_code", "content_type", "body"))


@pytest.mark.django_db(transaction=True)
def test_the_answers_of_a_batch_are_written_in_one_statement():
    views = _views(3)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries, idempotency_answers_together():
        for n, view in enumerate(views):
            view.idempotency_answer(_answer(n))
        assert _stored()[0][1] is None  # nothing written before the block ends

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == (1 if connection.vendor == "postgresql" else 3)
    assert [(key, status, kind, bytes(body)) for key, status, kind, body in _stored()] == [
        (f"key-{n}", 201, "application/json", f'{{"order": {n}}}'.encode()) for n in range(3)]


@pytest.mark.django_db(transaction=True)
def test_a_reservation_taken_over_meanwhile_fails_the_batch_and_nothing_is_answered():
    views = _views(3)
    IdempotencyRecord.objects.filter(key="key-1").update(
        created_at=views[1]._idempotency_record.created_at + timedelta(seconds=1))  # a retry took it over

    with pytest.raises(IdempotencyKeyInProgress) as raised, transaction.atomic(), idempotency_answers_together():
        for n, view in enumerate(views):
            view.idempotency_answer(_answer(n))

    assert raised.value.detail == {"key": "key-1"}
    assert [status for _key, status, _kind, _body in _stored()] == [None, None, None]


@pytest.mark.django_db(transaction=True)
def test_outside_the_block_an_answer_is_written_at_once():
    [view] = _views(1)

    with transaction.atomic():
        view.idempotency_answer(_answer(7))
        assert _stored()[0][1] == 201
