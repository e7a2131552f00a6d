"""Requests arriving together in one web process share their customer token read and their
Idempotency-Key reservation (REQUEST_GROUP_MAX, issue 15): each request still gets exactly
what it would get alone -- its own token instances, its own reservation or the key-taken
error -- and nothing is shared between requests."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection
from django.utils import timezone

from accounts import authentication
from accounts.authentication import _TOKEN_READ, _TokenLookup, _tokens_read
from accounts.services import customer_token_issue, customer_token_revoke, token_hash
from core import idempotency
from core.idempotency import _record_reserve, _Reservation, _reservations_write
from core.models import IdempotencyRecord
from tests.factories import CustomerFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _record(key, *, credential="customer:1", fingerprint="f" * 64, at=None):
    return IdempotencyRecord(credential=credential, key=key, fingerprint=fingerprint,
                             created_at=at or timezone.now())


def test_a_group_of_reservations_is_one_insert_and_a_taken_key_fails_alone():
    taken = _record_reserve(credential="customer:1", key="taken", fingerprint="a" * 64)
    moment = timezone.now() - timedelta(seconds=5)
    batch = [_Reservation(record=_record("k1", at=moment)), _Reservation(record=_record("taken")),
             _Reservation(record=_record("k2", credential="customer:2", fingerprint="b" * 64)),
             _Reservation(record=_record("k1", fingerprint="c" * 64)),  # the same key twice in the group
             _Reservation(record=_record("k3"))]

    _reservations_write(batch)

    outcomes = [(item.result is not None, type(item.error).__name__ if item.error else None) for item in batch]
    assert outcomes == [(True, None), (False, "IntegrityError"), (True, None), (False, "IntegrityError"),
                        (True, None)]
    stored = {(r.credential, r.key): r for r in IdempotencyRecord.objects.all()}
    assert sorted(stored) == [("customer:1", "k1"), ("customer:1", "k3"), ("customer:1", "taken"),
                              ("customer:2", "k2")]
    assert stored[("customer:1", "taken")].pk == taken.pk
    for item in (batch[0], batch[2], batch[4]):
        row = stored[(item.record.credential, item.record.key)]
        assert item.result is item.record and row.pk == item.record.pk and not item.record._state.adding
        assert (row.fingerprint, row.created_at, row.status_code, row.content_type, bytes(row.body)) == (
            item.record.fingerprint, item.record.created_at, None, "", b"")
    assert stored[("customer:1", "k1")].created_at == moment


def _together(work, count):
    """``work(n)`` for n in 0..count-1, each in a thread of its own, all released at once
    (as gunicorn's threads take requests arriving together), each with its own connection."""
    start = threading.Barrier(count)

    def run(n):
        start.wait()
        try:
            work(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_reservations_of_one_key_give_it_to_exactly_one_request():
    results = []

    def reserve(n):
        try:
            results.append(("ok", _record_reserve(credential="customer:7", key="same", fingerprint="f" * 64).pk))
        except IntegrityError:
            results.append(("taken", None))

    _together(reserve, 8)
    assert sorted(kind for kind, _pk in results) == ["ok"] + ["taken"] * 7
    assert [pk for kind, pk in results if kind == "ok"] == list(IdempotencyRecord.objects.values_list("pk", flat=True))


def test_concurrent_reservations_of_different_keys_all_succeed_in_fewer_statements():
    before = (idempotency._RESERVATIONS.batches, idempotency._RESERVATIONS.items)
    results = []
    _together(lambda n: results.append(
        _record_reserve(credential=f"customer:{n}", key=f"k{n}", fingerprint="f" * 64).key), 12)
    assert sorted(results) == sorted(f"k{n}" for n in range(12))
    assert IdempotencyRecord.objects.count() == 12
    assert idempotency._RESERVATIONS.items - before[1] == 12
    assert 1 <= idempotency._RESERVATIONS.batches - before[0] <= 12


def test_a_group_of_token_reads_gives_each_request_its_own_instances():
    alice, bob = CustomerFactory(name="alice"), CustomerFactory(name="bob")
    a, b = customer_token_issue(customer=alice).token, customer_token_issue(customer=bob).token
    revoked = customer_token_issue(customer=bob).token
    customer_token_revoke(raw_token=revoked)
    batch = [_TokenLookup(key_hash=token_hash(raw)) for raw in (a, b, a, revoked, "no-such-token")]

    _tokens_read(batch)

    found = [item.result[0] for item in batch]
    assert [None if t is None else t.customer.name for t in found] == ["alice", "bob", "alice", None, None]
    assert found[0] is not found[2] and found[0].customer is not found[2].customer  # never shared
    alone = _TOKEN_READ.first(token_hash(a))
    for token in (found[0], found[2]):
        assert (token.pk, token.customer_id, token.customer.brand_id, token.customer.brand.code,
                token.customer.tier_id, token.key_hash) == (
            alone.pk, alone.customer_id, alone.customer.brand_id, alone.customer.brand.code, alone.customer.tier_id,
            alone.key_hash)


def test_concurrent_requests_authenticate_as_their_own_customers():
    customers = [CustomerFactory(name=f"c{n}") for n in range(10)]
    tokens = [customer_token_issue(customer=c).token for c in customers]
    seen = {}

    def read(n):
        seen[n] = authentication._token_read(token_hash(tokens[n])).customer.name

    _together(read, 10)
    assert seen == {n: f"c{n}" for n in range(10)}


def test_with_grouping_off_each_request_reads_and_reserves_alone(settings):
    settings.REQUEST_GROUP_MAX = 1
    customer = CustomerFactory()
    token = customer_token_issue(customer=customer).token
    before = (authentication._TOKEN_READS.items, idempotency._RESERVATIONS.items)
    assert authentication._token_read(token_hash(token)).customer_id == customer.pk
    assert _record_reserve(credential="customer:1", key="alone", fingerprint="f" * 64).pk is not None
    assert (authentication._TOKEN_READS.items, idempotency._RESERVATIONS.items) == before
