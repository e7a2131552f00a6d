"""Business hours of a store: validation, "open now" and the next opening.

``Store.business_hours`` is a list of periods ``{"weekdays": [1..7], "open": "HH:MM",
"close": "HH:MM"}`` in the store's local time (settings.TIME_ZONE), weekday 1 = Monday.
An empty list means always open. A period whose ``close`` is not after its ``open``
runs through midnight into the next day (``22:00``-``02:00``: the night from the
weekday into the next); ``"24:00"`` is the end of the day. Pure functions, no queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
MAX_PERIODS = 21


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def business_hours_validate(value) -> None:
    """Model / form validator: the shape above, or a ValidationError saying what is wrong."""
    if not isinstance(value, list):
        raise ValidationError(_("Business hours must be a list of periods."), code="invalid_hours")
    if len(value) > MAX_PERIODS:
        raise ValidationError(_("At most %(count)d periods."), code="invalid_hours", params={"count": MAX_PERIODS})
    for index, period in enumerate(value, start=1):
        if not isinstance(period, dict) or set(period) != {"weekdays", "open", "close"}:
            raise ValidationError(_('Period %(n)d must have exactly "weekdays", "open" and "close".'),
                                  code="invalid_hours", params={"n": index})
        weekdays = period["weekdays"]
        if (not isinstance(weekdays, list) or not weekdays
                or not all(isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7 for day in weekdays)):
            raise ValidationError(_("Period %(n)d: weekdays must be numbers 1 (Monday) to 7 (Sunday)."),
                                  code="invalid_hours", params={"n": index})
        for key in ("open", "close"):
            if not isinstance(period[key], str) or not _TIME.match(period[key]):
                raise ValidationError(_('Period %(n)d: "%(key)s" must be a time HH:MM.'), code="invalid_hours",
                                      params={"n": index, "key": key})
        if period["open"] == "24:00":
            raise ValidationError(_("Period %(n)d cannot open at 24:00."), code="invalid_hours", params={"n": index})
        if period["open"] == period["close"]:
            raise ValidationError(_("Period %(n)d opens and closes at the same time."), code="invalid_hours",
                                  params={"n": index})


def _periods_from(hours: list[dict], day: date) -> Iterator[tuple[datetime, datetime]]:
    """The periods starting on ``day`` (local, aware), with their end."""
    tz = timezone.get_current_timezone()
    weekday = day.isoweekday()
    for period in hours:
        if weekday not in period["weekdays"]:
            continue
        start_minutes, end_minutes = _minutes(period["open"]), _minutes(period["close"])
        midnight = datetime.combine(day, time(0), tzinfo=tz)
        start = midnight + timedelta(minutes=start_minutes)
        end = midnight + timedelta(minutes=end_minutes)
        if end_minutes <= start_minutes:
            end += timedelta(days=1)
        yield start, end


def hours_open_at(hours: list[dict], at: datetime) -> bool:
    """Whether ``at`` falls in one of the periods (always, for no periods)."""
    if not hours:
        return True
    local = timezone.localtime(at)
    for day in (local.date() - timedelta(days=1), local.date()):
        if any(start <= local < end for start, end in _periods_from(hours, day)):
            return True
    return False


def hours_next_opening(hours: list[dict], after: datetime) -> datetime | None:
    """The first period start strictly after ``after`` within a week (None: no periods, always open)."""
    if not hours:
        return None
    local = timezone.localtime(after)
    starts = [start for offset in range(0, 8)
              for start, _end in _periods_from(hours, local.date() + timedelta(days=offset)) if start > local]
    return min(starts) if starts else None
