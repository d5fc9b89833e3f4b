"""The decision log's operations: the one way records are read, created and changed.

GraphQL (graphql_app.api), the admin and the MCP server all call these, so a
rule lives here once. Everything is synchronous, as the ORM is; async callers
wrap a call in `asgiref.sync.sync_to_async`.

Every refusal is a `django.core.exceptions.ValidationError` keyed by the field
it concerns (`number`, `by`, `title`, ...), each error carrying a stable
`DecisionErrorCode` as its `code`; one call reports all its bad fields at once.
`get` alone raises `Decision.DoesNotExist`, the ORM's own "no such row".

Lifecycle: proposed -> accepted -> superseded (by another record), and
proposed or accepted -> deprecated. Deprecated and superseded records are final:
they can no longer be edited.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from . import markdown
from .models import CATEGORIES, TITLE_MAX_LENGTH, Decision

__all__ = [
    "CATEGORIES",
    "EDITABLE_FIELDS",
    "Decision",
    "DecisionErrorCode",
    "accept",
    "canonical_category",
    "category_counts",
    "clean_fields",
    "deprecate",
    "edit",
    "get",
    "propose",
    "search",
    "supersede",
    "to_markdown",
]


class DecisionErrorCode(enum.StrEnum):
    """Why an operation refused; the API layers expose these names unchanged."""

    NOT_FOUND = "not_found"
    REQUIRED = "required"
    TOO_LONG = "too_long"
    INVALID = "invalid"
    INVALID_CATEGORY = "invalid_category"
    INVALID_STATUS = "invalid_status"
    INVALID_STATUS_TRANSITION = "invalid_status_transition"
    NOT_EDITABLE = "not_editable"
    SELF_SUPERSEDE = "self_supersede"
    INVALID_SUCCESSOR = "invalid_successor"


# The text fields a caller sets, and how long each may be. Sections get a
# generous bound so that one record cannot grow without limit.
SECTION_MAX_LENGTH = 20_000
EDITABLE_FIELDS: dict[str, int] = {
    "title": TITLE_MAX_LENGTH,
    "category": 0,  # checked against CATEGORIES instead
    "context": SECTION_MAX_LENGTH,
    "decision": SECTION_MAX_LENGTH,
    "consequences": SECTION_MAX_LENGTH,
}
SEARCH_TEXT_MAX_LENGTH = 200
# PositiveIntegerField's range on every backend: a larger number cannot be a
# record, and SQLite would overflow on it instead of finding nothing.
MAX_NUMBER = 2_147_483_647
# PostgreSQL advisory lock a proposal holds while it numbers: "ADR" in ASCII.
NUMBERING_LOCK = 0x414452

FINAL_STATUSES = frozenset({Decision.Status.DEPRECATED, Decision.Status.SUPERSEDED})


def _error(code: DecisionErrorCode, message: str) -> ValidationError:
    return ValidationError(message, code=code)


def _refuse(field: str, code: DecisionErrorCode, message: str) -> ValidationError:
    return ValidationError({field: _error(code, message)})


# --- Reading -----------------------------------------------------------------


def _is_number(number: object) -> bool:
    return isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= MAX_NUMBER


def get(number: int) -> Decision:
    """The record numbered `number`; `Decision.DoesNotExist` if there is none."""
    if not _is_number(number):
        raise Decision.DoesNotExist(f"ADR {number} does not exist.")
    return Decision.objects.get(number=number)


def canonical_category(value: str) -> str | None:
    """The category `value` names, ignoring case ("real-time" -> "Real-Time"); None if none."""
    folded = value.strip().casefold()
    return next((category for category in CATEGORIES if category.casefold() == folded), None)


def search(*, text: str | None = None, category: str | None = None, status: str | None = None) -> QuerySet[Decision]:
    """Records matching every given filter, by number. `text` is a case-insensitive
    substring of the title or any section (SQLite folds ASCII letters only)."""
    errors: dict[str, ValidationError] = {}
    records = Decision.objects.all()
    if category is not None:
        canonical = canonical_category(category) if isinstance(category, str) else None
        if canonical is None:
            errors["category"] = _error(DecisionErrorCode.INVALID_CATEGORY, _category_message(category))
        else:
            records = records.filter(category=canonical)
    if status is not None:
        if status not in Decision.Status.values:
            choices = ", ".join(Decision.Status.values)
            errors["status"] = _error(DecisionErrorCode.INVALID_STATUS, f"Unknown status {status!r}; one of {choices}.")
        else:
            records = records.filter(status=status)
    if text is not None:
        if not isinstance(text, str) or "\x00" in text:
            errors["text"] = _error(
                DecisionErrorCode.INVALID, "The search text must be a string without NUL characters."
            )
        elif len(text) > SEARCH_TEXT_MAX_LENGTH:
            message = f"The search text may be at most {SEARCH_TEXT_MAX_LENGTH} characters long."
            errors["text"] = _error(DecisionErrorCode.TOO_LONG, message)
        elif text.strip():
            needle = text.strip()
            records = records.filter(
                Q(title__icontains=needle)
                | Q(context__icontains=needle)
                | Q(decision__icontains=needle)
                | Q(consequences__icontains=needle)
            )
    if errors:
        raise ValidationError(errors)
    return records


def category_counts() -> dict[str, int]:
    """Records per category: every category of CATEGORIES (in that order, zeros
    included), then any category no longer listed that records still carry."""
    counts = {category: 0 for category in CATEGORIES}
    for category, count in Decision.objects.order_by().values_list("category").annotate(count=Count("id")):
        counts[category] = count
    return counts


def to_markdown(decision: Decision) -> str:
    """The record as an ADR markdown document (the format of docs/adr/)."""
    return markdown.render(markdown.AdrDocument.from_decision(decision))


# --- Checking fields -----------------------------------------------------------


def _category_message(value: object) -> str:
    return f"Unknown category {value!r}; one of {', '.join(CATEGORIES)}."


def clean_fields(values: Mapping[str, object]) -> dict[str, str]:
    """Check and normalise the given EDITABLE_FIELDS; raise one ValidationError
    naming every bad field. Text is stripped; a category is spelled as in CATEGORIES."""
    cleaned: dict[str, str] = {}
    errors: dict[str, ValidationError] = {}
    for field, value in values.items():
        if field not in EDITABLE_FIELDS:
            raise TypeError(f"{field!r} is not an editable decision field")
        if not isinstance(value, str):
            errors[field] = _error(DecisionErrorCode.INVALID, f"The {field} must be text.")
            continue
        text = value.strip()
        if not text:
            errors[field] = _error(DecisionErrorCode.REQUIRED, f"The {field} must not be empty.")
        elif field == "category":
            category = canonical_category(text)
            if category is None:
                errors[field] = _error(DecisionErrorCode.INVALID_CATEGORY, _category_message(value))
            else:
                cleaned[field] = category
        elif len(text) > EDITABLE_FIELDS[field]:
            message = f"The {field} may be at most {EDITABLE_FIELDS[field]} characters long (it has {len(text)})."
            errors[field] = _error(DecisionErrorCode.TOO_LONG, message)
        elif "\x00" in text:
            # PostgreSQL cannot store NUL in text; refuse it everywhere alike.
            errors[field] = _error(DecisionErrorCode.INVALID, f"The {field} must not contain NUL characters.")
        elif field == "title" and ("\n" in text or "\r" in text):
            # The title is the heading line of the markdown rendering.
            errors[field] = _error(DecisionErrorCode.INVALID, "The title must be a single line.")
        else:
            cleaned[field] = text
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- Writing -------------------------------------------------------------------


def _locked(number: int, field: str = "number") -> Decision:
    """The record to change, locked until the transaction ends (PostgreSQL; on SQLite
    a transaction holds the write lock from its start), so concurrent changes queue."""
    if _is_number(number):
        try:
            return Decision.objects.select_for_update().get(number=number)
        except Decision.DoesNotExist:
            pass
    raise _refuse(field, DecisionErrorCode.NOT_FOUND, f"ADR {number} does not exist.")


def _serialize_numbering() -> None:
    """Make concurrent proposals number one after another, until the transaction ends.

    On PostgreSQL two transactions would both read the same highest number, and
    a row lock cannot help (there is no row to lock for "the next one"), so a
    transaction-scoped advisory lock makes them queue; each reads the highest
    number after the previous one committed. SQLite runs one writer at a time
    when transactions begin IMMEDIATE (mcpsite.settings).
    """
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [NUMBERING_LOCK])


def propose(
    *,
    title: str,
    category: str,
    context: str,
    decision: str,
    consequences: str,
    date: datetime.date | None = None,
) -> Decision:
    """A new proposed record, numbered one past the highest number in use, dated `date` (default today)."""
    fields = {
        "title": title,
        "category": category,
        "context": context,
        "decision": decision,
        "consequences": consequences,
    }
    errors: dict[str, list[ValidationError]] = {}
    cleaned: dict[str, str] = {}
    try:
        cleaned = clean_fields(fields)
    except ValidationError as exc:
        errors = exc.error_dict
    if date is not None and not isinstance(date, datetime.date):
        errors["date"] = [_error(DecisionErrorCode.INVALID, "The date must be a date.")]
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        _serialize_numbering()
        number = (Decision.objects.aggregate(highest=Max("number"))["highest"] or 0) + 1
        return Decision.objects.create(number=number, date=date or timezone.localdate(), **cleaned)


def edit(
    number: int,
    *,
    title: str | None = None,
    category: str | None = None,
    context: str | None = None,
    decision: str | None = None,
    consequences: str | None = None,
) -> Decision:
    """Change the given fields of a proposed or accepted record (None: leave as is).
    Saves only when something actually changed."""
    given = {
        "title": title,
        "category": category,
        "context": context,
        "decision": decision,
        "consequences": consequences,
    }
    with transaction.atomic():
        record = _locked(number)
        if record.status in FINAL_STATUSES:
            message = f"ADR {record.number} is {record.status}; only proposed or accepted records can be edited."
            raise _refuse("number", DecisionErrorCode.NOT_EDITABLE, message)
        cleaned = clean_fields({field: value for field, value in given.items() if value is not None})
        changed = [field for field, value in cleaned.items() if getattr(record, field) != value]
        if changed:
            for field in changed:
                setattr(record, field, cleaned[field])
            record.save(update_fields=[*changed, "updated_at"])
    return record


def _transition(number: int, allowed_from: frozenset[str], to: Decision.Status, verb: str) -> Decision:
    with transaction.atomic():
        record = _locked(number)
        if record.status not in allowed_from:
            allowed = " or ".join(status for status in Decision.Status.values if status in allowed_from)
            message = f"ADR {record.number} is {record.status}; only {allowed} records can be {verb}."
            raise _refuse("number", DecisionErrorCode.INVALID_STATUS_TRANSITION, message)
        record.status = to
        record.save(update_fields=["status", "updated_at"])
    return record


def accept(number: int) -> Decision:
    """proposed -> accepted."""
    return _transition(number, frozenset({Decision.Status.PROPOSED}), Decision.Status.ACCEPTED, "accepted")


def deprecate(number: int) -> Decision:
    """proposed or accepted -> deprecated."""
    allowed = frozenset({Decision.Status.PROPOSED, Decision.Status.ACCEPTED})
    return _transition(number, allowed, Decision.Status.DEPRECATED, "deprecated")


def supersede(number: int, *, by: int) -> Decision:
    """accepted -> superseded by record `by`, which must be another, live record
    (proposed or accepted: pointing readers at a dead end helps nobody)."""
    if number == by:
        raise _refuse("by", DecisionErrorCode.SELF_SUPERSEDE, f"ADR {number} cannot supersede itself.")
    with transaction.atomic():
        # Both rows locked in one query, in number order, so that two supersedes
        # over the same pair cannot deadlock each other.
        wanted = [n for n in (number, by) if _is_number(n)]
        rows = {
            row.number: row for row in Decision.objects.select_for_update().filter(number__in=wanted).order_by("number")
        }
        for field, wanted_number in (("number", number), ("by", by)):
            if wanted_number not in rows:
                raise _refuse(field, DecisionErrorCode.NOT_FOUND, f"ADR {wanted_number} does not exist.")
        record, successor = rows[number], rows[by]
        if record.status != Decision.Status.ACCEPTED:
            message = f"ADR {record.number} is {record.status}; only accepted records can be superseded."
            raise _refuse("number", DecisionErrorCode.INVALID_STATUS_TRANSITION, message)
        if successor.status in FINAL_STATUSES:
            message = f"ADR {successor.number} is {successor.status}; a record can only be superseded by a live one."
            raise _refuse("by", DecisionErrorCode.INVALID_SUCCESSOR, message)
        record.status = Decision.Status.SUPERSEDED
        record.superseded_by = successor
        record.save(update_fields=["status", "superseded_by", "updated_at"])
    return record
