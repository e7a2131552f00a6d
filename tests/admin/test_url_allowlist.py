"""URLs a tenant can type (a binding's base URL) point only at OUTBOUND_URL_ALLOWED_HOSTS:
refused by the admin form, and refused again at call time for a row changed behind its back."""

import pytest
from django.contrib.messages import get_messages

from accounts.models import StaffRole
from channels.models import StoreBinding
from channels.services import binding_pull
from core.actors import Actor
from core.models import OutboxMessage, OutboxStatus
from core.outbox import outbox_relay
from core.urlguard import OutboundUrlRefused, outbound_url_check
from orders.models import Order
from orders.services import order_transition
from simulator.testing import running_simulator
from tests.channels.sim_helpers import MT_LINE, meituan_shop, sim_calls, sim_orders
from tests.factories import SkuFactory, StoreBindingFactory, StoreFactory, staff_user

DEMO_HOSTS = ["127.0.0.1:8100", "localhost:8100"]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8100", "http://127.0.0.1:8100/", "http://localhost:8100/api", "HTTP://LOCALHOST:8100/",
    "http://localhost.:8100/",
])
def test_urls_to_the_listed_hosts_and_ports_are_allowed(url):
    assert outbound_url_check(url, allowed_hosts=DEMO_HOSTS) is None


@pytest.mark.parametrize(("url", "reason"), [
    ("http://169.254.169.254/latest/meta-data/", "the host 169.254.169.254:80 is not in OUTBOUND_URL_ALLOWED_HOSTS"),
    ("http://127.0.0.1:5432/", "the host 127.0.0.1:5432 is not in OUTBOUND_URL_ALLOWED_HOSTS"),
    ("http://127.0.0.1/", "the host 127.0.0.1:80 is not in OUTBOUND_URL_ALLOWED_HOSTS"),
    ("http://2130706433:8100/", "the host 2130706433:8100 is not in OUTBOUND_URL_ALLOWED_HOSTS"),
    ("http://[::1]:8100/", "the host [::1]:8100 is not in OUTBOUND_URL_ALLOWED_HOSTS"),
    ("http://127.0.0.1.evil.example:8100/", "the host 127.0.0.1.evil.example:8100 is not in "
                                            "OUTBOUND_URL_ALLOWED_HOSTS"),
    ("http://user@127.0.0.1:8100/", "the URL must not carry a user name or password"),
    ("http://user:pw@localhost:8100/", "the URL must not carry a user name or password"),
    ("http://127.0.0.1:8100@169.254.169.254/", "the URL must not carry a user name or password"),
    ("http://127.0.0.1:8100\\@169.254.169.254/", "the URL contains whitespace, a control character or a backslash"),
    ("http://127.0.0.1:8100/\r\nHost: x", "the URL contains whitespace, a control character or a backslash"),
    ("file:///etc/passwd", "only http and https URLs are allowed"),
    ("gopher://127.0.0.1:8100/", "only http and https URLs are allowed"),
    ("http:///path", "the URL has no host"),
    ("http://127.0.0.1:99999/", "the URL cannot be parsed"),
])
def test_other_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(OutboundUrlRefused) as refused:
        outbound_url_check(url, allowed_hosts=DEMO_HOSTS)

    assert str(refused.value) == reason


@pytest.mark.parametrize(("entry", "url", "allowed"), [
    ("api.example.com", "https://api.example.com/v1", True),
    ("api.example.com", "http://api.example.com/v1", True),
    ("api.example.com", "https://api.example.com:8443/v1", False),
    ("api.example.com", "https://sub.api.example.com/v1", False),
    ("api.example.com:8443", "https://api.example.com:8443/v1", True),
    ("127.0.0.1:*", "http://127.0.0.1:5999/", True),
    ("127.0.0.1:*", "http://localhost:5999/", False),
    ("[::1]:8100", "http://[::1]:8100/", True),
])
def test_entries_name_a_host_on_the_default_port_a_port_or_any_port(entry, url, allowed):
    try:
        outbound_url_check(url, allowed_hosts=[entry])
    except OutboundUrlRefused:
        assert allowed is False
    else:
        assert allowed is True


def test_the_default_allows_the_simulator_of_the_demo():
    from django.conf import settings

    for url in ("http://127.0.0.1:8100", settings.SIMULATOR_BASE_URL):
        assert outbound_url_check(url) is None


# --- the admin form -------------------------------------------------------------------------------


@pytest.fixture
def binding(db):
    return StoreBindingFactory(store=StoreFactory(), platform="eleme", shop_code="160009", app_id="el-key",
                               secret="el-secret", token="el-token", base_url="http://127.0.0.1:8100")


def _form(binding, **changes):
    data = {"store": binding.store_id, "platform": binding.platform, "shop_code": binding.shop_code,
            "app_id": binding.app_id, "secret": "", "token": "", "base_url": binding.base_url, "enabled": "on",
            "pull_interval_seconds": 30, "next_pull_at_0": "2026-11-22", "next_pull_at_1": "12:00:00",
            "pull_state": "{}"}
    data.update(changes)
    return data


