import pytest
from rest_framework.test import APIClient

from inventory.services import stock_set
from tests.factories import SkuFactory, StoreFactory, StoreSkuFactory, pos_terminal


def token_client(token: str | None) -> APIClient:
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def store(db):
    return StoreFactory(default_prep_minutes=15, busy_extra_minutes=10)


@pytest.fixture
def other_store(store):
    """Another store of the same brand: the closest neighbour a leak could reach."""
    return StoreFactory(brand=store.brand)


@pytest.fixture
def skus(store):
    """RICE tracked with 10 on hand, SOUP untracked; both on this store's menu."""
    rice = SkuFactory(brand=store.brand, code="RICE", price="12.00")
    soup = SkuFactory(brand=store.brand, code="SOUP", price="6.50", spec="大份")
    StoreSkuFactory(store=store, sku=rice)
    StoreSkuFactory(store=store, sku=soup)
    stock_set(store_id=store.pk, sku_id=rice.pk, on_hand=10)
    return {"rice": rice, "soup": soup}


@pytest.fixture
def cashier(store):
    return pos_terminal(store=store, role="cashier", name="Counter")


@pytest.fixture
def manager(store):
    return pos_terminal(store=store, role="manager", name="Manager POS")


@pytest.fixture
def pos(cashier):
    return token_client(cashier[1])


@pytest.fixture
def pos_manager(manager):
    return token_client(manager[1])
