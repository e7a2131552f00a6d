"""core.jsonparse: hostile JSON is refused with one exception, never a server error."""

import io
import json

import pytest
from rest_framework.exceptions import ParseError

from core.jsonparse import BoundedJSONParser, JsonInvalid, json_has_nul, json_loads_bounded, json_strip_nul


@pytest.mark.parametrize("text", [
    "[" * 2000 + "]" * 2000,            # RecursionError in json.loads
    '{"a":' * 33 + "1" + "}" * 33,      # deeper than JSON_MAX_DEPTH, parses fine otherwise
    "1e400", "[-1e400]",                # overflow to +-inf
    "NaN", '{"x": Infinity}',           # not JSON
    "1" * 5000,                         # past Python's int digit limit
    "9" * 41,                           # past MAX_INT_DIGITS
    b"\xff\xfe",                        # not UTF-8
    "{", "",                            # malformed
])
def test_hostile_json_is_refused(text):
    with pytest.raises(JsonInvalid):
        json_loads_bounded(text)


def test_ordinary_json_is_parsed_as_json_loads_would():
    assert json_loads_bounded(b'{"a": [1, 2.5, "\\u00e9", null, true], "b": {"c": -3}}') == {
        "a": [1, 2.5, "é", None, True], "b": {"c": -3}}


def test_nesting_up_to_the_limit_is_accepted(settings):
    settings.JSON_MAX_DEPTH = 4

    assert json_loads_bounded("[[[[1]]]]") == [[[[1]]]]
    with pytest.raises(JsonInvalid):
        json_loads_bounded("[[[[[1]]]]]")


def test_the_parser_refuses_a_body_past_the_upload_limit_without_reading_it_all(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
    body = json.dumps({"note": "x" * 100}).encode()
    stream = io.BytesIO(body)

    with pytest.raises(ParseError) as refused:
        BoundedJSONParser().parse(stream)

    assert str(refused.value.detail) == "The body is larger than 64 bytes."
    assert stream.tell() == 65  # read one byte past the limit, no more


def test_the_parser_reads_a_body_at_the_upload_limit(settings):
    body = json.dumps({"note": "x" * 50}).encode()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)

    assert BoundedJSONParser().parse(io.BytesIO(body)) == {"note": "x" * 50}


def test_nul_characters_are_found_and_stripped_in_keys_and_values():
    value = {"a\x00": ["ok", {"b": "x\x00y"}], "c": 1}

    assert (json_has_nul(value), json_has_nul({"a": ["ok", {"b": "xy"}]})) == (True, False)
    assert json_strip_nul(value) == {"a": ["ok", {"b": "xy"}], "c": 1}
