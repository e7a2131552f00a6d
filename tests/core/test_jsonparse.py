"""core.jsonparse: hostile JSON is refused with one exception, never a server error."""

import pytest

from core.jsonparse import JsonInvalid, json_loads_bounded


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
