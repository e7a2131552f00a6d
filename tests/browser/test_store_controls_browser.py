"""Store controls in a real browser: search the menu, tick two SKUs, sell them out; the page reads
in both languages and fits 1366 px. Screenshots go to var/test-screenshots/."""

import pytest
from playwright.sync_api import expect

from accounts.models import StaffRole
from catalog.models import StoreSku
from tests.browser.test_board_browser import SCREENSHOTS, browser, logged_in_page, needs_chromium, no_horizontal_overflow  # noqa: F401
from tests.factories import ProductFactory, SkuFactory, StoreFactory, StoreSkuFactory, staff_user


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(("locale", "heading", "button", "done"), [
    ("en-US", "Store controls", "Mark sold out", "2 SKUs sold out."),
    ("zh-CN", "门店设置", "标记售罄", "已沽清 2 个商品。"),
])
def test_search_tick_and_sell_out_two_skus(browser, live_server, locale, heading, button, done):
    store = StoreFactory(name="老街坊·徐汇店")
    for code, name in (("HC001", "宫保鸡丁"), ("HC002", "鸡丁盖饭"), ("ZS001", "扬州炒饭")):
        StoreSkuFactory(store=store, sku=SkuFactory(brand=store.brand, code=code,
                                                    product=ProductFactory(brand=store.brand, name=name)))
    staff_user(role=StaffRole.STORE_MANAGER, store=store, username="manager")
    page = logged_in_page(browser, live_server, username="manager", locale=locale)
    page.goto(f"{live_server.url}/workspace/stores/{store.pk}/")
    expect(page.locator("h1")).to_have_text(heading)

    page.fill("#sku-q", "鸡丁")
    rows = page.locator("#sku-table tbody tr[data-sku]")
    expect(rows).to_have_count(2)
    page.locator("#sku-table thead input[type=checkbox]").check()
    page.get_by_role("button", name=button).click()

    expect(page.locator("#sku-table .done")).to_have_text(done)
    assert set(StoreSku.objects.filter(store=store, is_available=False).values_list("sku__code", flat=True)) == {
        "HC001", "HC002"}
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"store-controls-{locale}-1366.png"), full_page=True)
    page.context.close()
