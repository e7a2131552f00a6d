"""The one error shape and the Idempotency-Key rules (CONTRACTS.md "Common rules"),
exercised through the back-office transition endpoint."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from core.models import IdempotencyRecord
from orders.models import Order, OrderEvent, OrderStatus, OrderType
from tests.factories import MembershipFactory, StoreFactory, UserFactory
from tests.order_helpers import make_order, staff_client, transitions_url

pytestmark = pytest.mark.django_db

ACCEPT = {"action": "accept"}


def _post(client, url, body, **headers):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", headers=headers)


def _accept_events(order) -> int:
    return OrderEvent.objects.filter(order=order, action="accept").count()


def _status(order) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order.pk)


@pytest.fixture
def store():
    return StoreFactory()


@pytest.fixture
def paid_order(store):
    return make_order(store=store, order_type=OrderType.PICKUP, paid=True)


@pytest.fixture
def clerk(client, store):
    return staff_client(client, store=store, role="clerk")


# --- the error shape -----------------------------------------------------------


def test_accept_by_clerk_answers_200_with_the_order(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), ACCEPT)

    assert response.status_code == 200
    body = response.json()
    assert (body["order_no"], body["status"], body["merchant_status"]) == (
        paid_order.order_no, "accepted", "Preparing")
    assert [e["action"] for e in body["events"]] == ["create", "accept"]
    assert "Idempotent-Replayed" not in response.headers


def test_malformed_json_is_400_malformed_request(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), '{"action": "accept"')

    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"code", "message", "detail"}
    assert error["code"] == "malformed_request"
    assert error["detail"] == {}
    assert _status(paid_order) == OrderStatus.PAID


def test_bad_body_is_400_invalid_input_with_field_errors(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), {"action": "explode", "prep_minutes": 0})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert set(error["detail"]) == {"action", "prep_minutes"}
    assert _status(paid_order) == OrderStatus.PAID


def test_body_that_is_not_an_object_is_400_invalid_input(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), ["accept"])

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert list(error["detail"]) == ["non_field_errors"]


def test_anonymous_is_401_not_authenticated(client, paid_order):
    response = _post(client, transitions_url(paid_order), ACCEPT)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response.json()["error"]["detail"] == {}
    assert _status(paid_order) == OrderStatus.PAID


def test_logged_in_user_without_membership_is_403(client, paid_order):
    client.force_login(UserFactory())

    response = _post(client, transitions_url(paid_order), ACCEPT)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_clerk_may_not_cancel_403_role_not_allowed(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), {"action": "cancel"})

    assert response.status_code == 403
    assert response.json() == {"error": {
        "code": "role_not_allowed", "message": "Your role may not do this.", "detail": {"action": "cancel"}}}
    assert _status(paid_order) == OrderStatus.PAID
    assert OrderEvent.objects.filter(order=paid_order).count() == 1


def test_order_of_another_store_is_404_exactly_like_a_missing_one(clerk, paid_order):
    other_order = make_order(store=StoreFactory(brand=paid_order.brand), paid=True)

    foreign = _post(clerk, transitions_url(other_order), ACCEPT)
    missing = clerk.post("/api/backoffice/v1/orders/999999999/transitions", data=ACCEPT,
                         content_type="application/json")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.content == missing.content
    assert foreign.json() == {"error": {"code": "order_not_found", "message": "Not found.", "detail": {}}}
    assert _status(other_order) == OrderStatus.PAID


def test_illegal_transition_is_409_with_the_current_status(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), {"action": "pick_up"})

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "transition_not_allowed"
    assert error["detail"]["status"] == "paid"
    assert error["detail"]["order_no"] == paid_order.order_no
    assert error["detail"]["allowed_actions"] == ["accept", "reject", "cancel"]
    assert OrderEvent.objects.filter(order=paid_order).count() == 1


def test_get_on_the_transition_endpoint_is_405(clerk, paid_order):
    response = clerk.get(transitions_url(paid_order))

    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# --- Idempotency-Key -----------------------------------------------------------


def test_retry_with_same_key_and_body_replays_the_same_bytes_and_accepts_once(clerk, paid_order):
    first = _post(clerk, transitions_url(paid_order), ACCEPT, **{"Idempotency-Key": "k-1"})
    retry = _post(clerk, transitions_url(paid_order), ACCEPT, **{"Idempotency-Key": "k-1"})

    assert (first.status_code, retry.status_code) == (200, 200)
    assert retry.content == first.content
    assert retry["Content-Type"] == first["Content-Type"] == "application/json"
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _accept_events(paid_order) == 1
    assert IdempotencyRecord.objects.get(key="k-1").status_code == 200


def test_same_key_with_another_body_is_422_and_changes_nothing(clerk, paid_order):
    _post(clerk, transitions_url(paid_order), ACCEPT, **{"Idempotency-Key": "k-2"})

    response = _post(clerk, transitions_url(paid_order), {"action": "mark_ready"}, **{"Idempotency-Key": "k-2"})

    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert response.json()["error"]["detail"] == {"key": "k-2"}
    assert _status(paid_order) == OrderStatus.ACCEPTED
    assert list(OrderEvent.objects.filter(order=paid_order).values_list("action", flat=True)) == [
        "create", "accept"]


@pytest.mark.parametrize("key", ["k" * 65, ""])
def test_key_outside_1_to_64_chars_is_400_and_changes_nothing(clerk, paid_order, key):
    response = _post(clerk, transitions_url(paid_order), ACCEPT, **{"Idempotency-Key": key})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_invalid"
    assert _status(paid_order) == OrderStatus.PAID
    assert IdempotencyRecord.objects.count() == 0


def test_key_of_exactly_64_chars_is_accepted(clerk, paid_order):
    response = _post(clerk, transitions_url(paid_order), ACCEPT, **{"Idempotency-Key": "k" * 64})

    assert response.status_code == 200
    assert _status(paid_order) == OrderStatus.ACCEPTED


def test_same_key_of_two_users_is_independent(client, store, paid_order):
    staff_client(client, store=store, role="clerk")
    other = staff_client(Client(), store=store, role="clerk")

    first = _post(client, transitions_url(paid_order), ACCEPT, **{"Idempotency-Key": "shared"})
    second = _post(other, transitions_url(paid_order), {"action": "mark_ready"}, **{"Idempotency-Key": "shared"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["status"] == "ready"
    assert IdempotencyRecord.objects.filter(key="shared").count() == 2


def test_a_409_answer_is_replayed_too(clerk, paid_order):
    refused = _post(clerk, transitions_url(paid_order), {"action": "pick_up"}, **{"Idempotency-Key": "k-409"})
    _post(clerk, transitions_url(paid_order), ACCEPT)
    _post(clerk, transitions_url(paid_order), {"action": "mark_ready"})

    retry = _post(clerk, transitions_url(paid_order), {"action": "pick_up"}, **{"Idempotency-Key": "k-409"})

    assert refused.status_code == retry.status_code == 409
    assert retry.content == refused.content
    assert retry["Idempotent-Replayed"] == "true"
    assert _status(paid_order) == OrderStatus.READY
    assert not OrderEvent.objects.filter(order=paid_order, action="pick_up").exists()


def test_a_request_without_key_is_not_stored(clerk, paid_order):
    _post(clerk, transitions_url(paid_order), ACCEPT)

    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_same_key_accept_once_and_answer_the_same():
    store = StoreFactory()
    order = make_order(store=store, order_type=OrderType.PICKUP, paid=True)
    user = MembershipFactory(brand=store.brand, store=store, role="clerk").user
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(user)
    barrier = threading.Barrier(2)
    responses: list = [None, None]
    errors: list = []

    def worker(index):
        try:
            barrier.wait(timeout=10)
            responses[index] = _post(clients[index], transitions_url(order), ACCEPT,
                                     **{"Idempotency-Key": "same-key"})
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert errors == []
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].content == responses[1].content
    assert sorted(r.headers.get("Idempotent-Replayed", "") for r in responses) == ["", "true"]
    assert _accept_events(order) == 1
    assert _status(order) == OrderStatus.ACCEPTED
