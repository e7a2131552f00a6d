"""The OpenAPI schema is valid, warning-free and honest about the APIs it describes.

What schemathesis checks against real answers (tests/test_schemathesis.py) is only as
good as the schema: here, that it describes every endpoint of the URL configuration,
names its components uniquely, documents lists as pages, the error answers in the one
error shape, and the two token schemes as the code reads them.
"""

import io
import os
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from playwright.sync_api import expect, sync_playwright

from accounts.services import customer_token_issue
from tests.core.test_no_server_errors import _patterns
from tests.browser.test_admin_browser import CHROMIUM_ARGS
from tests.factories import CustomerFactory, SkuFactory, StoreFactory, StoreSkuFactory, pos_terminal

API_PREFIXES = ("/api/v1/", "/api/pos/v1/", "/api/backoffice/v1/")
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_schema_validates_with_no_warning_and_no_error(tmp_path):
    out, err = io.StringIO(), io.StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"),
                 stdout=out, stderr=err)

    assert "Warning" not in err.getvalue() and "Error" not in err.getvalue(), err.getvalue()
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0.3")


def test_check_deploy_reports_nothing_from_drf_spectacular():
    messages = run_checks(include_deployment_checks=True)

    assert [m for m in messages if m.id.startswith("drf_spectacular")] == []


def test_every_api_url_and_method_is_in_the_schema(schema):
    from django.urls import get_resolver

    routes = set()
    for route, _name, callback in _patterns(get_resolver()):
        path = "/" + route.replace("<str:", "{").replace("<int:", "{").replace("<slug:", "{").replace(">", "}")
        view_class = getattr(callback, "cls", None)
        if path.startswith(API_PREFIXES) and view_class is not None:
            methods = {m for m in ("get", "post", "put", "patch", "delete")
                       if m in view_class.http_method_names and hasattr(view_class, m)}
            routes |= {(path, method) for method in methods}
    documented = {(path, method) for path, method, _operation in operations(schema)}

    assert routes == documented
    assert {("/api/v1/orders", "post"), ("/api/pos/v1/events", "get"), ("/api/backoffice/v1/orders", "get"),
            ("/api/v1/orders/{order_no}/contact", "patch")} <= routes


def test_component_names_are_unique_and_named_after_their_operation(schema):
    names = set(schema["components"]["schemas"])

    assert not names & {"Input", "Output", "Query", "Line"}
    assert {"PosOrderAcceptInput", "PosOrderRejectInput", "CustomerOrderCancelInput",
            "BackofficeOrderTransitionInput", "PosStockSalesInputLine", "PosStockSalesOutput",
            "PaymentNotifyInput", "OmsCallbackInput"} <= names


def test_list_endpoints_are_documented_as_capped_pages(schema):
    lists = {"/api/v1/orders": ("PaginatedCustomerOrderOutputList", 100),
             "/api/pos/v1/orders": ("PaginatedPosOrderOutputList", 50),
             "/api/backoffice/v1/orders": ("PaginatedBackofficeOrderOutputList", 100)}
    for path, (component, _cap) in lists.items():
        operation = schema["paths"][path]["get"]
        page = schema["components"]["schemas"][component]

        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{component}"}
        assert set(page["properties"]) == {"count", "next", "previous", "results"}
        assert {"page", "page_size"} <= {p["name"] for p in operation["parameters"]}


UNTHROTTLED = {"/api/v1/payments/notify/{provider}", "/api/v1/payments/notify/{provider}/{account}",
               "/api/v1/fulfilment/oms/callback"}


def test_error_answers_are_documented_in_the_one_error_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert (error["required"], detail["required"]) == (["error"], ["code", "detail", "message"])

    for path, method, operation in operations(schema):
        if not path.startswith(API_PREFIXES):
            continue
        responses = operation["responses"]
        errors = {code for code in responses if code.startswith("4")}
        for code in errors:
            assert responses[code]["content"]["application/json"]["schema"] == ERROR_REF, (path, method, code)
        # Signed callbacks are not throttled (a flash sale sends hundreds of notifies a minute).
        assert ("429" in errors) == (path not in UNTHROTTLED), (path, method)
        if method in ("post", "patch"):
            assert {"400", "409"} <= errors, (path, method)
        if method == "post":
            assert "422" in errors, (path, method)
        if operation.get("security") and operation["security"] != [{}]:
            assert {"401", "403"} <= errors, (path, method)
        if "{" in path:
            assert "404" in errors, (path, method)


