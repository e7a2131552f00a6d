"""Bounded JSON parsing for every body that comes from outside.

``json.loads`` alone turns hostile input into server errors: 2,000 nested arrays
raise ``RecursionError``, ``1e400`` becomes ``inf`` (which no Decimal, database
or encoder accepts), a 5,000-digit integer raises a bare ``ValueError`` deep in
the caller. ``json_loads_bounded`` refuses all of these with one exception,
``JsonInvalid``, which every receiver turns into its own 4xx answer; the DRF
parser ``BoundedJSONParser`` does that for every API view (a 400 in the
contract's error shape).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Longer integer literals are refused: no id, amount or timestamp of ours comes near.
MAX_INT_DIGITS = 40


class JsonInvalid(ValueError):
    """The text is not JSON we accept (malformed, too deep, non-finite or oversized numbers)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JsonInvalid(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonInvalid("a number is out of range")
    return value


def _parse_constant(text: str) -> Any:
    raise JsonInvalid(f"{text} is not JSON")


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """True when containers nest deeper than ``max_depth`` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_loads_bounded(data: bytes | str, *, max_depth: int | None = None) -> Any:
    """Parse ``data`` (UTF-8 bytes or text) or raise ``JsonInvalid``.

    Refused: invalid UTF-8 or JSON, ``NaN`` / ``Infinity``, numbers that overflow a
    float, integers longer than ``MAX_INT_DIGITS`` digits, and containers nested
    deeper than ``max_depth`` (default ``settings.JSON_MAX_DEPTH``).
    """
    if max_depth is None:
        max_depth = settings.JSON_MAX_DEPTH
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonInvalid("the body is not UTF-8") from None
    try:
        value = json.loads(data, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except JsonInvalid:
        raise
    except RecursionError:
        raise JsonInvalid(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, and int() past Python's digit limit
        raise JsonInvalid(f"malformed JSON: {exc}") from None
    if _depth_exceeds(value, max_depth):
        raise JsonInvalid(f"JSON nested deeper than {max_depth} levels")
    return value


def json_has_nul(value: Any) -> bool:
    """True when a string (key or value) anywhere in parsed JSON holds a NUL character
    (PostgreSQL stores none, in text or jsonb, nor compares one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def json_strip_nul(value: Any) -> Any:
    """``value`` with every NUL character removed from its texts (keys too)."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {json_strip_nul(key): json_strip_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_strip_nul(item) for item in value]
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser on ``json_loads_bounded``: hostile JSON is a 400, never a 500.

    The body is read up to ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes: DRF reads the request
    stream itself, past the limit ``request.body`` applies, so a larger body is refused
    here (400, as Django's own limit answers through ``core.api.bad_request_view``)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            data = b""
        elif limit is None:
            data = stream.read()
        else:
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise ParseError(f"The body is larger than {limit} bytes.")
        try:
            return json_loads_bounded(data)
        except JsonInvalid as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
