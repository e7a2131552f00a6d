"""The binding admin never sends a stored secret or token to the browser."""

import pytest

from accounts.models import StaffRole
from channels.models import StoreBinding
from tests.factories import StoreBindingFactory, StoreFactory, staff_user

SECRET = "mt-secret-9f8e7d"
TOKEN = "el-token-1a2b3c"


@pytest.fixture
def binding(db):
    return StoreBindingFactory(store=StoreFactory(), platform="eleme", shop_code="160009", app_id="el-key",
                               secret=SECRET, token=TOKEN, base_url="http://127.0.0.1:8100")


def _url(binding):
    return f"/admin/channels/storebinding/{binding.pk}/change/"


def _form(binding, **changes):
    data = {"store": binding.store_id, "platform": binding.platform, "shop_code": binding.shop_code,
            "app_id": binding.app_id, "secret": "", "token": "", "base_url": binding.base_url, "enabled": "on",
            "pull_interval_seconds": 30, "next_pull_at_0": "2026-11-22", "next_pull_at_1": "12:00:00",
            "pull_state": "{}"}
    data.update(changes)
    return data


@pytest.fixture
def admin_of(client, binding):
    client.force_login(staff_user(role=StaffRole.BRAND_ADMIN, brand=binding.store.brand))
    return client


def test_the_change_form_never_contains_the_secret_or_the_token(admin_of, binding):
    page = admin_of.get(_url(binding))

    assert page.status_code == 200
    html = page.content.decode()
    assert SECRET not in html and TOKEN not in html
    assert 'name="secret"' in html and 'name="token"' in html


def test_blank_inputs_keep_the_stored_secret_and_token(admin_of, binding):
    answer = admin_of.post(_url(binding), _form(binding, app_id="el-key-2"))

    assert answer.status_code == 302, answer.content.decode()[:2000]
    stored = StoreBinding.objects.get(pk=binding.pk)
    assert (stored.app_id, stored.secret, stored.token) == ("el-key-2", SECRET, TOKEN)


def test_a_new_value_replaces_the_secret_and_clear_empties_the_token(admin_of, binding):
    answer = admin_of.post(_url(binding), _form(binding, secret="new-secret", clear_token="on"))

    assert answer.status_code == 302, answer.content.decode()[:2000]
    stored = StoreBinding.objects.get(pk=binding.pk)
    assert (stored.secret, stored.token) == ("new-secret", "")


def test_a_new_binding_needs_a_secret(admin_of, binding):
    data = _form(binding, shop_code="160010")
    data["store"] = StoreFactory(brand=binding.store.brand).pk

    answer = admin_of.post("/admin/channels/storebinding/add/", data)

    assert answer.status_code == 200  # the form again, with the error
    assert "secret" in answer.context["adminform"].form.errors
    assert not StoreBinding.objects.filter(shop_code="160010").exists()


def test_a_redisplayed_form_with_errors_does_not_echo_the_typed_secret(admin_of, binding):
    answer = admin_of.post(_url(binding), _form(binding, secret="typed-secret", base_url="not a url"))

    assert answer.status_code == 200
    assert "typed-secret" not in answer.content.decode()
    assert StoreBinding.objects.get(pk=binding.pk).secret == SECRET
