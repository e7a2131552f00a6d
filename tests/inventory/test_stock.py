import pytest
from django.core.management import call_command
from django.db import connection, transaction

from core.errors import Conflict
from inventory.models import MovementReason, Stock, StockMovement, StockShortfall
from inventory.services import OutOfStock, stock_deduct, stock_ledger_mismatches, stock_release, stock_restock, stock_set
from tests.channels.sim_helpers import threads_run
from tests.factories import SkuFactory, StoreFactory


def _stock(store, sku):
    return Stock.objects.get(store=store, sku=sku).on_hand


@pytest.mark.django_db
def test_deduct_takes_stock_and_writes_one_ledger_row_per_sku():
    store = StoreFactory()
    a, b = SkuFactory(brand=store.brand), SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=a.pk, on_hand=10)
    stock_set(store_id=store.pk, sku_id=b.pk, on_hand=5)

    shortfall = stock_deduct(store_id=store.pk, quantities={a.pk: 3, b.pk: 5}, reference="ORDER1")

    assert shortfall == {}
    assert (_stock(store, a), _stock(store, b)) == (7, 0)
    assert sorted(StockMovement.objects.filter(reference="ORDER1").values_list("stock__sku_id", "delta")) == sorted(
        [(a.pk, -3), (b.pk, -5)])
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_deduct_refuses_oversell_and_changes_nothing():
    store = StoreFactory()
    a, b = SkuFactory(brand=store.brand), SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=a.pk, on_hand=10)
    stock_set(store_id=store.pk, sku_id=b.pk, on_hand=1)

    with pytest.raises(OutOfStock) as caught:
        stock_deduct(store_id=store.pk, quantities={a.pk: 3, b.pk: 2}, reference="ORDER2")

    assert caught.value.detail == {"skus": {str(b.pk): {"wanted": 2, "on_hand": 1}}}
    assert (_stock(store, a), _stock(store, b)) == (10, 1)
    assert not StockMovement.objects.filter(reference="ORDER2").exists()


@pytest.mark.django_db
def test_untracked_skus_are_skipped():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    assert stock_deduct(store_id=store.pk, quantities={sku.pk: 3}, reference="ORDER3") == {}
    assert not Stock.objects.exists()


@pytest.mark.django_db
def test_platform_shortfall_takes_what_is_there_and_records_the_rest():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=2)

    shortfall = stock_deduct(store_id=store.pk, quantities={sku.pk: 5}, reference="MT-1", allow_shortfall=True)

    assert shortfall == {sku.pk: 3}
    assert _stock(store, sku) == 0
    assert list(StockShortfall.objects.values_list("reference", "quantity")) == [("MT-1", 3)]
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_release_gives_back_exactly_once():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=10)
    stock_deduct(store_id=store.pk, quantities={sku.pk: 4}, reference="ORDER4")

    assert stock_release(store_id=store.pk, reference="ORDER4") == {sku.pk: 4}
    assert stock_release(store_id=store.pk, reference="ORDER4") == {}
    assert _stock(store, sku) == 10
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db
def test_same_reference_cannot_deduct_twice():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=10)
    stock_deduct(store_id=store.pk, quantities={sku.pk: 1}, reference="ORDER5")
    with pytest.raises(Exception) as caught:
        stock_deduct(store_id=store.pk, quantities={sku.pk: 1}, reference="ORDER5")
    assert getattr(caught.value, "code", None) == "stock_already_deducted"
    assert _stock(store, sku) == 9


@pytest.mark.django_db
def test_restock_and_adjust_keep_the_ledger_and_check_command_passes(capsys):
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=10)
    stock_deduct(store_id=store.pk, quantities={sku.pk: 6}, reference="ORDER6")
    stock_restock(store_id=store.pk, quantities={sku.pk: 2}, reference="REFUND6")
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=20, note="count")

    assert _stock(store, sku) == 20
    assert list(StockMovement.objects.order_by("id").values_list("reason", "delta")) == [
        (MovementReason.INITIAL, 10), (MovementReason.ORDER, -6), (MovementReason.RETURN, 2),
        (MovementReason.ADJUSTMENT, 14)]
    call_command("stock_check")
    assert "1 stock rows checked" in capsys.readouterr().out


