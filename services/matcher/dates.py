"""Date-of-birth slips a person keying a record commonly makes."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

_DIGITS = "0123456789"


def _parse_digits(digits: str) -> int | None:
    """Return the ordinal of a YYYYMMDD string, or None when it is not a real date."""
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:])).toordinal()
    except ValueError:
        return None


@lru_cache(maxsize=65_536)
def swapped_dob(ordinal: int) -> int | None:
    """Return the date with day and month swapped, or None when that is no date or the same."""
    day = date.fromordinal(ordinal)
    if day.day == day.month or day.day > 12:
        return None
    return date(day.year, day.day, day.month).toordinal()


@lru_cache(maxsize=65_536)
def slipped_dobs(ordinal: int) -> frozenset[int]:
    """Return the real dates one digit change or one adjacent-digit swap away (YYYYMMDD)."""
    digits = date.fromordinal(ordinal).strftime("%Y%m%d")
    variants: set[str] = set()
    for position, current in enumerate(digits):
        head, tail = digits[:position], digits[position + 1 :]
        variants.update(head + digit + tail for digit in _DIGITS if digit != current)
        if position < 7 and tail[0] != current:
            variants.add(head + tail[0] + current + tail[1:])
    parsed = (_parse_digits(variant) for variant in variants)
    return frozenset(value for value in parsed if value is not None)


@lru_cache(maxsize=65_536)
def year_off_dobs(ordinal: int) -> frozenset[int]:
    """Return the same day and month a year before and after (none for 29 February)."""
    day = date.fromordinal(ordinal)
    if day.month == 2 and day.day == 29:
        return frozenset()
    return frozenset(day.replace(year=day.year + step).toordinal() for step in (-1, 1))


@lru_cache(maxsize=65_536)
def nearby_dobs(ordinal: int) -> frozenset[int]:
    """Return the date itself, its day/month swap, every one-slip variant and the year out."""
    swapped = swapped_dob(ordinal)
    extra = {ordinal} if swapped is None else {ordinal, swapped}
    return slipped_dobs(ordinal) | year_off_dobs(ordinal) | extra
