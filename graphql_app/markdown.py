"""ADR markdown: a record rendered as a document, and such a document read back.

`render` and `parse` are a pair: the demo records in docs/adr/ are written in
exactly the format `render` produces, and a test checks that every one of them
round-trips. Change both together, then the files:

    # ADR 3: Title on one line

    Status: Accepted · Date: 2026-11-26 · Category: Real-Time · Superseded by ADR 7

    ## Context

    ...

    ## Decision

    ...

    ## Consequences

    ...

The "Superseded by" part is there only for superseded records. A section must
not itself contain a line that is one of the three section headings.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from .models import Decision

SEPARATOR = " · "
SECTIONS = ("Context", "Decision", "Consequences")

_HEADING = re.compile(r"# ADR (?P<number>[1-9][0-9]*): (?P<title>\S.*)")
_META = re.compile(
    r"Status: (?P<status>[A-Za-z]+) · Date: (?P<date>\d{4}-\d{2}-\d{2}) · Category: (?P<category>[^·]+?)"
    r"(?: · Superseded by ADR (?P<superseded_by>[1-9][0-9]*))?"
)


class MalformedAdr(ValueError):
    """A document that is not in the format `render` writes."""


@dataclass(frozen=True)
class AdrDocument:
    number: int
    title: str
    status: Decision.Status
    date: datetime.date
    category: str
    context: str
    decision: str
    consequences: str
    superseded_by: int | None = None

    @classmethod
    def from_decision(cls, record: Decision) -> AdrDocument:
        # superseded_by_id is the successor's number (the key is `to_field="number"`): no query.
        return cls(
            number=record.number,
            title=record.title,
            status=Decision.Status(record.status),
            date=record.date,
            category=record.category,
            context=record.context,
            decision=record.decision,
            consequences=record.consequences,
            superseded_by=record.superseded_by_id,
        )


def render(doc: AdrDocument) -> str:
    meta = [f"Status: {doc.status.label}", f"Date: {doc.date.isoformat()}", f"Category: {doc.category}"]
    if doc.superseded_by is not None:
        meta.append(f"Superseded by ADR {doc.superseded_by}")
    parts = [f"# ADR {doc.number}: {doc.title}", SEPARATOR.join(meta)]
    for heading, body in zip(SECTIONS, (doc.context, doc.decision, doc.consequences), strict=True):
        parts += [f"## {heading}", body]
    return "\n\n".join(parts) + "\n"


def parse(text: str) -> AdrDocument:
    """The document `text` describes; `MalformedAdr` saying what is wrong if it is not in `render`'s format."""
    lines = text.strip().splitlines()
    if len(lines) < 3 or lines[1] != "":
        raise MalformedAdr("expected a '# ADR <number>: <title>' line, a blank line, then the status line")
    heading = _HEADING.fullmatch(lines[0])
    if heading is None:
        raise MalformedAdr(f"the first line must read '# ADR <number>: <title>', not {lines[0]!r}")
    meta = _META.fullmatch(lines[2])
    if meta is None:
        raise MalformedAdr(f"the third line must read 'Status: ... · Date: ... · Category: ...', not {lines[2]!r}")
    status = next((s for s in Decision.Status if s.label == meta["status"]), None)
    if status is None:
        raise MalformedAdr(f"unknown status {meta['status']!r}")
    try:
        date = datetime.date.fromisoformat(meta["date"])
    except ValueError as exc:
        raise MalformedAdr(f"bad date {meta['date']!r}: {exc}") from None
    sections = _sections(lines[3:])
    return AdrDocument(
        number=int(heading["number"]),
        title=heading["title"].strip(),
        status=status,
        date=date,
        category=meta["category"],
        context=sections[0],
        decision=sections[1],
        consequences=sections[2],
        superseded_by=int(meta["superseded_by"]) if meta["superseded_by"] else None,
    )


def _sections(lines: list[str]) -> list[str]:
    """The bodies under '## Context', '## Decision', '## Consequences', in that order, stripped."""
    headings = [f"## {name}" for name in SECTIONS]
    positions = [i for i, line in enumerate(lines) if line in headings]
    if [lines[i] for i in positions] != headings:
        raise MalformedAdr(f"expected the sections {', '.join(headings)}, once each and in that order")
    if any(line.strip() for line in lines[: positions[0]]):
        raise MalformedAdr("unexpected text between the status line and '## Context'")
    ends = [*positions[1:], len(lines)]
    return ["\n".join(lines[start + 1 : end]).strip() for start, end in zip(positions, ends, strict=True)]
