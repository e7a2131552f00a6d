"""The after-sales queue in a real browser: a customer's refund request waits with its lines in words;
the manager approves after the confirmation and the refund reaches the payment provider simulator."""

import time

import pytest
from playwright.sync_api import expect

from accounts.models import StaffRole
from aftersales.models import AfterSalesRequest
from aftersales.services import LineAsk, aftersales_request_create
from core.actors import Actor
from tests.browser.test_board_browser import SCREENSHOTS, browser, logged_in_page, needs_chromium, no_horizontal_overflow  # noqa: F401
from tests.factories import staff_user
from tests.orders.conftest import customer, shop  # noqa: F401  (fixtures)
from tests.orders.test_refunds_money import POS, paid_order, refund_calls, walk, wxpay  # noqa: F401


@pytest.mark.browser
@needs_chromium
def test_a_manager_approves_a_refund_in_the_queue_and_the_provider_refunds_it(browser, live_server, wxpay, shop,
                                                                                 customer):
    store = shop["store"]
    order = walk(paid_order(wxpay, customer, store, lines=(("RICE", 2),)), ("accept", POS), ("mark_ready", POS),
                 ("pick_up", POS))
    rice = order.lines.get(sku_code="RICE")
    asked = aftersales_request_create(order_id=order.pk, actor=Actor(kind="customer", id=str(customer.pk)),
                                      lines=[LineAsk(line_id=rice.pk, quantity=1)], reason_code="quality",
                                      reason="饭是夹生的", customer_id=customer.pk)
    staff_user(role=StaffRole.STORE_MANAGER, store=store, username="manager")
    page = logged_in_page(browser, live_server, username="manager", locale="en-US")
    page.goto(f"{live_server.url}/workspace/after-sales/")

    card = page.locator(f'[data-request="{asked.pk}"]')
    expect(card).to_contain_text("饭是夹生的")
    expect(card).to_contain_text(f"¥{asked.amount}")
    expect(card).to_contain_text("1×")
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "after-sales-en-US-1366.png"), full_page=True)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))

    card.get_by_role("button", name="Approve").click()

    expect(page.locator("#after-sales-list .done")).to_contain_text(f"¥{asked.amount}")
    assert dialogs == [f"Refund ¥{asked.amount} to the customer?"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and AfterSalesRequest.objects.get(pk=asked.pk).status != "refunded":
        time.sleep(0.1)
    assert AfterSalesRequest.objects.get(pk=asked.pk).status == "refunded"
    [call] = refund_calls(wxpay)
    assert call["body"]["amount"]["refund"] == int(asked.amount * 100)
    page.context.close()
