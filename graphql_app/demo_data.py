"""The demo decision log: the project's own ADRs, kept as markdown under docs/adr/.

Loading is the one write that does not go through `decisions.propose`: the
records keep the numbers, statuses and dates their files give them. Their
fields are still checked by `decisions.clean_fields`, and a file whose fields
would be stored differently (untrimmed text, a category spelled otherwise) is
refused, so that every loaded record renders back to its file byte for byte.

Idempotent by number: a number already in the database is left alone, whatever
its content, so loading again changes nothing and never overwrites edits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from . import decisions, markdown
from .models import Decision

# docs/adr/NNNN-short-title.md
FILE_PATTERN = "[0-9][0-9][0-9][0-9]-*.md"


class DemoDataError(ValueError):
    """A demo file that cannot be loaded as it stands."""


@dataclass
class LoadResult:
    created: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def read_documents(directory: Path) -> list[tuple[Path, markdown.AdrDocument]]:
    documents = []
    for path in sorted(directory.glob(FILE_PATTERN)):
        try:
            doc = markdown.parse(path.read_text(encoding="utf-8"))
            _check(doc)
        except (markdown.MalformedAdr, ValidationError, DemoDataError) as exc:
            raise DemoDataError(f"{path}: {exc}") from exc
        documents.append((path, doc))
    numbers = [doc.number for _, doc in documents]
    if len(set(numbers)) != len(numbers):
        raise DemoDataError(f"{directory}: two files carry the same ADR number")
    return documents


def _check(doc: markdown.AdrDocument) -> None:
    given = {name: getattr(doc, name) for name in decisions.EDITABLE_FIELDS}
    cleaned = decisions.clean_fields(given)
    if cleaned != given:
        changed = ", ".join(name for name in given if cleaned[name] != given[name])
        raise DemoDataError(f"would be stored differently from the file: {changed}")


def load(directory: Path) -> LoadResult:
    result = LoadResult()
    documents = [doc for _, doc in read_documents(directory)]
    with transaction.atomic():
        existing = set(
            Decision.objects.filter(number__in=[d.number for d in documents]).values_list("number", flat=True)
        )
        new = [doc for doc in documents if doc.number not in existing]
        result.skipped = sorted(existing)
        for doc in new:
            Decision.objects.create(
                number=doc.number,
                title=doc.title,
                status=doc.status,
                date=doc.date,
                category=doc.category,
                context=doc.context,
                decision=doc.decision,
                consequences=doc.consequences,
            )
            result.created.append(doc.number)
        # Links second: a successor may come later in the files than what it replaces.
        for doc in new:
            if doc.superseded_by is not None:
                record = Decision.objects.get(number=doc.number)
                try:
                    record.superseded_by = Decision.objects.get(number=doc.superseded_by)
                except Decision.DoesNotExist:
                    raise DemoDataError(
                        f"ADR {doc.number} is superseded by ADR {doc.superseded_by}, which does not exist"
                    ) from None
                record.save(update_fields=["superseded_by", "updated_at"])
    return result
