"""The dashboard in a real browser: HQ lands on it, its figures equal sums computed straight from
the orders, the charts draw, a clerk of a brand that keeps money from clerks sees none; both
languages at 1366 px with no horizontal overflow. Screenshots go to var/test-screenshots/."""

from decimal import Decimal

import pytest
from django.db import connection
from playwright.sync_api import expect

from accounts.models import StaffRole
from backoffice.rollups import sales_rollups_refresh
from orders.models import Order
from orders.services import LineInput
from tests.browser.test_board_browser import SCREENSHOTS, browser, logged_in_page, needs_chromium, no_horizontal_overflow  # noqa: F401
from tests.factories import BrandFactory, StoreFactory, staff_user
from tests.order_helpers import make_order, walk


def seeded_brand():
    brand = BrandFactory(code="laojiefang", name="老街坊")
    jingan, xuhui = StoreFactory(brand=brand, code="jingan", name="静安店"), StoreFactory(brand=brand, code="xuhui", name="徐汇店")
    dish = LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, spec="大份")
    tea = LineInput(name="柠檬茶", unit_price=Decimal("15.00"), quantity=1)
    for n in range(4):
        walk(make_order(store=jingan, paid=True, lines=[dish, tea] if n % 2 else [tea]), "accept", "mark_ready")
    make_order(store=xuhui, paid=True, channel="meituan", order_type="delivery", lines=[dish], channel_order_id="2701")
    make_order(store=xuhui, paid=True, channel="eleme", order_type="delivery", lines=[tea, tea], channel_order_id="3101")
    walk(make_order(store=xuhui, paid=True, lines=[tea]), "cancel")
    sales_rollups_refresh()
    return brand, jingan


def sql_takings(brand) -> tuple[int, Decimal]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), SUM(paid_amount) FROM {Order._meta.db_table} WHERE brand_id = %s "
                       "AND status NOT IN ('pending_payment', 'cancelled')", [brand.pk])
        count, total = cursor.fetchone()
    return count, Decimal(total)


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(("locale", "heading", "takings"), [("en-US", "Dashboard", "Takings"), ("zh-CN", "数据看板", "营业额")])
def test_hq_lands_on_the_dashboard_and_its_figures_are_the_orders_sums(browser, live_server, locale, heading, takings):
    brand, _store = seeded_brand()
    staff_user(role=StaffRole.BRAND_ADMIN, brand=brand, username="hq")
    count, total = sql_takings(brand)
    assert (count, total) == (6, Decimal("258.00"))  # 4 + 2 counted; the cancelled one is not

    page = logged_in_page(browser, live_server, username="hq", locale=locale)

    expect(page.locator("h1")).to_have_text(heading)  # "/" lands HQ on the dashboard
    expect(page.locator('[data-figure="orders"]')).to_have_text(str(count))
    expect(page.locator('[data-figure="takings"]')).to_have_text(f"¥{total:,.2f}")
    expect(page.locator(".kpi-main .kpi-label")).to_have_text(takings)
    expect(page.locator("#store-table tbody tr")).to_have_count(2)
    expect(page.locator("#channel-table tbody tr")).to_have_count(3)
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-hours') && Chart.getChart('chart-channels')")
    assert page.evaluate("Chart.getChart('chart-channels').data.datasets[0].data.reduce((a, b) => a + b, 0)") == count
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-{locale}-1366.png"), full_page=True)

    page.locator("label.period", has=page.locator("input[value='7d']")).click()
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-days')")
    expect(page.locator('[data-figure="takings"]')).to_have_text(f"¥{total:,.2f}")
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(SCREENSHOTS / f"dashboard-7d-{locale}-1366.png"), full_page=True)
    page.context.close()


@pytest.mark.browser
@needs_chromium
def test_a_clerk_sees_no_money_when_the_brand_says_so(browser, live_server):
    brand, store = seeded_brand()
    brand.clerks_see_money = False
    brand.save(update_fields=["clerks_see_money"])
    staff_user(role=StaffRole.CLERK, store=store, username="clerk")

    page = logged_in_page(browser, live_server, username="clerk", locale="zh-CN")
    page.goto(f"{live_server.url}/workspace/dashboard/")

    expect(page.locator('[data-figure="orders"]')).to_have_text("4")
    expect(page.locator('[data-figure="takings"]')).to_have_count(0)
    expect(page.locator(".exports")).to_have_count(0)
    expect(page.locator(".money-hidden")).to_be_visible()
    assert "¥" not in page.locator("#dashboard-figures").inner_text()
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-clerk-no-money-zh-CN-1366.png"), full_page=True)
    page.context.close()
