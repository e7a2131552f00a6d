"""The dashboard: figures from the rollups equal sums computed straight from the orders, a fixed
number of queries, scope, the brand's "clerks see money" setting, exports, bad dates."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import StaffRole
from aftersales.services import LineAsk, aftersales_approve, aftersales_request_create
from backoffice.models import RollupWatermark, SalesRollup, SkuSalesRollup
from backoffice.rollups import sales_rollups_rebuild, sales_rollups_refresh
from core.actors import Actor
from orders.models import Order
from orders.services import LineInput
from tests.factories import SkuFactory, StoreSkuFactory, staff_user
from tests.order_helpers import make_order, walk

pytestmark = pytest.mark.django_db

KUNG_PAO = LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, spec="大份")
RICE = LineInput(name="米饭", unit_price=Decimal("2.50"), quantity=3)
TEA = LineInput(name="柠檬茶", unit_price=Decimal("15.00"), quantity=1)


def sql_one(query: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchone()


def independent_totals(*, brand_id: int, day: datetime.date, store_ids: list[int]) -> dict:
    """What the dashboard must show, summed in plain SQL from the orders (not the rollups)."""
    table = Order._meta.db_table
    marks = ", ".join(["%s"] * len(store_ids))
    where = f"brand_id = %s AND business_date = %s AND store_id IN ({marks})"
    counted = where + " AND status NOT IN ('pending_payment', 'cancelled')"
    orders, takings, refunded = sql_one(
        f"SELECT COUNT(*), COALESCE(SUM(paid_amount), 0), COALESCE(SUM(refunded_amount), 0) FROM {table} "
        f"WHERE {counted}", [brand_id, day, *store_ids])
    (refunded_orders,) = sql_one(f"SELECT COUNT(*) FROM {table} WHERE {counted} AND refunded_amount > 0",
                                 [brand_id, day, *store_ids])
    (cancelled,) = sql_one(f"SELECT COUNT(*) FROM {table} WHERE {where} AND status = 'cancelled' "
                           f"AND paid_amount > 0", [brand_id, day, *store_ids])
    return {"orders": orders, "takings": Decimal(takings), "refunded": Decimal(refunded),
            "refunded_orders": refunded_orders, "cancelled": cancelled}


def refund_part(order, *, line_no: int, quantity: int):
    manager = Actor.staff(staff_user(role=StaffRole.STORE_MANAGER, store=order.store))
    line = order.lines.get(line_no=line_no)
    request = aftersales_request_create(order_id=order.pk, actor=manager, lines=[LineAsk(line.pk, quantity)],
                                        reason_code="store_error", reason="少送")
    aftersales_approve(request_id=request.pk, actor=manager)
    return Order.objects.get(pk=order.pk)


@pytest.fixture
def sales(store_a, store_b, store_y):
    """A day of store A and B (brand X) and store Y (brand Y): counted, unpaid, cancelled after
    payment, refunded in part and in whole, accepted and prepared at known times."""
    a1 = walk(make_order(store=store_a, paid=True, lines=[KUNG_PAO, RICE]), "accept", "mark_ready")  # 63.50
    a2 = walk(make_order(store=store_a, paid=True, lines=[TEA]), "accept")  # 15.00
    a3 = refund_part(walk(make_order(store=store_a, paid=True, lines=[KUNG_PAO, RICE]), "accept"),
                     line_no=2, quantity=3)  # 63.50, 7.50 back
    make_order(store=store_a, paid=False, lines=[TEA])  # unpaid: not counted
    walk(make_order(store=store_a, paid=True, lines=[TEA]), "cancel")  # cancelled after payment
    b1 = make_order(store=store_b, paid=True, channel="meituan", order_type="delivery", lines=[KUNG_PAO],
                    channel_order_id="27000001")  # 56.00
    b2 = walk(make_order(store=store_b, paid=True, lines=[TEA, TEA]), "accept", "mark_ready", "pick_up", "refund")
    y1 = make_order(store=store_y, paid=True, lines=[KUNG_PAO])
    placed = timezone.localtime().replace(hour=11, minute=30, second=0, microsecond=0)
    for order, accept_after, ready_after in ((a1, 60, 600), (a2, 120, None), (a3, 180, None)):
        Order.objects.filter(pk=order.pk).update(
            placed_at=placed, paid_at=placed, accepted_at=placed + datetime.timedelta(seconds=accept_after),
            ready_at=placed + datetime.timedelta(seconds=accept_after + ready_after) if ready_after else None)
    sales_rollups_refresh()
    return {"a1": a1, "a2": a2, "a3": a3, "b1": b1, "b2": b2, "y1": y1}


def test_brand_figures_equal_independent_sums(login, admin_x, sales, store_a, store_b, brand_x):
    page = login(admin_x).get("/workspace/dashboard/")

    assert page.status_code == 200
    total = page.context["figures"].total
    expected = independent_totals(brand_id=brand_x.pk, day=timezone.localdate(), store_ids=[store_a.pk, store_b.pk])
    assert {"orders": total.orders, "takings": total.takings, "refunded": total.refunded,
            "refunded_orders": total.refunded_orders, "cancelled": total.cancelled} == expected
    # And in plain figures: a1 63.50 + a2 15.00 + a3 63.50 + b1 56.00 + b2 30.00 (refunded whole).
    assert total.orders == 5
    assert total.takings == Decimal("228.00")
    assert total.refunded == Decimal("37.50")
    assert total.net == Decimal("190.50")
    assert total.average_ticket == Decimal("45.60")
    assert total.refund_rate == Decimal("40.0")
    assert total.cancelled == 1
    # a1 accepted after 60 s, a2 120 s, a3 180 s, b2 at once-ish: the three known ones dominate.
    a_only = login(admin_x).get("/workspace/dashboard/", {"store": store_a.pk}).context["figures"].total
    assert a_only.accept_minutes == Decimal("2.0")
    assert a_only.prep_minutes == Decimal("10.0")
    html = page.content.decode()
    assert 'data-figure="takings">¥228.00<' in html
    assert 'data-figure="orders">5<' in html


def test_channels_hours_stores_and_top_skus(login, admin_x, sales, store_a, store_b):
    figures = login(admin_x).get("/workspace/dashboard/").context["figures"]

    assert [(c.key, c.orders, c.takings) for c in figures.channels] == [
        ("miniapp", 4, Decimal("172.00")), ("meituan", 1, Decimal("56.00"))]
    assert sum(h.orders for h in figures.hours) == 5
    eleven = next(h for h in figures.hours if h.key == 11)
    assert eleven.orders == 3  # a1, a2, a3 placed at 11:30 local time
    hours = [h.key for h in figures.hours]
    assert hours == list(range(hours[0], hours[-1] + 1)) and hours[0] <= 9 and hours[-1] >= 21
    assert [(s.label, s.orders, s.takings) for s in figures.stores] == [
        ("Store A", 3, Decimal("142.00")), ("Store B", 2, Decimal("86.00"))]
    top = [(row["name"], row["quantity"], row["amount"]) for row in figures.top_skus]
    # Units sold on counted orders (a line refunded later still counts as sold: its money shows
    # under refunds); a tie in units goes to the larger amount.
    assert top == [("宫保鸡丁 大份", 6, Decimal("168.00")), ("米饭", 6, Decimal("15.00")),
                   ("柠檬茶", 3, Decimal("45.00"))]


def test_the_number_of_queries_does_not_grow_with_the_orders(login, admin_x, store_a, sales):
    client = login(admin_x)
    client.get("/workspace/dashboard/")
    with CaptureQueriesContext(connection) as few:
        client.get("/workspace/dashboard/", {"period": "30d"})
    for _ in range(20):
        walk(make_order(store=store_a, paid=True, lines=[KUNG_PAO, RICE, TEA]), "accept", "mark_ready")
    sales_rollups_refresh()
    with CaptureQueriesContext(connection) as many:
        page = client.get("/workspace/dashboard/", {"period": "30d"})

    assert page.context["figures"].total.orders == 25
    assert len(many) == len(few)


def test_a_refund_decided_days_later_lands_on_the_day_of_the_sale(login, admin_x, store_a):
    order = walk(make_order(store=store_a, paid=True, lines=[KUNG_PAO, RICE]), "accept", "mark_ready", "pick_up")
    three_days_ago = timezone.localdate() - datetime.timedelta(days=3)
    Order.objects.filter(pk=order.pk).update(business_date=three_days_ago,
                                             placed_at=timezone.now() - datetime.timedelta(days=3))
    first = sales_rollups_refresh()
    assert first == {"days": 1, "pairs": 1, "rows": 3}  # one cell, two SKUs
    assert sales_rollups_refresh()["days"] == 1  # the margin looks at the last two minutes again
    RollupWatermark.objects.filter(name="sales").update(changed_since=timezone.now() + datetime.timedelta(minutes=5))
    assert sales_rollups_refresh() == {"days": 0, "pairs": 0, "rows": 0}  # nothing changed since

    refund_part(order, line_no=1, quantity=1)
    again = sales_rollups_refresh()

    assert again["pairs"] == 1
    cell = SalesRollup.objects.get(store=store_a)
    assert (cell.business_date, cell.orders, cell.takings, cell.refunded_orders, cell.refunded) == (
        three_days_ago, 1, Decimal("63.50"), 1, Decimal("28.00"))
    page = login(admin_x).get("/workspace/dashboard/", {"period": "7d"})
    assert page.context["figures"].total.refunded == Decimal("28.00")
    assert page.context["figures"].days[3].orders == 1
    yesterday = login(admin_x).get("/workspace/dashboard/", {"period": "yesterday"}).context["figures"]
    assert yesterday.total.orders == 0


def test_rebuild_recomputes_every_day_with_progress(store_a, store_b):
    for store in (store_a, store_b):
        walk(make_order(store=store, paid=True, lines=[TEA]), "accept")
    Order.objects.filter(store=store_b).update(business_date=timezone.localdate() - datetime.timedelta(days=1))
    SalesRollup.objects.create(brand=store_a.brand, store=store_a, business_date=timezone.localdate(),
                               channel="app", hour=3, orders=99)  # a stale row the rebuild replaces
    seen = []

    result = sales_rollups_rebuild(progress=lambda done, total, day: seen.append((done, total, day)))

    assert result == {"days": 2, "rows": 4}
    assert [s[:2] for s in seen] == [(1, 2), (2, 2)]
    assert sorted(SalesRollup.objects.values_list("store__code", "orders")) == [("a", 1), ("b", 1)]
    assert SkuSalesRollup.objects.count() == 2
    assert RollupWatermark.objects.filter(name="sales").exists()


def test_scope_a_manager_sees_own_stores_only(login, manager_a, sales, store_a, store_b, store_y, brand_x):
    client = login(manager_a)
    page = client.get("/workspace/dashboard/")

    assert page.status_code == 200
    assert page.context["selection"].store_ids == (store_a.pk,)
    expected = independent_totals(brand_id=brand_x.pk, day=timezone.localdate(), store_ids=[store_a.pk])
    assert page.context["figures"].total.orders == expected["orders"] == 3
    assert page.context["figures"].total.takings == expected["takings"] == Decimal("142.00")
    assert client.get("/workspace/dashboard/", {"store": store_b.pk}).status_code == 404
    assert client.get("/workspace/dashboard/", {"store": store_y.pk}).status_code == 404
    other = client.get("/workspace/dashboard/", {"brand": store_y.brand_id})  # not theirs: their own brand shown
    assert other.context["brand"] == brand_x


def test_clerks_see_no_money_when_the_brand_says_so(login, clerk_a, manager_a, sales, brand_x, client):
    brand_x.clerks_see_money = False
    brand_x.save(update_fields=["clerks_see_money"])

    page = login(clerk_a).get("/workspace/dashboard/")

    html = page.content.decode()
    assert page.context["money_visible"] is False
    assert 'data-figure="orders">3<' in html
    assert 'data-figure="takings"' not in html and "¥142.00" not in html and 'data-figure="refunded"' not in html
    assert '"takings": []' in html  # the charts get counts only
    assert client.get("/workspace/dashboard/export/orders.csv").status_code == 403
    assert client.get("/workspace/dashboard/export/summary.xlsx").status_code == 403
    client.logout()
    manager = login(manager_a).get("/workspace/dashboard/")
    assert manager.context["money_visible"] is True
    assert 'data-figure="takings">¥142.00<' in manager.content.decode()
    brand_x.clerks_see_money = True
    brand_x.save(update_fields=["clerks_see_money"])
    client.logout()
    assert login(clerk_a).get("/workspace/dashboard/").context["money_visible"] is True


def test_exports_csv_and_excel(login, admin_x, sales, store_a):
    from openpyxl import load_workbook

    client = login(admin_x)
    orders_csv = client.get("/workspace/dashboard/export/orders.csv")
    assert orders_csv.status_code == 200
    assert orders_csv["Content-Type"] == "text/csv; charset=utf-8"
    day = timezone.localdate().strftime("%Y%m%d")
    assert orders_csv["Content-Disposition"] == f'attachment; filename="brand-x-orders-{day}-{day}.csv"'
    text = b"".join(orders_csv.streaming_content).decode("utf-8")
    assert text.startswith("\ufeffOrder number,Business date,")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 1 + 7  # every order of brand X that day, unpaid and cancelled included
    by_no = {row[0]: row for row in rows[1:]}
    assert by_no[sales["a3"].order_no][15:17] == ["63.50", "7.50"]  # paid, refunded

    summary = client.get("/workspace/dashboard/export/summary.xlsx", {"store": store_a.pk})
    assert summary.status_code == 200
    assert summary["Content-Disposition"] == f'attachment; filename="a-summary-{day}-{day}.xlsx"'
    sheet = load_workbook(io.BytesIO(summary.content)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][:6] == ["Business date", "Store code", "Store", "Channel", "Orders", "Takings"]
    assert len(values) == 2
    assert values[1][:9] == [timezone.localdate().isoformat(), "a", "Store A", "Mini-program", 3, 142, 1, 7.5, 134.5]

    assert client.get("/workspace/dashboard/export/secrets.csv").status_code == 404
    assert client.get("/workspace/dashboard/export/orders.pdf").status_code == 404


def test_chinese_export_headers(login, admin_x, sales):
    client = login(admin_x)
    text = b"".join(client.get("/workspace/dashboard/export/summary.csv",
                               HTTP_ACCEPT_LANGUAGE="zh-hans").streaming_content).decode()
    assert text.splitlines()[0].lstrip("\ufeff").startswith("营业日,门店编码,门店,渠道,订单,营业额")


def test_periods_and_bad_dates(login, admin_x, sales):
    client = login(admin_x)
    today = timezone.localdate()
    for period, start in (("today", today), ("yesterday", today - datetime.timedelta(days=1)),
                          ("7d", today - datetime.timedelta(days=6)), ("30d", today - datetime.timedelta(days=29))):
        selection = client.get("/workspace/dashboard/", {"period": period}).context["selection"]
        assert selection.date_from == start, period
    chosen = client.get("/workspace/dashboard/", {"period": "range", "date_from": "2026-11-01",
                                                  "date_to": "2026-11-30"}).context["selection"]
    assert (chosen.date_from, chosen.date_to, chosen.days) == (datetime.date(2026, 11, 1), datetime.date(2026, 11, 30), 30)

    reversed_ = client.get("/workspace/dashboard/", {"period": "range", "date_from": "2026-11-30",
                                                     "date_to": "2026-11-01"})
    assert reversed_.status_code == 400
    assert "The first date is after the second." in reversed_.content.decode()
    assert reversed_.context["selection"].date_from == today  # today's figures still shown
    garbled = client.get("/workspace/dashboard/", {"period": "range", "date_from": "yesterday", "date_to": "x"})
    assert garbled.status_code == 400
    too_long = client.get("/workspace/dashboard/", {"period": "range", "date_from": "2024-01-01",
                                                    "date_to": "2026-01-01"})
    assert too_long.status_code == 400
    assert client.get("/workspace/dashboard/export/orders.csv", {"period": "range", "date_from": "x"}).status_code == 400


def test_sold_out_now(login, manager_a, store_a, store_b):
    kept = StoreSkuFactory(store=store_a, sku=SkuFactory(code="tea"), is_available=False)
    StoreSkuFactory(store=store_a, sku=SkuFactory(code="rice"), stock_out=True)
    StoreSkuFactory(store=store_a, sku=SkuFactory(code="fish"))
    StoreSkuFactory(store=store_b, sku=SkuFactory(code="duck"), is_available=False)

    figures = login(manager_a).get("/workspace/dashboard/").context["figures"]

    assert figures.sold_out_count == 2
    assert sorted(row.sku.code for row in figures.sold_out) == ["rice", "tea"]
    assert kept in figures.sold_out


def test_landing(login, admin_x, manager_a, clerk_a, superuser, store_a, client):
    assert login(admin_x).get("/workspace/")["Location"] == "/workspace/dashboard/"
    client.logout()
    assert login(superuser).get("/workspace/")["Location"] == "/workspace/dashboard/"
    client.logout()
    assert login(manager_a).get("/workspace/")["Location"] == "/workspace/board/"
    client.logout()
    assert login(clerk_a).get("/workspace/")["Location"] == "/workspace/board/"


def test_the_rebuild_command_shows_progress_and_refuses_bad_dates(store_a):
    from django.core.management import CommandError, call_command

    walk(make_order(store=store_a, paid=True, lines=[TEA]), "accept")
    out = io.StringIO()
    call_command("sales_rollups_rebuild", stdout=out)
    assert out.getvalue().splitlines() == [
        f"[{'#' * 30}] 1/1 days ({timezone.localdate().isoformat()})", "1 business days recomputed, 2 rows written"]
    with pytest.raises(CommandError, match="dates are YYYY-MM-DD"):
        call_command("sales_rollups_rebuild", "--from", "yesterday")
    with pytest.raises(CommandError, match="--from is after --to"):
        call_command("sales_rollups_rebuild", "--from", "2026-02-01", "--to", "2026-01-01")


def test_stale_figures_are_said_so(login, admin_x, sales):
    client = login(admin_x)
    assert client.get("/workspace/dashboard/").context["figures_stale"] is False
    RollupWatermark.objects.filter(name="sales").update(ran_at=timezone.now() - datetime.timedelta(minutes=6))
    page = client.get("/workspace/dashboard/")
    assert page.context["figures_stale"] is True
    assert "the sales-rollups job has not run for a while" in page.content.decode()
