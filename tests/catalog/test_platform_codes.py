"""Platform lines resolved to our SKUs, every line of an order at once: the merchant code first,
then the mapping table (a store's own mapping over the brand's), in two queries at most."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.selectors import sku_resolve_platform_code, skus_resolve_platform_codes
from tests.factories import BrandFactory, PlatformSkuMappingFactory, SkuFactory, StoreFactory

pytestmark = pytest.mark.django_db


def test_every_line_at_once_in_order():
    brand = BrandFactory()
    store, other = StoreFactory(brand=brand), StoreFactory(brand=brand)
    rice, tea, soup, duck = (SkuFactory(brand=brand, code=code) for code in ("RICE", "TEA", "SOUP", "DUCK"))
    foreign = SkuFactory(brand=BrandFactory(), code="FISH")
    PlatformSkuMappingFactory(brand=brand, platform="meituan", platform_sku_id="mt-tea", sku=tea)  # brand-wide
    PlatformSkuMappingFactory(brand=brand, store=store, platform="meituan", platform_sku_id="mt-tea", sku=soup)
    PlatformSkuMappingFactory(brand=brand, store=other, platform="meituan", platform_sku_id="mt-duck", sku=duck)
    PlatformSkuMappingFactory(brand=brand, platform="eleme", platform_sku_id="mt-rice", sku=duck)
    lines = [("RICE", "mt-tea"), ("", "mt-tea"), ("NOPE", "mt-tea"), ("FISH", ""), ("", "mt-duck"),
             ("", "mt-rice"), ("", ""), ("TEA", "")]

    with CaptureQueriesContext(connection) as queries:
        found = skus_resolve_platform_codes(brand_id=brand.pk, store_id=store.pk, platform="meituan", lines=lines)

    assert found == [rice, soup, soup, None, None, None, None, tea]
    assert foreign not in found
    assert len(queries) == 2
    assert [sku_resolve_platform_code(brand_id=brand.pk, store_id=store.pk, platform="meituan",
                                      merchant_code=code, platform_sku_id=sku_id) for code, sku_id in lines] == found
    with CaptureQueriesContext(connection) as codes_only:
        skus_resolve_platform_codes(brand_id=brand.pk, store_id=store.pk, platform="meituan", lines=[("RICE", "x")])
    assert len(codes_only) == 1
