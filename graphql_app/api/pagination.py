"""Relay-style forward pagination over records in number order.

Cursors are opaque to clients: base64 of "decision:<number>". Paging is by key
(number greater than the cursor's), not by offset, so a page never repeats or
skips a record because others were proposed meanwhile. A cursor that does not
decode is refused, as is a page size outside 0..MAX_FIRST.
"""

from __future__ import annotations

import base64
import binascii

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from graphql_app.decisions import MAX_NUMBER
from graphql_app.models import Decision

from .types import DecisionConnection, DecisionEdge, DecisionType, PageInfo

DEFAULT_FIRST = 20
MAX_FIRST = 100
_PREFIX = "decision:"
# Longest cursor we ever issue, with room to spare; longer input is not decoded.
_MAX_CURSOR_LENGTH = 64


def encode_cursor(number: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{number}".encode()).decode("ascii")


def decode_cursor(cursor: str) -> int:
    """The record number a cursor points after; ValidationError(field "after") if it is not one of ours."""
    invalid = ValidationError({"after": ValidationError("Not a cursor this API issued.", code="invalid_cursor")})
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise invalid
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        raise invalid from None
    digits = text.removeprefix(_PREFIX)
    if not text.startswith(_PREFIX) or not digits.isdigit() or not 0 <= int(digits) <= MAX_NUMBER:
        raise invalid
    return int(digits)


def check_first(first: int) -> None:
    if not 0 <= first <= MAX_FIRST:
        message = f"`first` must be between 0 and {MAX_FIRST}, not {first}."
        raise ValidationError({"first": ValidationError(message, code="out_of_range")})


def paginate(records: QuerySet[Decision], *, first: int, after: str | None) -> DecisionConnection:
    """The page of `records` (any filters applied) of at most `first` records after the cursor `after`."""
    check_first(first)
    after_number = decode_cursor(after) if after is not None else None
    page = records.order_by("number")
    if after_number is not None:
        page = page.filter(number__gt=after_number)
    # One extra row tells whether another page follows.
    rows = list(page[: first + 1])
    edges = [DecisionEdge(cursor=encode_cursor(row.number), node=DecisionType.from_model(row)) for row in rows[:first]]
    has_previous = after_number is not None and records.filter(number__lte=after_number).exists()
    return DecisionConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=records.count(),
    )
