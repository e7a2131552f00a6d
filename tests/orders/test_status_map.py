"""The status mapping table covers every reachable (type, status) for every audience."""

import re

import pytest

from orders.models import OrderType
from orders.models.machines import machine_states
from orders.status_map import AUDIENCES, NOT_CARRIED, PLATFORM_ORDER_TYPES, STATUS_MAP, PosStatus, status_label
from tests.factories import UserFactory

PLATFORMS = ("meituan", "eleme")
MEITUAN_CODES = {1, 2, 3, 4, 6, 8, 9}
ELEME_CODES = {"unprocessed", "valid", "invalid", "settled"}

REACHABLE = [(t.value, s) for t in OrderType for s in machine_states(t)]


def test_every_order_type_has_a_table_and_no_other_key_exists():
    assert set(STATUS_MAP) == set(OrderType.values)
    assert set(PLATFORM_ORDER_TYPES) == set(PLATFORMS)
    assert set(AUDIENCES) == {"merchant", "buyer", "pos", *PLATFORMS}


@pytest.mark.parametrize("order_type", OrderType.values)
def test_the_table_has_exactly_the_statuses_the_machine_can_reach(order_type):
    assert sorted(STATUS_MAP[order_type]) == sorted(machine_states(order_type))


@pytest.mark.parametrize(("order_type", "status"), REACHABLE)
def test_every_audience_cell_exists_and_is_not_empty(order_type, status):
    view = STATUS_MAP[order_type][status]

    cells = {audience: view.for_audience(audience) for audience in AUDIENCES}

    assert all(cell is not None and str(cell).strip() for cell in cells.values()), cells
    assert cells["merchant"] != NOT_CARRIED and cells["buyer"] != NOT_CARRIED and cells["pos"] != NOT_CARRIED
    assert status_label(order_type=order_type, status=status, audience="merchant") == str(cells["merchant"])


@pytest.mark.parametrize(("order_type", "status"), REACHABLE)
def test_pos_codes_are_from_the_pos_vocabulary(order_type, status):
    assert STATUS_MAP[order_type][status].pos in PosStatus.ALL


@pytest.mark.parametrize(("order_type", "status"), REACHABLE)
@pytest.mark.parametrize("platform", PLATFORMS)
def test_not_carried_only_where_the_platform_does_not_carry_the_type(order_type, status, platform):
    cell = STATUS_MAP[order_type][status].for_audience(platform)

    carried = order_type in PLATFORM_ORDER_TYPES[platform]

    assert (cell != NOT_CARRIED) is carried


@pytest.mark.parametrize(("order_type", "status"), REACHABLE)
def test_platform_codes_are_the_platforms_own(order_type, status):
    view = STATUS_MAP[order_type][status]

    if order_type in PLATFORM_ORDER_TYPES["meituan"]:
        assert type(view.meituan) is int and view.meituan in MEITUAN_CODES
    if order_type in PLATFORM_ORDER_TYPES["eleme"]:
        assert view.eleme in ELEME_CODES


def test_a_few_cells_exactly():
    assert STATUS_MAP["delivery"]["dispatched"].meituan == 6
    assert STATUS_MAP["delivery"]["completed"].eleme == "settled"
    assert STATUS_MAP["pickup"]["cancelled"].meituan == 9
    assert STATUS_MAP["voucher"]["issued"].pos == PosStatus.REDEEMABLE
    assert STATUS_MAP["dine_in"]["paid"].meituan == NOT_CARRIED


@pytest.mark.django_db
def test_status_map_page_has_one_row_per_reachable_type_and_status(client):
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/backoffice/status-map/")

    assert response.status_code == 200
    html = response.content.decode()
    rows = re.findall(r'<tr data-type="([a-z_]+)" data-status="([a-z_]+)">', html)
    assert rows == REACHABLE
    assert len(rows) == 32


@pytest.mark.django_db
def test_status_map_page_needs_a_staff_login(client):
    response = client.get("/backoffice/status-map/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
