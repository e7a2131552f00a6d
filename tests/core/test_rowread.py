"""core.rowread.JoinedRead gives what the ORM's select_related gives: every field of every joined
row, converted alike, linked alike; None for an outer join that found nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.authentication import _TOKEN_READ
from accounts.models import CustomerToken
from accounts.services import customer_token_issue, customer_token_revoke, token_hash
from pos.authentication import terminal_for_token
from pos.models import PosTerminal
from tests.factories import BrandFactory, CustomerFactory, MemberTierFactory, StoreFactory, pos_terminal

pytestmark = pytest.mark.django_db


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


@pytest.mark.parametrize("with_tier", [True, False])
def test_the_token_read_equals_select_related(with_tier):
    brand = BrandFactory(name="老街坊")
    customer = CustomerFactory(brand=brand, tier=MemberTierFactory(brand=brand) if with_tier else None)
    raw = customer_token_issue(customer=customer).token
    orm = CustomerToken.objects.select_related("customer__tier", "customer__brand").get(key_hash=token_hash(raw))

    with CaptureQueriesContext(connection) as queries:
        token = _TOKEN_READ.first(token_hash(raw))
        customer_read, brand_read, tier_read = token.customer, token.customer.brand, token.customer.tier

    assert len(queries) == 1
    assert fields(token) == fields(orm)
    assert fields(customer_read) == fields(orm.customer)
    assert fields(brand_read) == fields(orm.customer.brand)
    assert (fields(tier_read) if tier_read else None) == (fields(orm.customer.tier) if with_tier else None)
    assert token._state.adding is False and token._state.db == "default"


def test_revoked_and_unknown_tokens_read_nothing():
    customer = CustomerFactory()
    raw = customer_token_issue(customer=customer).token
    customer_token_revoke(raw_token=raw)

    assert _TOKEN_READ.first(token_hash(raw)) is None
    assert _TOKEN_READ.first(token_hash("not-a-token")) is None


def test_the_terminal_read_equals_select_related():
    store = StoreFactory(business_hours=[{"weekdays": [1, 2], "open": "10:00", "close": "22:00"}])
    terminal, raw = pos_terminal(store=store)
    orm = PosTerminal.objects.select_related("store").get(pk=terminal.pk)

    read = terminal_for_token(raw)

    assert fields(read) == fields(orm)
    assert fields(read.store) == fields(orm.store)
    assert read.store.business_hours == [{"weekdays": [1, 2], "open": "10:00", "close": "22:00"}]


def test_cart_rows_equal_the_orm_read():
    from catalog.models import StoreSku
    from inventory.selectors import stock_on_hand_subquery
    from inventory.services import stock_set
    from orders.selectors import cart_rows
    from tests.factories import SkuFactory, StoreSkuFactory

    store = StoreFactory()
    other = StoreFactory(brand=store.brand)
    rice, tea, soup = (SkuFactory(brand=store.brand, code=code) for code in ("RICE", "TEA", "SOUP"))
    for sku in (rice, tea, soup):
        StoreSkuFactory(store=store, sku=sku)
    StoreSkuFactory(store=other, sku=rice)
    stock_set(store_id=store.pk, sku_id=rice.pk, on_hand=7)
    stock_set(store_id=store.pk, sku_id=tea.pk, on_hand=0)
    codes = ["RICE", "TEA", "SOUP", "NOPE", "RICE"]
    orm = {row.pk: row for row in StoreSku.objects.filter(store_id=store.pk, store__brand_id=store.brand_id,
                                                           sku__code__in=codes)
           .select_related("store__brand", "sku__product").annotate(on_hand=stock_on_hand_subquery())}

    with CaptureQueriesContext(connection) as queries:
        rows = cart_rows(store_id=store.pk, brand_id=store.brand_id, sku_codes=codes)
        linked = [(row.store.brand.name, row.sku.product.name, row.on_hand) for row in rows]

    assert len(queries) == 1
    assert sorted(row.pk for row in rows) == sorted(orm)
    for row in rows:
        twin = orm[row.pk]
        assert fields(row) == fields(twin)
        assert (fields(row.store), fields(row.store.brand)) == (fields(twin.store), fields(twin.store.brand))
        assert (fields(row.sku), fields(row.sku.product)) == (fields(twin.sku), fields(twin.sku.product))
        assert row.on_hand == twin.on_hand
    assert sorted(on_hand for *_names, on_hand in linked if on_hand is not None) == [0, 7]
    assert cart_rows(store_id=store.pk, brand_id=store.brand_id + 999, sku_codes=codes) == []
    assert cart_rows(store_id=store.pk, brand_id=store.brand_id, sku_codes=[]) == []