def test_the_signed_callbacks_are_documented_with_their_bodies_and_headers(schema):
    notify = schema["paths"]["/api/v1/payments/notify/{provider}"]["post"]
    oms = schema["paths"]["/api/v1/fulfilment/oms/callback"]["post"]

    assert notify["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PaymentNotifyInput"}
    assert oms["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OmsCallbackInput"}
    assert {p["name"] for p in notify["parameters"] if p["in"] == "header" and p.get("required")} == {
        "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature"}
    assert {p["name"] for p in oms["parameters"] if p["in"] == "header" and p.get("required")} == {
        "X-Oms-App-Key", "X-Oms-Timestamp", "X-Oms-Nonce", "X-Oms-Signature"}
    assert {"401", "400"} <= set(notify["responses"]) and {"401", "400"} <= set(oms["responses"])


def test_each_api_names_its_own_security_scheme(schema):
    schemes = schema["components"]["securitySchemes"]

    assert schemes["customerToken"]["type"] == "http" and schemes["customerToken"]["scheme"] == "bearer"
    assert {k: schemes["posTerminalToken"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey", "in": "header", "name": "Authorization"}
    public = {"/api/v1/auth/code", "/api/v1/auth/token", "/api/v1/payments/notify/{provider}",
              "/api/v1/payments/notify/{provider}/{account}", "/api/v1/fulfilment/oms/callback"}
    for path, method, operation in operations(schema):
        if path in public:
            assert operation["security"] == [{}], (path, method)
        elif path.startswith("/api/pos/v1/"):
            assert operation["security"] == [{"posTerminalToken": []}], (path, method)
        elif path.startswith("/api/backoffice/v1/"):
            assert operation["security"] == [{"cookieAuth": []}], (path, method)
        elif path.startswith("/api/v1/"):
            assert operation["security"] == [{"customerToken": []}], (path, method)


@pytest.mark.django_db
def test_a_token_sent_as_its_scheme_says_is_accepted():
    """What Swagger UI's Authorize sends: ``Bearer <token>`` for the http bearer scheme, and
    the typed value as it is for the API key scheme (the POS types ``Token <token>``)."""
    store = StoreFactory()
    customer_token = customer_token_issue(customer=CustomerFactory(brand=store.brand)).token
    pos_token = pos_terminal(store=store)[1]
    client = Client()

    customer = client.get("/api/v1/orders", HTTP_AUTHORIZATION=f"Bearer {customer_token}")
    pos = client.get("/api/pos/v1/orders", HTTP_AUTHORIZATION=f"Token {pos_token}")
    swapped = client.get("/api/pos/v1/orders", HTTP_AUTHORIZATION=f"Bearer {pos_token}")

    assert (customer.status_code, pos.status_code, swapped.status_code) == (200, 200, 401)


# --- Swagger UI, in a real browser ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
# Skipped only on a developer machine without chromium; CI (CI=true) installs it and must run it.
@pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                    reason="needs Debian's chromium at /usr/bin/chromium (apt install chromium)")
def test_swagger_ui_authorize_offers_both_tokens_and_a_pos_call_goes_through(transactional_db, live_server,
                                                                              monkeypatch):
    # given: a terminal of a store with one SKU on its menu
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop here
    store = StoreFactory()
    StoreSkuFactory(store=store, sku=SkuFactory(brand=store.brand, code="RICE"))
    token = pos_terminal(store=store)[1]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="en-US").new_page()
            page.goto(f"{live_server.url}/api/docs/")

            # when: Authorize, the POS scheme, "Token <token>"
            page.locator("button.authorize").first.click()
            dialog = page.locator(".auth-container")
            expect(dialog).to_have_count(3)  # cookieAuth, customerToken, posTerminalToken
            expect(page.locator(".auth-container h4")).to_contain_text(
                ["cookieAuth", "customerToken", "posTerminalToken"])
            pos_scheme = dialog.filter(has_text="posTerminalToken")
            pos_scheme.locator("input").fill(f"Token {token}")
            pos_scheme.locator("button.authorize").click()
            expect(pos_scheme).to_contain_text("Authorized")
            page.locator(".dialog-ux .close-modal").click()
            page.locator("#operations-pos-pos_menu").click()
            page.get_by_role("button", name="Try it out").click()
            page.get_by_role("button", name="Execute").click()

            # then: the call carried the token and the menu came back
            status = page.locator(".live-responses-table tbody .response-col_status").first
            expect(status).to_have_text("200")
            expect(page.locator(".live-responses-table .microlight").first).to_contain_text('"RICE"')
            page.screenshot(path="/tmp/schema_swagger.png", full_page=False)
        finally:
            browser.close()
