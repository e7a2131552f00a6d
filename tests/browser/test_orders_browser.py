"""Orders in a real browser: find an order by the last 4 digits of the phone, open its page; both
languages at 1366 px with no horizontal overflow. Screenshots go to var/test-screenshots/."""

import pytest
from playwright.sync_api import expect

from accounts.models import StaffRole
from tests.browser.test_board_browser import SCREENSHOTS, browser, logged_in_page, needs_chromium, no_horizontal_overflow  # noqa: F401
from tests.factories import StoreFactory, staff_user
from tests.order_helpers import make_order, walk


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(("locale", "heading"), [("en-US", "Orders"), ("zh-CN", "订单")])
def test_find_an_order_by_phone_and_read_its_page(browser, live_server, locale, heading):
    store = StoreFactory(name="老街坊·静安店")
    order = walk(make_order(store=store, paid=True, contact_name="王先生", contact_phone="13812345678",
                            order_type="delivery", address={"detail": "上海市静安区南京西路1266号", "name": "王先生"},
                            customer_note="多放香菜"), "accept")
    make_order(store=store, paid=True, contact_phone="13900000000")
    staff_user(role=StaffRole.STORE_MANAGER, store=store, username="manager")
    page = logged_in_page(browser, live_server, username="manager", locale=locale)
    page.goto(f"{live_server.url}/workspace/orders/")
    expect(page.locator("h1")).to_have_text(heading)

    page.fill("#order-q", "5678")
    rows = page.locator("#order-results tbody tr[data-order]")
    expect(rows).to_have_count(1)
    rows.first.get_by_role("link", name=order.order_no).click()

    expect(page.locator(".order-page")).to_contain_text("上海市静安区南京西路1266号")
    expect(page.locator(".order-page")).to_contain_text("多放香菜")
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"order-{locale}-1366.png"), full_page=True)
    page.context.close()
