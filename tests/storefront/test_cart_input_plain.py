"""The plain cart body is validated without building DRF's fields (issue 15): for every
body the fast check takes, the serializer gives exactly the same values; every other
body is left to the serializer, and the common bodies do take the fast path."""

import pytest

from core.api import ID_MAX
from storefront.serializers import CartInput, cart_input_plain

LINE = {"sku": "HC001", "qty": 2}
PLAIN = {"store": 7, "order_type": "pickup", "lines": [LINE]}

# Bodies the fast check must take (what clients send).
TAKEN = [
    PLAIN,
    {**PLAIN, "order_type": "dine_in", "lines": [LINE, {"sku": "ZS-001", "qty": 99}]},
    {**PLAIN, "note": "less spicy", "contact_name": "Wang", "contact_phone": "+8613812345678"},
    {**PLAIN, "note": "", "contact_name": "", "coupon_codes": []},
    {**PLAIN, "store": ID_MAX, "lines": [{"sku": "x" * 40, "qty": 1}] * 50},
    {**PLAIN, "unknown": {"ignored": True}, "lines": [{**LINE, "name": "ignored too"}]},
    {**PLAIN, "contact_phone": "123456"},
]

# Bodies left to the serializer (which accepts some and refuses others).
LEFT = [
    {**PLAIN, "store": "7"}, {**PLAIN, "store": True}, {**PLAIN, "store": 0}, {**PLAIN, "store": ID_MAX + 1},
    {**PLAIN, "store": 7.0}, {**PLAIN, "order_type": "takeaway"}, {**PLAIN, "order_type": 1},
    {**PLAIN, "lines": []}, {**PLAIN, "lines": [LINE] * 51}, {**PLAIN, "lines": LINE}, {**PLAIN, "lines": ["HC001"]},
    {**PLAIN, "lines": [{"sku": "HC001", "qty": 0}]}, {**PLAIN, "lines": [{"sku": "HC001", "qty": 100}]},
    {**PLAIN, "lines": [{"sku": "HC001", "qty": "2"}]}, {**PLAIN, "lines": [{"sku": "HC001", "qty": True}]},
    {**PLAIN, "lines": [{"sku": " HC001", "qty": 1}]}, {**PLAIN, "lines": [{"sku": "", "qty": 1}]},
    {**PLAIN, "lines": [{"sku": "x" * 41, "qty": 1}]}, {**PLAIN, "lines": [{"sku": "宫保", "qty": 1}]},
    {**PLAIN, "lines": [{"sku": "HC\x00", "qty": 1}]}, {**PLAIN, "lines": [{"qty": 1}]},
    {**PLAIN, "coupon_codes": ["SAVE5"]}, {**PLAIN, "coupon_codes": None},
    {**PLAIN, "address": {"detail": "x"}}, {**PLAIN, "address": None},
    {**PLAIN, "note": " padded "}, {**PLAIN, "note": "少辣"}, {**PLAIN, "note": 5}, {**PLAIN, "note": "x" * 501},
    {**PLAIN, "note": "tab\there"}, {**PLAIN, "contact_name": "x" * 51}, {**PLAIN, "contact_phone": ""},
    {**PLAIN, "contact_phone": " 123456"}, {**PLAIN, "contact_phone": "12345"}, {**PLAIN, "contact_phone": "١٢٣٤٥٦"},
    {**PLAIN, "contact_phone": 13812345678}, {"order_type": "pickup", "lines": [LINE]}, {},
]


def _serializer_values(data):
    serializer = CartInput(data=data)
    assert serializer.is_valid(), serializer.errors
    values = dict(serializer.validated_data)
    values["lines"] = [dict(line) for line in values["lines"]]
    return values


@pytest.mark.parametrize("data", TAKEN)
def test_a_plain_body_gives_what_the_serializer_gives(data):
    plain = cart_input_plain(data)

    assert plain is not None
    assert plain == _serializer_values(data)


@pytest.mark.parametrize("data", LEFT)
def test_any_other_body_is_left_to_the_serializer(data):
    assert cart_input_plain(data) is None


def test_the_fast_check_knows_every_field_of_the_serializer():
    # A field added to CartInput must be taught to cart_input_plain (or make it step aside).
    assert set(CartInput().fields) == {"store", "order_type", "lines", "coupon_codes", "address", "note",
                                       "contact_name", "contact_phone"}
    assert set(CartInput().fields["lines"].child.fields) == {"sku", "qty"}
