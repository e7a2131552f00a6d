"""A store manager accepts an order in a real browser, then opens the status map."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from accounts.models import StaffRole
from orders.models import Order, OrderStatus
from tests.factories import StoreFactory, staff_user
from tests.order_helpers import make_order

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture
def page(transactional_db, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="en-US")
            yield context.new_page()
            context.close()
        finally:
            browser.close()


@pytest.mark.browser
# Skipped only on a developer machine without chromium; CI (CI=true) installs it and must run it.
@pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                    reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)")
def test_store_manager_accepts_an_order_and_reads_the_status_map(page, live_server):
    # given
    store = StoreFactory(name="People's Square")
    staff_user(role=StaffRole.STORE_MANAGER, store=store, username="manager")
    order = make_order(store=store, paid=True)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "manager")
    page.fill("#id_password", "pass12345")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()

    # when
    page.goto(f"{live_server.url}/admin/orders/order/{order.pk}/change/")
    page.locator("#order-transitions").get_by_role("button", name="Accept").click()

    # then
    expect(page.locator(".messagelist .success")).to_contain_text("“Accept” done")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ACCEPTED
    timeline = page.locator("#events-group tbody tr.has_original")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(1)).to_contain_text("Accept")
    expect(timeline.nth(1)).to_contain_text("manager")
    expect(page.locator("#order-transitions button")).to_have_text(["Meal ready", "Cancel"])

    # when
    page.goto(f"{live_server.url}/backoffice/status-map/")

    # then
    row = page.locator('#status-map tr[data-type="delivery"][data-status="dispatched"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Out for delivery")