@pytest.mark.parametrize(("url", "error"), [
    ("http://169.254.169.254/", "This address is not allowed: the host 169.254.169.254:80 is not in "
                                "OUTBOUND_URL_ALLOWED_HOSTS."),
    ("http://127.0.0.1:5432/", "This address is not allowed: the host 127.0.0.1:5432 is not in "
                               "OUTBOUND_URL_ALLOWED_HOSTS."),
    ("http://user@127.0.0.1:8100/", "This address is not allowed: the URL must not carry a user name or password."),
    ("http://user@localhost:8100/", "This address is not allowed: the URL must not carry a user name or password."),
    ("http://internal.example:8100/", "This address is not allowed: the host internal.example:8100 is not in "
                                      "OUTBOUND_URL_ALLOWED_HOSTS."),
])
def test_the_binding_admin_refuses_a_base_url_outside_the_allowed_hosts(client, settings, binding, url, error):
    # given
    settings.OUTBOUND_URL_ALLOWED_HOSTS = DEMO_HOSTS
    client.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=binding.store.brand))
    # when
    changed = client.post(f"/admin/channels/storebinding/{binding.pk}/change/", _form(binding, base_url=url))
    added = client.post("/admin/channels/storebinding/add/",
                        _form(binding, shop_code="160010", secret="s", base_url=url))
    # then
    assert (changed.status_code, added.status_code) == (200, 200)
    assert changed.context["adminform"].form.errors["base_url"] == [error]
    assert added.context["adminform"].form.errors["base_url"] == [error]
    assert list(StoreBinding.objects.values_list("shop_code", "base_url")) == [("160009", "http://127.0.0.1:8100")]


def test_the_binding_admin_accepts_an_allowed_base_url(client, settings, binding):
    # given
    settings.OUTBOUND_URL_ALLOWED_HOSTS = DEMO_HOSTS
    client.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=binding.store.brand))
    # when
    answer = client.post(f"/admin/channels/storebinding/{binding.pk}/change/",
                         _form(binding, base_url="http://localhost:8100/"))
    # then
    assert answer.status_code == 302
    assert [str(m) for m in get_messages(answer.wsgi_request)][0].startswith("The platform binding")
    assert StoreBinding.objects.get(pk=binding.pk).base_url == "http://localhost:8100/"


# --- at call time: a row changed behind the form's back ---------------------------------------------


@pytest.fixture
def sim():
    with running_simulator() as server:
        yield server


@pytest.fixture
def shop(db):
    store = StoreFactory(name="老街坊·徐汇店", phone="021-55550000")
    chicken = SkuFactory(brand=store.brand, code="HC001", price="28.00")
    meituan = StoreBindingFactory(store=store, platform="meituan", shop_code="mt-poi-9", app_id="6001",
                                  secret="mt-secret")
    return {"store": store, "chicken": chicken, "meituan": meituan}


def test_a_pull_with_a_base_url_outside_the_allowed_hosts_makes_no_call(settings, sim, shop):
    # given: the simulator answers on a port the allowed hosts do not list
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": "mt-poi-9", "count": 1, "lines": [MT_LINE]})
    settings.OUTBOUND_URL_ALLOWED_HOSTS = DEMO_HOSTS
    binding = shop["meituan"]
    refused_reason = (f"the host 127.0.0.1:{sim.server_address[1]} is not in OUTBOUND_URL_ALLOWED_HOSTS; "
                      "no call was made")
    # when
    refused = binding_pull(binding_id=binding.pk)
    # then
    assert (refused.pulled, refused.errors) == (0, [refused_reason])
    binding.refresh_from_db()
    assert binding.last_error == refused_reason
    assert sim_calls(sim, "/api/") == []
    # and when the port is allowed, the same pull reaches the simulator (the check above can fail)
    settings.OUTBOUND_URL_ALLOWED_HOSTS = [f"127.0.0.1:{sim.server_address[1]}"]
    allowed = binding_pull(binding_id=binding.pk)
    assert (allowed.pulled, allowed.errors) == (1, [])
    assert [call["path"] for call in sim_calls(sim, "/api/")][0] == "/api/v1/order/getOrderDaySeq"


def test_an_outbox_message_for_a_binding_changed_to_a_refused_host_is_a_dead_letter_and_sends_nothing(
        settings, sim, shop):
    # given: an order pulled from the simulator; then the binding's base URL is changed behind
    # the form's back to the same simulator with a user name (which the form refuses)
    meituan_shop(sim, shop)
    sim_orders(sim, "meituan", {"shop": "mt-poi-9", "count": 1, "lines": [MT_LINE]})
    binding_pull(binding_id=shop["meituan"].pk)
    order = Order.objects.get(channel="meituan")
    StoreBinding.objects.filter(pk=shop["meituan"].pk).update(base_url=f"http://x@127.0.0.1:{sim.server_address[1]}")
    calls_before = len(sim_calls(sim, "/api/"))
    # when
    order_transition(order_id=order.pk, action="accept", actor=Actor(kind="pos", id="T1"))
    result = outbox_relay(limit=10)
    # then
    message = OutboxMessage.objects.get(topic="platform.order_action")
    assert result == {"delivered": 0, "failed": 1}
    assert (message.status, message.last_error) == (
        OutboxStatus.DEAD,
        "OutboxPermanentError: the URL must not carry a user name or password; no call was made",
    )
    assert len(sim_calls(sim, "/api/")) == calls_before
