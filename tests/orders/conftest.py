import pytest
from rest_framework.test import APIClient

from accounts.services import customer_token_issue
from catalog.models import StockDeductionMode
from inventory.services import stock_set
from tests.factories import CustomerFactory, SkuFactory, StoreFactory, StoreSkuFactory


@pytest.fixture
def shop(db):
    """A store with three SKUs: on-order stock 10, on-payment stock 5, untracked."""
    store = StoreFactory(delivery_fee="5.00")
    on_order = SkuFactory(brand=store.brand, code="RICE", price="12.00", packaging_fee="1.00",
                          stock_mode=StockDeductionMode.ON_ORDER)
    on_payment = SkuFactory(brand=store.brand, code="TEA", price="9.50", packaging_fee="0.50",
                            stock_mode=StockDeductionMode.ON_PAYMENT)
    untracked = SkuFactory(brand=store.brand, code="SOUP", price="6.00", packaging_fee="0.00")
    for sku in (on_order, on_payment, untracked):
        StoreSkuFactory(store=store, sku=sku)
    stock_set(store_id=store.pk, sku_id=on_order.pk, on_hand=10)
    stock_set(store_id=store.pk, sku_id=on_payment.pk, on_hand=5)
    return {"store": store, "rice": on_order, "tea": on_payment, "soup": untracked}


@pytest.fixture
def customer(shop):
    return CustomerFactory(brand=shop["store"].brand, name="张三", phone="13800001234")


def client_for(customer) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {customer_token_issue(customer=customer).token}")
    return client


@pytest.fixture
def api(customer):
    return client_for(customer)
