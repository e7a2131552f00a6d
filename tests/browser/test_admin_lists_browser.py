"""The admin's pages a store uses, at 1366 px in both languages: no horizontal overflow; a
screenshot of each for review (var/test-screenshots/)."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from accounts.models import StaffRole
from orders.models import Order
from orders.services import LineInput
from tests.browser.test_board_browser import SCREENSHOTS, browser, logged_in_page, needs_chromium, no_horizontal_overflow  # noqa: F401
from tests.factories import StoreFactory, staff_user
from tests.order_helpers import make_order, staff_refund, walk


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_order_and_after_sales_pages_fit_1366(browser, live_server, locale):
    store = StoreFactory(name="老街坊·静安店")
    lines = [LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, spec="大份",
                       options=[{"name": "微辣"}]), LineInput(name="米饭", unit_price=Decimal("2.00"), quantity=2)]
    orders = [make_order(store=store, paid=True, order_type="delivery", channel="meituan", channel_order_id=f"270{n}",
                         lines=lines, contact_phone="13812345678",
                         address={"text": "上海市静安区南京西路1266号恒隆广场一期写字楼35楼"}) for n in range(5)]
    Order.objects.filter(pk=orders[0].pk).update(needs_attention=True, attention_reason="金额与平台不符：平台 ¥60.00")
    refunded = staff_refund(walk(make_order(store=store, paid=True, lines=lines), "accept", "mark_ready", "pick_up"))
    staff_user(role=StaffRole.STORE_MANAGER, store=store, username="manager")
    page = logged_in_page(browser, live_server, username="manager", locale=locale)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    request_id = refunded.after_sales.get().pk

    for name, path in (("order-list", "/admin/orders/order/"), ("order-page", f"/admin/orders/order/{orders[0].pk}/change/"),
                       ("after-sales-list", "/admin/aftersales/aftersalesrequest/"),
                       ("after-sales-page", f"/admin/aftersales/aftersalesrequest/{request_id}/change/")):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("#content")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / f"admin-{name}-{locale}-1366.png"), full_page=True)
        assert no_horizontal_overflow(page), name
    page.goto(f"{live_server.url}/admin/orders/order/")
    expect(page.locator("td.field-attention span.order-attention")).to_have_count(1)
    page.context.close()


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("width", [1366, 1024])
def test_the_workspace_after_sales_queue_and_board_fit_in_chinese(browser, live_server, width):
    from aftersales.services import LineAsk, aftersales_request_create
    from core.actors import Actor

    store = StoreFactory(name="老街坊·静安店")
    lines = [LineInput(name="宫保鸡丁", unit_price=Decimal("28.00"), quantity=2, spec="大份")]
    manager = staff_user(role=StaffRole.STORE_MANAGER, store=store, username="manager")
    for n in range(3):
        order = walk(make_order(store=store, paid=True, lines=lines), "accept", "mark_ready", "pick_up")
        aftersales_request_create(order_id=order.pk, actor=Actor.staff(manager),
                                  lines=[LineAsk(line_id=order.lines.get().pk, quantity=1)],
                                  reason_code="quality", reason="菜凉了，顾客要求退一份")
    make_order(store=store, paid=True, lines=lines, customer_note="不要香菜，多放辣，送到前台")
    page = logged_in_page(browser, live_server, username="manager", locale="zh-CN", width=width, height=768)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    for name, path in (("after-sales", "/workspace/after-sales/"), ("board", "/workspace/board/"),
                       ("dashboard", "/workspace/dashboard/")):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("h1")).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-zh-CN-{width}.png"), full_page=True)
        assert no_horizontal_overflow(page), name
    page.context.close()
