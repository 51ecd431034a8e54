"""Typed field access for raw records: each getter raises `RowError(field, reason)` on a bad value.

Readers call these instead of indexing dicts directly, so every rejected row says which field was wrong and why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ops.ingest.errors import RowError


def require(record: Mapping[str, Any], field: str) -> Any:
    if field not in record or record[field] is None:
        raise RowError(field, "required field is missing")
    return record[field]


def get_str(record: Mapping[str, Any], field: str, *, required: bool = False) -> str | None:
    """A string field; empty strings count as missing for required fields."""
    value = require(record, field) if required else record.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowError(field, f"expected a string, got {type(value).__name__} {value!r:.60}")
    if required and not value.strip():
        raise RowError(field, "required field is empty")
    return value


CONTROL_CHARACTER = r"[\x00-\x1f\x7f]"  # NUL, tab, newline...: never part of an id, a sign of a damaged file
_CONTROL = re.compile(CONTROL_CHARACTER)
CONTROL_REASON = "the id contains a control character (NUL, tab, newline...)"


def get_id(record: Mapping[str, Any], field: str) -> str:
    """A required, non-blank string id without control characters (a NUL in an id would create a bogus user)."""
    value = get_str(record, field, required=True)
    if _CONTROL.search(value):
        raise RowError(field, f"{CONTROL_REASON}: {value!r:.60}")
    return value


def get_float(record: Mapping[str, Any], field: str, *, required: bool = False) -> float | None:
    """A finite number; numeric strings such as "4.0" are accepted, booleans are not."""
    value = require(record, field) if required else record.get(field)
    if value is None or value == "":
        if required:
            raise RowError(field, "required field is empty")
        return None
    if isinstance(value, bool):
        raise RowError(field, f"expected a number, got bool {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RowError(field, f"expected a number, got {type(value).__name__} {value!r:.60}") from None
    if not math.isfinite(number):
        raise RowError(field, f"expected a finite number, got {value!r}")
    return number


def get_int(record: Mapping[str, Any], field: str, *, required: bool = False) -> int | None:
    """An integer; floats with no fractional part (e.g. 1245283200.0) and digit strings are accepted."""
    number = get_float(record, field, required=required)
    if number is None:
        return None
    if not number.is_integer():
        raise RowError(field, f"expected an integer, got {record.get(field)!r}")
    return int(number)


def get_str_list(record: Mapping[str, Any], field: str) -> list[str]:
    """A list of strings; missing means empty, a bare string becomes a one-element list."""
    value = record.get(field)
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RowError(field, f"expected a list of strings, got {value!r:.60}")
    return value


def get_int_list(record: Mapping[str, Any], field: str) -> list[int]:
    """A list of integers (JSON ints, not booleans or floats); missing means empty."""
    value = record.get(field)
    if value is None:
        return []
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise RowError(field, f"expected a list of integers, got {value!r:.60}")
    return value


_PRICE = re.compile(r"\$?\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)")  # "$25.00", "$1,299.99", "7"


def parse_price(value: Any) -> float | None:
    """A price given as a number or a currency string (``"$25.00"``, ``"$1,299.99"``); None for anything else.

    Scraped price fields hold junk (CSS blobs, ranges such as ``"$5.99 - $12.99"``). That is real data, not a broken
    row, so this returns None instead of raising and the reader keeps the raw value in the item's attributes.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) and value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _PRICE.fullmatch(value.strip())
    return float(match.group(1).replace(",", "")) if match else None
