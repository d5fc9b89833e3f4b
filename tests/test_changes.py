"""Saved decision records are announced to MCP clients once their transaction commits, never before or on rollback."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.db import transaction

from graphql_app import decisions

CaptureCallbacks = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
RECORD: dict[str, Any] = {
    "title": "Announce after commit",
    "category": "Backend",
    "context": "c",
    "decision": "d",
    "consequences": "q",
}


@pytest.mark.django_db
def test_a_saved_record_is_announced_once_on_commit(django_capture_on_commit_callbacks: CaptureCallbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        record = decisions.propose(**RECORD)
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks() as callbacks:
        decisions.accept(record.number)
    assert len(callbacks) == 1


def propose_then_give_up() -> None:
    with transaction.atomic():
        decisions.propose(**RECORD)
        raise RuntimeError("the caller gives up; the record is rolled back")


@pytest.mark.django_db
def test_a_rolled_back_change_is_never_announced(django_capture_on_commit_callbacks: CaptureCallbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        propose_then_give_up()
    assert callbacks == []
