"""promotions_active_for_store reads as plain SQL built once: the same promotions, in the same
order, as the ORM query it replaced, at every edge of the window and of the store set."""

from datetime import timedelta

import pytest
from django.db.models import Q
from django.utils import timezone

from promotions.models import Promotion
from promotions.selectors import promotions_active_for_store
from tests.factories import BrandFactory, PromotionFactory, SkuFactory, StoreFactory

pytestmark = pytest.mark.django_db


def orm_read(*, brand_id, store_id, now, until=None):
    store_ids = Promotion.stores.through.objects.filter(store_id=store_id).values("promotion_id")
    return list(Promotion.objects.filter(brand_id=brand_id, is_active=True, starts_at__lte=until or now,
                                         ends_at__gt=now)
                .filter(Q(all_stores=True) | Q(pk__in=store_ids)).order_by("-priority", "id"))


def test_the_same_promotions_in_the_same_order():
    now = timezone.now().replace(microsecond=0)
    brand = BrandFactory()
    store, other = StoreFactory(brand=brand), StoreFactory(brand=brand)
    window = {"starts_at": now - timedelta(hours=1), "ends_at": now + timedelta(hours=1)}
    everywhere = PromotionFactory(brand=brand, priority=1, **window)
    here = PromotionFactory(brand=brand, all_stores=False, priority=5, stores=[store], target_skus=[SkuFactory(brand=brand)],
                            **window)
    PromotionFactory(brand=brand, all_stores=False, stores=[other], **window)  # another store's
    PromotionFactory(brand=brand, is_active=False, **window)  # switched off
    PromotionFactory(brand=brand, starts_at=now - timedelta(hours=2), ends_at=now)  # ended exactly now
    starts_now = PromotionFactory(brand=brand, starts_at=now, ends_at=now + timedelta(hours=1))
    later = PromotionFactory(brand=brand, starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(hours=1))
    PromotionFactory(brand=BrandFactory(), **window)  # another brand's
    tie = PromotionFactory(brand=brand, priority=1, **window)

    for kwargs in ({"now": now}, {"now": now, "until": now + timedelta(minutes=10)},
                   {"now": now - timedelta(seconds=1)}):
        found = promotions_active_for_store(brand_id=brand.pk, store_id=store.pk, **kwargs)
        assert found == orm_read(brand_id=brand.pk, store_id=store.pk, **kwargs), kwargs
    assert promotions_active_for_store(brand_id=brand.pk, store_id=store.pk, now=now) == [here, everywhere, tie,
                                                                                          starts_now]
    assert later in promotions_active_for_store(brand_id=brand.pk, store_id=store.pk, now=now,
                                                until=now + timedelta(minutes=10))
    read = promotions_active_for_store(brand_id=brand.pk, store_id=store.pk, now=now)
    assert [len(p.target_skus.all()) for p in read] == [1, 0, 0, 0]  # prefetched with the read
