"""The status mapping table covers every reachable (type, status) for every audience."""

import re

import pytest
from django.utils import translation

from channels.adapters import eleme, meituan
from channels.adapters.base import RefundState
from orders.models import OrderRefundState, OrderType
from orders.models.machines import machine_states
from orders.status_map import (
    AUDIENCES,
    NOT_CARRIED,
    NOT_SHOWN,
    PLATFORM_ORDER_TYPES,
    REFUND_STATE_MAP,
    STATUS_MAP,
    PosRefundState,
    PosStatus,
    refund_state_label,
    status_label,
    status_with_refund_label,
)
from tests.factories import UserFactory

PLATFORMS = ("meituan", "eleme")
MEITUAN_CODES = {1, 2, 3, 4, 6, 8, 9}
ELEME_CODES = {"unprocessed", "valid", "invalid", "settled"}
MEITUAN_REFUND_CODES = {0, 1, 2, 3}  # refund_status: none, applied, agreed, rejected
ELEME_REFUND_CODES = {"noRefund", "applied", "rejected", "successful"}

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


# --- the refund state ------------------------------------------------------------------------


def test_every_refund_state_has_a_row_and_no_other_key_exists():
    assert list(REFUND_STATE_MAP) == OrderRefundState.values == ["none", "partial", "full"]


@pytest.mark.parametrize("refund_state", OrderRefundState.values)
def test_every_refund_state_cell_is_filled_except_the_buyers_none(refund_state):
    view = REFUND_STATE_MAP[refund_state]

    cells = {audience: view.for_audience(audience) for audience in AUDIENCES}

    assert all(cell is not None and cell != NOT_CARRIED for cell in cells.values()), cells
    empty = {audience for audience, cell in cells.items() if not str(cell).strip()}
    assert empty == ({"buyer"} if refund_state == "none" else set())
    assert cells["pos"] == refund_state and cells["pos"] in PosRefundState.ALL
    assert cells["meituan"] in MEITUAN_REFUND_CODES and type(cells["meituan"]) is int
    assert cells["eleme"] in ELEME_REFUND_CODES


def test_refund_state_cells_exactly():
    rows = {state: tuple(str(view.for_audience(a)) for a in AUDIENCES) for state, view in REFUND_STATE_MAP.items()}

    assert rows == {
        "none": ("Not refunded", NOT_SHOWN, "none", "0", "noRefund"),
        "partial": ("Partly refunded", "Partly refunded", "partial", "2", "successful"),
        "full": ("Fully refunded", "Refunded", "full", "2", "successful"),
    }


@pytest.mark.parametrize(("refund_state", "read_back"), [
    ("none", RefundState.NONE), ("partial", RefundState.AGREED), ("full", RefundState.AGREED)])
def test_the_platform_codes_read_back_as_the_same_refund_state_through_the_adapters(refund_state, read_back):
    view = REFUND_STATE_MAP[refund_state]

    assert meituan.REFUND_STATES[view.meituan] == read_back
    assert eleme.REFUND_STATES[view.eleme] == read_back


def test_buyer_refund_labels_in_chinese():
    with translation.override("zh-hans"):
        assert refund_state_label(refund_state="partial", audience="buyer") == "部分退款"
        assert refund_state_label(refund_state="full", audience="buyer") == "已退款"
        assert refund_state_label(refund_state="none", audience="buyer") == ""
        assert status_with_refund_label(order_type="delivery", status="delivered", refund_state="partial",
                                        audience="buyer") == "已送达 · 部分退款"


@pytest.mark.parametrize(("order_type", "status", "refund_state", "audience", "label"), [
    ("delivery", "delivered", "none", "merchant", "Delivered"),
    ("delivery", "delivered", "none", "buyer", "Delivered"),
    ("delivery", "delivered", "partial", "merchant", "Delivered · Partly refunded"),
    ("pickup", "picked_up", "partial", "buyer", "Picked up · Partly refunded"),
    ("pickup", "refunded", "full", "merchant", "Refunded"),
    ("pickup", "refunded", "full", "buyer", "Refunded"),
    ("dine_in", "cancelled", "full", "merchant", "Cancelled · Fully refunded"),
    ("dine_in", "cancelled", "full", "buyer", "Cancelled · Refunded"),
])
def test_status_with_refund_label(order_type, status, refund_state, audience, label):
    assert status_with_refund_label(order_type=order_type, status=status, refund_state=refund_state,
                                    audience=audience) == label


@pytest.mark.django_db
def test_status_map_page_has_one_row_per_refund_state(client):
    client.force_login(UserFactory(is_staff=True))

    html = client.get("/backoffice/status-map/").content.decode()

    assert re.findall(r'<tr data-refund-state="([a-z_]+)">', html) == ["none", "partial", "full"]
    assert "<td>(not shown)</td>" in html


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
