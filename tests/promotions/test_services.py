"""Coupon and flash-sale limit services: states, idempotency, all-or-nothing."""

from datetime import datetime, timedelta, timezone

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone as dj_timezone

from core.errors import Conflict, NotFound
from promotions.models import Coupon, FlashSaleReservation, FlashSaleUsage
from promotions.services import (
    CODE_ALPHABET,
    coupon_expire_overdue,
    coupon_issue,
    coupon_release,
    coupon_reserve,
    coupon_use,
    flash_sale_limit_release,
    flash_sale_limit_reserve,
)
from tests.factories import CouponFactory, CouponTemplateFactory, CustomerFactory, PromotionFactory

pytestmark = pytest.mark.django_db

FAR = datetime(2099, 1, 1, tzinfo=timezone.utc)


def live_coupon(**fields):
    fields.setdefault("valid_until", FAR)
    return CouponFactory(**fields)


def statuses(*coupons):
    return [Coupon.objects.get(pk=coupon.pk).status for coupon in coupons]


# coupons ---------------------------------------------------------------------------


def test_reserve_then_use():
    coupon = live_coupon()

    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_ref) == ("reserved", "O1")
    assert coupon.reserved_at is not None

    assert coupon_use(order_ref="O1") == 1
    assert coupon_use(order_ref="O1") == 0
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_ref) == ("used", "O1")
    assert coupon.used_at is not None


def test_reserve_is_all_or_nothing():
    good = live_coupon()
    used = live_coupon(customer=good.customer, template=good.template, status="used", order_ref="OLD")

    with pytest.raises(Conflict) as raised:
        coupon_reserve(coupon_ids=[good.pk, used.pk], customer_id=good.customer_id, order_ref="O1")

    assert raised.value.code == "coupon_unavailable"
    assert statuses(good, used) == ["available", "used"]


@pytest.mark.parametrize("fields", [
    {"status": "expired"},
    {"valid_until": datetime(2020, 1, 1, tzinfo=timezone.utc), "valid_from": datetime(2019, 1, 1, tzinfo=timezone.utc)},
    {"valid_from": FAR - timedelta(days=1)},
])
def test_reserve_refuses_coupons_not_valid_now(fields):
    coupon = live_coupon(**fields)

    with pytest.raises(Conflict):
        coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")


def test_reserve_refuses_another_customers_coupon_and_a_second_order():
    coupon = live_coupon()
    with pytest.raises(Conflict):
        coupon_reserve(coupon_ids=[coupon.pk], customer_id=CustomerFactory().pk, order_ref="O1")

    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")
    # the same order again: harmless
    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")
    with pytest.raises(Conflict):
        coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O2")
    assert Coupon.objects.get(pk=coupon.pk).order_ref == "O1"


def test_failed_reserve_inside_an_outer_transaction_leaves_it_usable():
    good, used = live_coupon(), live_coupon(status="used", order_ref="OLD")

    with transaction.atomic():
        with pytest.raises(Conflict):
            coupon_reserve(coupon_ids=[good.pk, used.pk], customer_id=good.customer_id, order_ref="O1")
        assert Coupon.objects.filter(status="reserved").count() == 0


def test_release_gives_back_and_is_idempotent():
    coupon = live_coupon()
    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")

    assert coupon_release(order_ref="O1") == 1
    assert coupon_release(order_ref="O1") == 0
    coupon.refresh_from_db()
    assert (coupon.status, coupon.order_ref, coupon.reserved_at) == ("available", "", None)
    # single use: once used it is never released
    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O2")
    coupon_use(order_ref="O2")
    assert coupon_release(order_ref="O2") == 0
    assert statuses(coupon) == ["used"]


def test_release_after_the_validity_ended_expires_the_coupon():
    coupon = live_coupon()
    coupon_reserve(coupon_ids=[coupon.pk], customer_id=coupon.customer_id, order_ref="O1")
    Coupon.objects.filter(pk=coupon.pk).update(valid_until=dj_timezone.now() - timedelta(seconds=1),
                                               valid_from=dj_timezone.now() - timedelta(days=1))

    assert coupon_release(order_ref="O1") == 1
    assert statuses(coupon) == ["expired"]


def test_use_without_reservation_changes_nothing():
    coupon = live_coupon()

    assert coupon_use(order_ref="O1") == 0
    assert statuses(coupon) == ["available"]


def test_expire_overdue():
    overdue = CouponFactory(valid_until=datetime(2025, 2, 1, tzinfo=timezone.utc))
    fresh = live_coupon()

    assert coupon_expire_overdue(now=datetime(2025, 3, 1, tzinfo=timezone.utc)) == 1
    assert statuses(overdue, fresh) == ["expired", "available"]


def test_issue_with_valid_days():
    template = CouponTemplateFactory(valid_days=7)
    customer = CustomerFactory(brand=template.brand)
    now = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)

    coupon = coupon_issue(template_id=template.pk, customer_id=customer.pk, now=now)

    assert (coupon.status, coupon.customer_id, coupon.template_id) == ("available", customer.pk, template.pk)
    assert (coupon.valid_from, coupon.valid_until, coupon.issued_at) == (now, now + timedelta(days=7), now)
    assert len(coupon.code) == 10
    assert set(coupon.code) <= set(CODE_ALPHABET)


def test_issue_with_a_fixed_window_and_unique_codes():
    start, end = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 12, 31, tzinfo=timezone.utc)
    template = CouponTemplateFactory(valid_days=None, valid_from=start, valid_until=end)
    customer = CustomerFactory(brand=template.brand)

    coupons = [coupon_issue(template_id=template.pk, customer_id=customer.pk, now=start) for _ in range(50)]

    assert {(c.valid_from, c.valid_until) for c in coupons} == {(start, end)}
    assert len({c.code for c in coupons}) == 50


