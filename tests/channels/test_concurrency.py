"""Races that need real transactions (PostgreSQL): duplicate ingestion, overlapping
pulls, two relays at once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from channels.models import StoreBinding
from channels.services import binding_pull, platform_order_ingest
from channels.services.pull import binding_pull_claim
from core.models import OutboxMessage, OutboxStatus
from core.outbox import _HANDLERS, outbox_relay
from inventory.models import Stock
from orders.models import Order
from tests.channels.samples import meituan_order

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _run_together(*targets):
    barrier = threading.Barrier(len(targets))
    results, errors = [], []

    def wrap(target):
        def run():
            try:
                barrier.wait(timeout=10)
                results.append(target())
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()
        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results, errors


def test_a_pushed_and_a_pulled_copy_ingested_at_once_make_one_order(shop):
    binding = shop["meituan"]

    def ingest():
        return platform_order_ingest(binding=StoreBinding.objects.select_related("store").get(pk=binding.pk),
                                     payload=meituan_order())

    results, errors = _run_together(ingest, ingest, ingest)

    assert errors == []
    assert sorted(r.created for r in results) == [False, False, True]
    assert len({r.order.pk for r in results}) == 1
    assert Order.objects.filter(channel="meituan", channel_order_id="27900000000001").count() == 1
    assert Stock.objects.get(store=shop["store"], sku=shop["chicken"]).on_hand == 8


def test_an_overlapping_pull_of_the_same_binding_skips(shop):
    binding = shop["meituan"]

    def claim():
        return binding_pull_claim(binding_id=binding.pk)

    claims, errors = _run_together(claim, claim, claim, claim)
    overlapping = binding_pull(binding_id=binding.pk)  # while the winner's lease runs

    assert errors == []
    assert sorted(bool(claim) for claim in claims) == [False, False, False, True]
    assert overlapping.skipped is True
    binding.refresh_from_db()
    assert binding.last_pull_at is None
    assert binding.pull_lease_until > timezone.now()


def test_two_relays_at_once_deliver_each_message_once_and_in_key_order():
    delivered = []
    lock = threading.Lock()

    def handler(message):
        with lock:
            delivered.append((message.key, message.payload["n"]))

    _HANDLERS["race.topic"] = handler
    try:
        for n in range(5):
            for key in ("A", "B", "C"):
                # created directly: outbox_enqueue would relay each one at once (eager Celery)
                OutboxMessage.objects.create(topic="race.topic", key=key, payload={"n": n},
                                             next_attempt_at=timezone.now() - timedelta(seconds=1))

        results, errors = _run_together(lambda: outbox_relay(limit=100), lambda: outbox_relay(limit=100))
    finally:
        _HANDLERS.pop("race.topic", None)

    assert errors == []
    assert sorted(delivered) == sorted((key, n) for n in range(5) for key in ("A", "B", "C"))
    for key in ("A", "B", "C"):
        assert [n for k, n in delivered if k == key] == [0, 1, 2, 3, 4]
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {OutboxStatus.DELIVERED}


def test_a_pull_that_outlives_its_lease_leaves_the_next_pulls_lease_alone(shop, monkeypatch):
    """Pull A's lease expires while it still waits on the platform; pull B takes the
    binding. When A ends it must neither clear B's lease nor write its pull state."""
    from datetime import timedelta

    from django.utils import timezone

    from channels.models import StoreBinding
    from channels.services import pull

    binding = shop["meituan"]
    StoreBinding.objects.filter(pk=binding.pk).update(pull_state={"20261205": 7})
    taken = {}

    from channels.adapters.base import PlatformAdapter

    class SlowPlatform(PlatformAdapter):  # stands in for the platform's API (what leaves the machine)
        platform = "meituan"

        def pull_new_orders(self, binding, *, now, known):
            StoreBinding.objects.filter(pk=binding.pk).update(pull_lease_until=timezone.now() - timedelta(seconds=1))
            taken["token"] = binding_pull_claim(binding_id=binding.pk)  # pull B
            return iter(())

    monkeypatch.setattr(pull, "adapter_for", lambda platform: SlowPlatform())

    result = binding_pull(binding_id=binding.pk)

    assert result.skipped is False and taken["token"]
    binding = StoreBinding.objects.get(pk=binding.pk)
    assert binding.pull_lease_token == taken["token"] and binding.pull_lease_until > timezone.now()
    assert (binding.pull_state, binding.last_pull_at) == ({"20261205": 7}, None)  # B writes its own
    assert binding_pull_claim(binding_id=binding.pk) == ""  # still B's
