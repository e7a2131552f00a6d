"""Terminal tokens: shown once, stored hashed, rotated and revoked; the admin."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from pos.models import PosTerminal
from pos.services import pos_terminal_create, pos_terminal_revoke, pos_terminal_rotate
from tests.factories import staff_user
from tests.pos.conftest import token_client

EVENTS = "/api/pos/v1/events"


def test_create_returns_the_token_once_and_stores_only_its_hash(store):
    issued = pos_terminal_create(store=store, name="Counter", role="manager")

    terminal = PosTerminal.objects.get(pk=issued.terminal.pk)
    assert issued.token.startswith("pos_")
    assert terminal.key_hash == hashlib.sha256(issued.token.encode()).hexdigest()
    assert terminal.prefix == issued.token[:10]
    assert issued.token not in {str(getattr(terminal, f.attname)) for f in PosTerminal._meta.fields}
    assert (terminal.role, terminal.revoked_at, terminal.last_seen_at) == ("manager", None, None)


def test_the_token_authenticates_and_marks_the_terminal_seen(cashier):
    terminal, token = cashier

    response = token_client(token).get(EVENTS)

    assert response.status_code == 200
    assert response.json() == {"events": []}
    terminal.refresh_from_db()
    assert terminal.last_seen_at is not None


def test_last_seen_is_written_at_most_once_a_minute(cashier, django_assert_num_queries):
    terminal, token = cashier
    recent = timezone.now() - timedelta(seconds=30)
    PosTerminal.objects.filter(pk=terminal.pk).update(last_seen_at=recent)
    client = token_client(token)

    with django_assert_num_queries(2):  # the terminal, the events; no last_seen update
        client.get(EVENTS)

    terminal.refresh_from_db()
    assert terminal.last_seen_at == recent


def test_rotate_issues_a_new_token_and_the_old_one_stops_working(cashier):
    terminal, old_token = cashier

    issued = pos_terminal_rotate(terminal_id=terminal.pk)

    assert issued.token != old_token
    assert token_client(old_token).get(EVENTS).status_code == 401
    assert token_client(issued.token).get(EVENTS).status_code == 200


def test_revoke_makes_the_token_answer_401_in_the_error_shape(cashier):
    terminal, token = cashier

    pos_terminal_revoke(terminal_id=terminal.pk)
    response = token_client(token).get(EVENTS)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_revoked_terminal_cannot_be_rotated_back_to_life(cashier):
    terminal, _token = cashier
    pos_terminal_revoke(terminal_id=terminal.pk)

    with pytest.raises(Exception) as caught:
        pos_terminal_rotate(terminal_id=terminal.pk)

    assert caught.value.code == "terminal_revoked"


@pytest.mark.parametrize("header", ["", "Token", "Token a b", "Token wrong-token", "Bearer pos_x"])
def test_missing_or_bad_credentials_answer_401(store, header):
    client = token_client(None)
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(EVENTS)

    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "detail"}


def test_admin_add_shows_the_token_once_and_stores_the_hash(client, store):
    manager = staff_user(role="store_manager", store=store)
    client.force_login(manager)

    response = client.post("/admin/pos/posterminal/add/", {"store": store.pk, "name": "Front", "role": "cashier"},
                           follow=True)

    assert response.status_code == 200
    terminal = PosTerminal.objects.get(name="Front")
    shown = [str(m) for m in response.context["messages"]]
    token = next(m for m in shown if "pos_" in m).rsplit(" ", 1)[-1]
    assert token in response.content.decode()
    assert terminal.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token_client(token).get(EVENTS).status_code == 200
    page = client.get(f"/admin/pos/posterminal/{terminal.pk}/change/")
    assert token not in page.content.decode()  # shown once: never again


def test_admin_actions_revoke_and_rotate(client, store, cashier, manager):
    cashier_terminal, cashier_token = cashier
    manager_terminal, manager_token = manager
    client.force_login(staff_user(role="brand_admin", brand=store.brand))

    client.post("/admin/pos/posterminal/", {"action": "revoke_terminals", "_selected_action": [cashier_terminal.pk]})
    response = client.post("/admin/pos/posterminal/",
                           {"action": "rotate_tokens", "_selected_action": [manager_terminal.pk]})

    assert token_client(cashier_token).get(EVENTS).status_code == 401
    assert token_client(manager_token).get(EVENTS).status_code == 401
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    new_token = next(m for m in shown if "pos_" in m).rsplit(" ", 1)[-1]
    assert token_client(new_token).get(EVENTS).status_code == 200


def test_admin_lists_only_terminals_of_stores_the_user_sees(client, store, other_store, cashier):
    pos_terminal_create(store=other_store, name="Elsewhere")
    client.force_login(staff_user(role="store_manager", store=store))

    response = client.get("/admin/pos/posterminal/")

    assert response.status_code == 200
    assert "Counter" in response.content.decode()
    assert "Elsewhere" not in response.content.decode()


def test_the_token_lookup_types_every_column_as_the_orm_would(cashier):
    """The lookup is plain SQL; the ORM's converters still apply (SQLite hands back
    naive datetimes and JSON as text, PostgreSQL jsonb as text too)."""
    from decimal import Decimal

    from pos.authentication import terminal_for_token

    terminal, token = cashier
    seen = timezone.now() - timedelta(minutes=5)
    PosTerminal.objects.filter(pk=terminal.pk).update(last_seen_at=seen)
    hours = [{"day": 1, "open": "10:00", "close": "22:00"}]
    type(terminal.store).objects.filter(pk=terminal.store_id).update(business_hours=hours)

    found = terminal_for_token(token)

    assert (found.pk, found.last_seen_at, found.revoked_at) == (terminal.pk, seen, None)
    assert found.store.business_hours == hours
    orm = type(terminal.store).objects.get(pk=terminal.store_id)
    assert [getattr(found.store, f.attname) for f in orm._meta.concrete_fields] == [
        getattr(orm, f.attname) for f in orm._meta.concrete_fields]
    assert isinstance(found.store.delivery_fee, Decimal)
    assert terminal_for_token("pos_" + "x" * 43) is None
