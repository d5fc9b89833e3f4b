"""docs/adr/ and `manage.py load_demo_decisions`: idempotent, and every record round-trips to its file."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from graphql_app import decisions
from graphql_app.demo_data import FILE_PATTERN
from graphql_app.markdown import parse
from graphql_app.models import Decision

pytestmark = pytest.mark.django_db

ADR_DIR = Path(settings.BASE_DIR) / "docs" / "adr"
FILES = sorted(ADR_DIR.glob(FILE_PATTERN))


def load(directory: Path | None = None) -> str:
    out = StringIO()
    args = ["--directory", str(directory)] if directory else []
    call_command("load_demo_decisions", *args, stdout=out)
    return out.getvalue()


def snapshot() -> list[tuple[object, ...]]:
    return list(Decision.objects.values_list())


def test_the_demo_log_has_at_least_five_records_numbered_from_one() -> None:
    assert len(FILES) >= 5
    assert [parse(path.read_text(encoding="utf-8")).number for path in FILES] == list(range(1, len(FILES) + 1))


def test_loading_twice_loads_once_and_changes_nothing() -> None:
    first = load()
    before = snapshot()
    second = load()

    assert first.strip() == f"Demo decisions: {len(FILES)} loaded, 0 already present."
    assert second.strip() == f"Demo decisions: 0 loaded, {len(FILES)} already present."
    assert snapshot() == before


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_each_record_renders_back_to_its_file(path: Path) -> None:
    load()
    text = path.read_text(encoding="utf-8")

    assert decisions.to_markdown(decisions.get(parse(text).number)) == text


def test_loading_leaves_records_already_there_alone_and_numbering_continues() -> None:
    load()
    decisions.edit(1, title="Edited in the admin")
    load()

    assert decisions.get(1).title == "Edited in the admin"
    new = decisions.propose(title="Next", category="Data", context="c", decision="d", consequences="e")
    assert new.number == len(FILES) + 1


def test_a_superseded_demo_record_links_to_its_successor(tmp_path: Path) -> None:
    for path in FILES[:2]:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    old = tmp_path / FILES[0].name
    old.write_text(
        old.read_text()
        .replace("Status: Accepted ·", "Status: Superseded ·")
        .replace("Category: Backend\n", "Category: Backend · Superseded by ADR 2\n")
    )

    load(tmp_path)

    record = decisions.get(1)
    assert (record.status, record.superseded_by_id) == (Decision.Status.SUPERSEDED, 2)
    assert decisions.to_markdown(record) == old.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("# Not an ADR\n", "expected a '# ADR <number>: <title>' line"),
        ("# ADR 1: T\n\nStatus: Maybe · Date: 2026-01-01 · Category: Backend\n", "unknown status"),
        ("# ADR 1: T\n\nStatus: Accepted · Date: 2026-02-30 · Category: Backend\n", "bad date"),
        ("# ADR 1: T\n\nStatus: Accepted · Date: 2026-01-01 · Category: Backend\n\n## Context\n\nc\n", "sections"),
        (
            "# ADR 1: T\n\nStatus: Accepted · Date: 2026-01-01 · Category: Cooking\n\n"
            "## Context\n\nc\n\n## Decision\n\nd\n\n## Consequences\n\ne\n",
            "Unknown category",
        ),
        (
            "# ADR 1: T\n\nStatus: Accepted · Date: 2026-01-01 · Category: backend\n\n"
            "## Context\n\nc\n\n## Decision\n\nd\n\n## Consequences\n\ne\n",
            "stored differently from the file: category",
        ),
    ],
)
def test_a_malformed_file_is_refused_with_its_name_and_loads_nothing(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "0001-good.md").write_text(FILES[0].read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "0002-bad.md").write_text(content, encoding="utf-8")

    with pytest.raises(CommandError, match=r"0002-bad\.md") as info:
        load(tmp_path)

    assert message in str(info.value)
    assert not Decision.objects.exists()
