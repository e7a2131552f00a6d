"""The live order board in a real browser: a new Meituan order pushed by the simulator appears
within 2 s and rings; accepting it on the board moves the card and the platform hears the
confirm; the page fits 1366 px in both languages. Screenshots go to var/test-screenshots/
(TEST_SCREENSHOTS_DIR) for review."""

import os
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from accounts.models import StaffRole
from orders.models import Order, OrderStatus
from simulator.testing import running_simulator
from tests.channels.conftest import shop  # noqa: F401 (a store bound to both platforms)
from tests.channels.sim_helpers import MT_LINE, meituan_shop, sim_calls
from tests.factories import staff_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = Path(os.environ.get("TEST_SCREENSHOTS_DIR", Path(__file__).resolve().parents[2] / "var" /
                                  "test-screenshots"))
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                                    reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)")


@pytest.fixture
def browser(transactional_db, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def logged_in_page(browser, live_server, *, username: str, locale: str, width: int = 1366, height: int = 900):
    context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pass12345")
    page.click("input[type=submit]")
    return page


def no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


@pytest.mark.browser
@needs_chromium
def test_a_pushed_order_rings_on_the_board_and_accepting_it_reaches_the_platform(browser, live_server, sim, shop):
    meituan_shop(sim, shop, push_url=f"{live_server.url}/channels/push/meituan")
    staff_user(role=StaffRole.STORE_MANAGER, store=shop["store"], username="manager")
    page = logged_in_page(browser, live_server, username="manager", locale="en-US")
    expect(page.locator("h1")).to_have_text("Order board")  # "/" lands a store's manager on the board
    page.evaluate("window.__plays = 0; document.getElementById('new-order-sound')"
                  ".addEventListener('play', () => { window.__plays += 1; })")
    page.get_by_role("button", name="Enable sound").click()
    expect(page.locator("#sound-state")).to_have_text("Sound on")
    expect(page.locator('[data-column="new"] .card')).to_have_count(0)

    started = time.monotonic()
    made = requests.post(f"{sim.base_url}/_sim/meituan/orders", json={
        "shop": shop["meituan"].shop_code, "lines": [MT_LINE], "push": True, "caution": "少放辣"}, timeout=5)
    assert made.status_code == 201
    card = page.locator('[data-column="new"] .card')
    expect(card).to_have_count(1, timeout=4000)
    appeared = time.monotonic() - started
    order = Order.objects.get(channel="meituan")

    assert appeared < 2.0, f"the card appeared after {appeared:.2f} s"
    expect(card).to_contain_text("Meituan")
    expect(card).to_contain_text(f"#{order.channel_day_seq}")
    expect(card).to_contain_text("少放辣")
    page.wait_for_function("window.__plays > 0", timeout=3000)
    assert page.title().startswith("(1) ")
    expect(page.get_by_role("button", name="Acknowledge new orders")).to_be_visible()
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "board-en-1366-new-order.png"), full_page=True)

    page.get_by_role("button", name="Acknowledge new orders").click()
    card.get_by_role("button", name="Accept").click()

    expect(page.locator('[data-column="preparing"] .card')).to_have_count(1)
    expect(page.locator('[data-column="new"] .card')).to_have_count(0)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.ACCEPTED
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not sim_calls(sim, "/api/v1/order/confirm", direction="in"):
        time.sleep(0.1)
    confirms = sim_calls(sim, "/api/v1/order/confirm", direction="in")
    assert [(c["status"], c["body"]["order_id"]) for c in confirms] == [(200, order.channel_order_id)]
    assert not page.title().startswith("(")
    page.context.close()


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize(("locale", "title", "width"), [("zh-CN", "订单看板", 1366), ("en-US", "Order board", 1024)])
def test_the_board_reads_in_both_languages_and_fits_the_screen(browser, live_server, shop, locale, title, width):
    from tests.order_helpers import make_order, walk

    staff_user(role=StaffRole.STORE_MANAGER, store=shop["store"], username="manager")
    make_order(store=shop["store"], paid=True, customer_note="打包带走")
    walk(make_order(store=shop["store"], paid=True), "accept")
    page = logged_in_page(browser, live_server, username="manager", locale=locale, width=width, height=768)

    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator('[data-column="new"] .card')).to_have_count(1)
    expect(page.locator('[data-column="preparing"] .card')).to_have_count(1)
    assert no_horizontal_overflow(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"board-{locale}-{width}.png"), full_page=True)
    page.context.close()
