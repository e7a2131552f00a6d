"""Platform item codes learnt from ingested orders: a line matched by our merchant
code teaches the platform's sku id for the store, so sold-out reaches the platform for
SKUs nobody mapped by hand; a person's mapping is never changed; the admin lists the
SKUs still unmapped per platform."""

import pytest

from accounts.models import StaffRole
from catalog.models import PlatformSkuMapping
from channels.selectors import platform_items_for_skus
from channels.services import platform_order_ingest
from tests.channels.samples import eleme_order, meituan_order
from tests.factories import SkuFactory, staff_user

pytestmark = pytest.mark.django_db


def mappings(shop):
    return sorted(PlatformSkuMapping.objects.filter(brand=shop["store"].brand).values_list(
        "platform", "sku__code", "platform_sku_id", "platform_food_code", "store_id", "learnt"))


def test_a_meituan_order_teaches_the_sku_id_of_lines_matched_by_merchant_code_once(shop):
    before = mappings(shop)

    platform_order_ingest(binding=shop["meituan"], payload=meituan_order())
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order(order_id=27900000000077,
                                                                         wm_order_id_view="27900000000077"))

    learnt = [row for row in mappings(shop) if row not in before]
    # HC001 matched by its code: learnt for this store; RICE-X is unknown to us: nothing to learn.
    assert learnt == [("meituan", "HC001", "1001001", "HC001", shop["store"].pk, True)]
    assert platform_items_for_skus(binding=shop["meituan"], sku_ids=[shop["chicken"].pk]) == [
        {"sku_id": shop["chicken"].pk, "merchant_code": "HC001", "platform_food_code": "HC001",
         "platform_sku_id": "1001001"}]


def test_a_mapping_made_by_a_person_is_kept_as_it_is(shop):
    before = mappings(shop)  # ZS001 is mapped by hand on Ele.me (brand-wide, 800001)

    platform_order_ingest(binding=shop["eleme"], payload=eleme_order())

    assert mappings(shop) == before


def test_the_admin_lists_skus_not_mapped_on_a_platform(client, shop):
    SkuFactory(brand=shop["store"].brand, code="TEA01", price="9.00")
    client.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=shop["store"].brand))

    def listed(platform):
        page = client.get("/admin/catalog/sku/", {"unmapped_on": platform})
        assert page.status_code == 200
        return sorted(sku.code for sku in page.context["cl"].result_list)

    assert (listed("meituan"), listed("eleme")) == (["HC001", "TEA01", "ZS001"], ["HC001", "TEA01"])
    platform_order_ingest(binding=shop["meituan"], payload=meituan_order())
    assert listed("meituan") == ["TEA01", "ZS001"]
