"""Coupons and flash-sale limits under real concurrency (PostgreSQL only).

Each thread runs its own transaction on its own connection, all released at
once by a Barrier; connections are closed in the threads.
"""

import threading
from datetime import datetime, timezone

import pytest
from django.db import connection, transaction

from core.errors import Conflict
from promotions.models import Coupon, FlashSaleReservation, FlashSaleUsage
from promotions.services import (
    coupon_release,
    coupon_reserve,
    coupon_use,
    flash_sale_limit_release,
    flash_sale_limit_reserve,
)
from tests.factories import CouponFactory, CustomerFactory, PromotionFactory

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]

FAR = datetime(2099, 1, 1, tzinfo=timezone.utc)
THREADS = 10


def run_concurrently(work, count=THREADS) -> list[str]:
    """Run ``work(i)`` in ``count`` threads started together; returns each outcome."""
    barrier = threading.Barrier(count)
    outcomes: list[str] = [""] * count

    def thread_main(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                work(index)
            outcomes[index] = "ok"
        except Conflict as error:
            outcomes[index] = error.code
        except Exception as error:  # noqa: BLE001 - reported in the assertion
            outcomes[index] = f"error: {error!r}"
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_main, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_ten_orders_reserving_the_same_coupon_exactly_one_wins():
    coupon = CouponFactory(valid_until=FAR)

    outcomes = run_concurrently(lambda index: coupon_reserve(
        coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref=f"O{index}"))

    assert sorted(outcomes) == ["coupon_unavailable"] * 9 + ["ok"]
    coupon.refresh_from_db()
    assert coupon.status == "reserved"
    assert coupon.order_ref == f"O{outcomes.index('ok')}"


def test_overlapping_coupon_sets_in_opposite_orders_never_deadlock():
    first = CouponFactory(valid_until=FAR)
    second = CouponFactory(valid_until=FAR, customer=first.customer, template=first.template)

    def work(index):
        ids = [first.pk, second.pk] if index % 2 else [second.pk, first.pk]
        coupon_reserve(coupon_ids=ids, customer_id=first.customer_id, order_ref=f"O{index}")

    outcomes = run_concurrently(work)

    assert sorted(outcomes) == ["coupon_unavailable"] * 9 + ["ok"]
    assert set(Coupon.objects.values_list("order_ref", flat=True)) == {f"O{outcomes.index('ok')}"}


def test_ten_one_unit_flash_orders_of_one_customer_with_limit_three_exactly_three_win():
    flash = PromotionFactory(kind="flash_sale", tiers=[], flash_price="9.90", purchase_limit=3)
    customer = CustomerFactory(brand=flash.brand)

    outcomes = run_concurrently(lambda index: flash_sale_limit_reserve(
        promotion_id=flash.pk, customer_id=customer.pk, quantity=1, order_ref=f"O{index}"))

    assert sorted(outcomes) == ["ok"] * 3 + ["purchase_limit_exceeded"] * 7
    assert FlashSaleUsage.objects.get(promotion=flash, customer=customer).used == 3
    assert FlashSaleReservation.objects.filter(promotion=flash, released=False).count() == 3


def test_concurrent_releases_give_flash_units_back_once():
    flash = PromotionFactory(kind="flash_sale", tiers=[], flash_price="9.90", purchase_limit=3)
    customer = CustomerFactory(brand=flash.brand)
    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=2, order_ref="O1")
    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=1, order_ref="O2")
    released: list[int] = []

    outcomes = run_concurrently(lambda index: released.append(flash_sale_limit_release(order_ref="O1")))

    assert outcomes == ["ok"] * THREADS
    assert sum(released) == 1
    assert FlashSaleUsage.objects.get(promotion=flash, customer=customer).used == 1


def test_payment_racing_cancellation_one_of_them_moves_the_coupon():
    coupon = CouponFactory(valid_until=FAR)
    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")
    changed: list[tuple[str, int]] = []

    def work(index):
        if index % 2:
            changed.append(("use", coupon_use(order_ref="O1")))
        else:
            changed.append(("release", coupon_release(order_ref="O1")))

    outcomes = run_concurrently(work)

    assert outcomes == ["ok"] * THREADS
    winners = [action for action, count in changed if count]
    assert len(winners) == 1
    coupon.refresh_from_db()
    assert coupon.status == {"use": "used", "release": "available"}[winners[0]]
