"""The admin says whose back-office it is: the brand's name and "统一订单中台", never "Django"."""

from django.test import override_settings


def test_the_header_names_the_brand_and_the_product(login, manager_a, brand_x):
    page = login(manager_a).get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    html = page.content.decode()
    assert f"{brand_x.name} · 统一订单中台" in html
    assert "Django" not in html
    assert "| 统一订单中台</title>" in html


def test_in_english_and_for_a_platform_operator(login, superuser):
    with override_settings(LANGUAGE_CODE="en"):
        page = login(superuser).get("/admin/", HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert '<a href="/admin/">Unified order center</a>' in html
    assert "Django administration" not in html