@pytest.mark.django_db
def test_check_command_fails_on_a_tampered_row():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=10)
    Stock.objects.filter(store=store).update(on_hand=9)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="1 of 1 stock rows"):
        call_command("stock_check")


@pytest.mark.django_db
def test_deduction_query_count_does_not_grow_with_lines(django_assert_num_queries):
    store = StoreFactory()
    skus = [SkuFactory(brand=store.brand) for _ in range(20)]
    for sku in skus:
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=5)
    # PostgreSQL: one statement (lock in sku order, all-or-nothing UPDATE, ledger INSERT), no savepoint.
    # SQLite: savepoint, lock, update, insert ledger, release savepoint.
    expected = 1 if connection.vendor == "postgresql" else 5
    with django_assert_num_queries(expected):
        stock_deduct(store_id=store.pk, quantities={skus[0].pk: 1}, reference="ONE")
    with django_assert_num_queries(expected):
        stock_deduct(store_id=store.pk, quantities={s.pk: 1 for s in skus}, reference="TWENTY")


@pytest.mark.django_db
def test_a_refused_deduction_changes_nothing_and_the_transaction_goes_on():
    """Short on one line, or a reference that already took one of the SKUs:
    nothing changes, no ledger row is added, and the caller's transaction is
    still usable (no savepoint is needed around the call)."""
    store = StoreFactory()
    a, b = SkuFactory(brand=store.brand), SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=a.pk, on_hand=5)
    stock_set(store_id=store.pk, sku_id=b.pk, on_hand=1)
    with transaction.atomic():
        with pytest.raises(OutOfStock) as short:
            stock_deduct(store_id=store.pk, quantities={a.pk: 2, b.pk: 2}, reference="R1")
        assert short.value.detail == {"skus": {str(b.pk): {"wanted": 2, "on_hand": 1}}}
        stock_deduct(store_id=store.pk, quantities={a.pk: 1}, reference="R2")
        with pytest.raises(Conflict) as dup:
            stock_deduct(store_id=store.pk, quantities={a.pk: 1, b.pk: 1}, reference="R2")
        assert dup.value.code == "stock_already_deducted"
        assert (_stock(store, a), _stock(store, b)) == (4, 1)
    assert StockMovement.objects.filter(reference__in=["R1", "R2"]).count() == 1
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_no_oversell_with_many_threads():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=7)

    results, errors = threads_run(
        20, lambda i: stock_deduct(store_id=store.pk, quantities={sku.pk: 1}, reference=f"T{i}"))

    assert len(results) == 7
    assert len(errors) == 13 and all(isinstance(e, OutOfStock) for e in errors)
    assert _stock(store, sku) == 0
    assert stock_ledger_mismatches() == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_multi_line_deductions_in_opposite_orders_do_not_deadlock():
    store = StoreFactory()
    skus = [SkuFactory(brand=store.brand) for _ in range(4)]
    for sku in skus:
        stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=1000)

    def deduct(i):
        ordered = skus if i % 2 else list(reversed(skus))
        quantities = {sku.pk: 1 for sku in ordered}  # dict order differs per thread
        for round_no in range(10):
            stock_deduct(store_id=store.pk, quantities=quantities, reference=f"D{i}-{round_no}")
        return i

    results, errors = threads_run(12, deduct)

    assert errors == []
    assert len(results) == 12
    assert [_stock(store, sku) for sku in skus] == [880, 880, 880, 880]
    assert stock_ledger_mismatches() == []


@pytest.mark.django_db(transaction=True)
def test_deducting_nothing_changes_nothing_and_a_duplicate_outside_a_transaction_is_undone():
    store = StoreFactory()
    sku = SkuFactory(brand=store.brand)
    stock_set(store_id=store.pk, sku_id=sku.pk, on_hand=3)

    assert stock_deduct(store_id=store.pk, quantities={}, reference="EMPTY") == {}
    stock_deduct(store_id=store.pk, quantities={sku.pk: 1}, reference="AUTO")  # autocommit caller
    with pytest.raises(Conflict):
        stock_deduct(store_id=store.pk, quantities={sku.pk: 1}, reference="AUTO")

    assert _stock(store, sku) == 2
    assert StockMovement.objects.filter(reference__in=["EMPTY", "AUTO"]).count() == 1
    assert stock_ledger_mismatches() == []
