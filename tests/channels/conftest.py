import pytest

from inventory.services import stock_set
from tests.channels.samples import ELEME_SHOP, MEITUAN_SHOP
from tests.factories import (
    PlatformSkuMappingFactory,
    SkuFactory,
    StoreBindingFactory,
    StoreFactory,
)


@pytest.fixture
def shop(db):
    """A store with 宫保鸡丁 (HC001, stock 10) and 扬州炒饭 (ZS001, stock 1), bound to both platforms."""
    store = StoreFactory(name="老街坊·徐汇店", phone="021-55550000")
    chicken = SkuFactory(brand=store.brand, code="HC001", price="28.00")
    rice = SkuFactory(brand=store.brand, code="ZS001", price="24.00")
    stock_set(store_id=store.pk, sku_id=chicken.pk, on_hand=10)
    stock_set(store_id=store.pk, sku_id=rice.pk, on_hand=1)
    meituan = StoreBindingFactory(store=store, platform="meituan", shop_code=MEITUAN_SHOP, app_id="6001",
                                  secret="mt-secret")
    eleme = StoreBindingFactory(store=store, platform="eleme", shop_code=ELEME_SHOP, app_id="el-key",
                                secret="el-secret", token="el-token")
    PlatformSkuMappingFactory(brand=store.brand, platform="eleme", platform_food_code="700001",
                              platform_sku_id="800001", sku=rice)
    return {"store": store, "chicken": chicken, "rice": rice, "meituan": meituan, "eleme": eleme}