def test_issue_retries_a_code_collision(monkeypatch):
    template = CouponTemplateFactory()
    customer = CustomerFactory(brand=template.brand)
    CouponFactory(template=template, customer=customer, code="AAAAAAAAAA")
    codes = iter(["AAAAAAAAAA", "BBBBBBBBBB"])
    monkeypatch.setattr("promotions.services.coupon_code_generate", lambda: next(codes))

    coupon = coupon_issue(template_id=template.pk, customer_id=customer.pk, now=dj_timezone.now())

    assert coupon.code == "BBBBBBBBBB"


def test_issue_refuses_another_brands_customer_and_inactive_or_ended_templates():
    template = CouponTemplateFactory()
    with pytest.raises(NotFound):
        coupon_issue(template_id=template.pk, customer_id=CustomerFactory().pk, now=dj_timezone.now())

    inactive = CouponTemplateFactory(is_active=False)
    with pytest.raises(Conflict) as raised:
        coupon_issue(template_id=inactive.pk, customer_id=CustomerFactory(brand=inactive.brand).pk,
                     now=dj_timezone.now())
    assert raised.value.code == "coupon_template_inactive"

    ended = CouponTemplateFactory(valid_days=None, valid_from=datetime(2020, 1, 1, tzinfo=timezone.utc),
                                  valid_until=datetime(2020, 2, 1, tzinfo=timezone.utc))
    with pytest.raises(Conflict) as raised:
        coupon_issue(template_id=ended.pk, customer_id=CustomerFactory(brand=ended.brand).pk, now=dj_timezone.now())
    assert raised.value.code == "coupon_template_expired"


# flash-sale limits -----------------------------------------------------------------


@pytest.fixture
def flash():
    return PromotionFactory(kind="flash_sale", tiers=[], flash_price="9.90", purchase_limit=3)


def usage(promotion, customer):
    return FlashSaleUsage.objects.get(promotion=promotion, customer=customer).used


def test_flash_limit_reserve_up_to_the_limit(flash):
    customer = CustomerFactory(brand=flash.brand)

    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=2, order_ref="O1")
    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=1, order_ref="O2")
    with pytest.raises(Conflict) as raised:
        flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=1, order_ref="O3")

    assert raised.value.code == "purchase_limit_exceeded"
    assert raised.value.detail == {"limit": 3, "already": 3}
    assert usage(flash, customer) == 3
    assert not FlashSaleReservation.objects.filter(order_ref="O3").exists()


def test_flash_limit_is_per_customer(flash):
    first, second = CustomerFactory(brand=flash.brand), CustomerFactory(brand=flash.brand)

    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=first.pk, quantity=3, order_ref="O1")
    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=second.pk, quantity=3, order_ref="O2")

    assert (usage(flash, first), usage(flash, second)) == (3, 3)


def test_flash_limit_reserve_more_than_the_limit_at_once(flash):
    customer = CustomerFactory(brand=flash.brand)

    with pytest.raises(Conflict) as raised:
        flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=4, order_ref="O1")

    assert raised.value.detail == {"limit": 3, "already": 0}


def test_flash_limit_reserve_retry_for_the_same_order_is_a_no_op(flash):
    customer = CustomerFactory(brand=flash.brand)

    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=2, order_ref="O1")
    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=2, order_ref="O1")

    assert usage(flash, customer) == 2
    with pytest.raises(Conflict) as raised:
        flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=1, order_ref="O1")
    assert raised.value.code == "flash_sale_reservation_mismatch"


def test_flash_limit_release_gives_units_back_once(flash):
    customer = CustomerFactory(brand=flash.brand)
    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=3, order_ref="O1")

    assert flash_sale_limit_release(order_ref="O1") == 1
    assert flash_sale_limit_release(order_ref="O1") == 0
    assert usage(flash, customer) == 0
    reservation = FlashSaleReservation.objects.get(order_ref="O1")
    assert reservation.released and reservation.released_at is not None

    flash_sale_limit_reserve(promotion_id=flash.pk, customer_id=customer.pk, quantity=3, order_ref="O2")
    assert usage(flash, customer) == 3


def test_flash_sale_without_a_limit_only_records_the_reservation():
    promotion = PromotionFactory(kind="flash_sale", tiers=[], flash_price="9.90", purchase_limit=None)
    customer = CustomerFactory(brand=promotion.brand)

    flash_sale_limit_reserve(promotion_id=promotion.pk, customer_id=customer.pk, quantity=50, order_ref="O1")

    assert not FlashSaleUsage.objects.exists()
    assert flash_sale_limit_release(order_ref="O1") == 1


def test_flash_limit_reserve_refuses_a_non_flash_promotion():
    promotion = PromotionFactory()

    with pytest.raises(NotFound):
        flash_sale_limit_reserve(promotion_id=promotion.pk, customer_id=CustomerFactory().pk, quantity=1,
                                 order_ref="O1")


def test_the_database_refuses_usage_above_the_limit(flash):
    customer = CustomerFactory(brand=flash.brand)

    with pytest.raises(IntegrityError), transaction.atomic():
        FlashSaleUsage.objects.create(promotion=flash, customer=customer, used=4, limit=3)


def test_expire_coupons_task_runs_the_service():
    from promotions.tasks import expire_coupons_task

    overdue = CouponFactory(valid_until=datetime(2025, 2, 1, tzinfo=timezone.utc))

    assert expire_coupons_task.apply().get() == 1
    assert statuses(overdue) == ["expired"]
