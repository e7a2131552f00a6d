"""New orders pushed to one process at the same moment are written together (issue 15),
each push answered only once its own order is stored, with its own outcome."""

import json
import threading
import time

import pytest
from django.db import connection

from channels.adapters.base import PlatformPayloadError
from channels.services import intake
from channels.services.intake import pushed_order_ingest
from core.logging import request_id_var
from inventory.models import StockMovement
from inventory.services import stock_ledger_mismatches
from orders.models import Order
from tests.channels.samples import meituan_order
from tests.channels.test_ingest_page import _line

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _payload(shop, number, quantity=1):
    lines = [_line("HC001", "宫保鸡丁", quantity, 28.0, "1001001")]
    return meituan_order(order_id=27900000000500 + number, wm_order_id_view=str(27900000000500 + number),
                         day_seq=number, detail=json.dumps(lines, ensure_ascii=False), extras="[]",
                         total=28.0 * quantity + quantity + 5, original_price=28.0 * quantity + quantity + 5)


def _push_together(binding, payloads, *, first_write_seconds=0.4):
    """Push ``payloads`` from one thread each: the first is written alone and slowly, so the
    others queue behind it and are written together. Returns each thread's outcome."""
    outcomes = [None] * len(payloads)
    slow = threading.Event()
    one_at_a_time = intake.platform_order_ingest

    def slowly(**kwargs):
        if not slow.is_set():
            slow.set()
            time.sleep(first_write_seconds)
        return one_at_a_time(**kwargs)

    intake.platform_order_ingest = slowly

    def push(index, payload):
        token = request_id_var.set(f"push-{index}")
        try:
            outcomes[index] = pushed_order_ingest(binding=binding, payload=payload)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[index] = exc
        finally:
            request_id_var.reset(token)
            connection.close()

    try:
        first = threading.Thread(target=push, args=(0, payloads[0]))
        first.start()
        assert slow.wait(5)
        others = [threading.Thread(target=push, args=(index, payload))
                  for index, payload in enumerate(payloads) if index]
        for thread in others:
            thread.start()
        for thread in [first, *others]:
            thread.join(30)
    finally:
        intake.platform_order_ingest = one_at_a_time
    return outcomes


def test_concurrent_pushes_are_written_as_one_page_each_answered_with_its_order(shop):
    combiners_before = set(intake._PUSH_COMBINERS.all())
    payloads = [_payload(shop, number) for number in range(1, 7)]

    outcomes = _push_together(shop["meituan"], payloads)

    assert [(o.created, o.order.channel_order_id) for o in outcomes] == [
        (True, str(27900000000500 + number)) for number in range(1, 7)]
    assert shop["meituan"].pk not in combiners_before
    combiner = intake._PUSH_COMBINERS.all()[shop["meituan"].pk]
    assert (combiner.batches, combiner.items) == (2, 6)  # the slow first alone, then the other five together
    assert Order.objects.filter(channel="meituan").count() == 6
    assert StockMovement.objects.filter(reason="order").count() == 6
    assert stock_ledger_mismatches() == []


def test_a_bad_push_in_a_page_fails_alone_and_the_others_are_stored(shop):
    payloads = [_payload(shop, number) for number in range(11, 15)]
    payloads[2] = _payload(shop, 13, quantity=0)  # refused: a line of quantity 0

    outcomes = _push_together(shop["meituan"], payloads)

    assert isinstance(outcomes[2], PlatformPayloadError)
    assert str(outcomes[2]) == "order 27900000000513: a line has quantity 0"
    assert [o.created for i, o in enumerate(outcomes) if i != 2] == [True, True, True]
    assert sorted(Order.objects.values_list("channel_order_id", flat=True)) == [
        "27900000000511", "27900000000512", "27900000000514"]


def test_the_same_order_pushed_twice_at_once_is_stored_once(shop):
    payloads = [_payload(shop, 21), _payload(shop, 22), _payload(shop, 22)]

    outcomes = _push_together(shop["meituan"], payloads)

    assert [o.created for o in outcomes] == [True, True, False]
    assert outcomes[1].order.pk == outcomes[2].order.pk
    assert Order.objects.filter(channel_order_id="27900000000522").count() == 1
    assert StockMovement.objects.filter(reason="order").count() == 2


def test_with_batching_off_each_push_is_written_alone(shop, settings):
    settings.CHANNELS_PUSH_BATCH_MAX = 1
    before = {pk: c.items for pk, c in intake._PUSH_COMBINERS.all().items()}

    result = pushed_order_ingest(binding=shop["meituan"], payload=_payload(shop, 31))

    assert result.created is True
    assert {pk: c.items for pk, c in intake._PUSH_COMBINERS.all().items()} == before
