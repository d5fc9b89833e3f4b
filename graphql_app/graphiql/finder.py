"""A staticfiles finder that offers GraphiQL's installed files (assets.FILES), and nothing else of node_modules.

Listed in settings.STATICFILES_FINDERS: collectstatic copies and hashes the
files, and `make run` (DEBUG) serves them straight from node_modules. Files
that are not installed are simply not found; `python -m graphql_app.graphiql`
installs them. A production image has no node_modules: it has collected them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal, overload

from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

from graphql_app.graphiql import assets


class GraphiQLFinder(BaseFinder):
    def __init__(self) -> None:
        self.storage = FileSystemStorage(location=assets.NODE_MODULES)
        # collectstatic and WhiteNoise put a storage's prefix in front of the paths it lists.
        self.storage.prefix = assets.STATIC_PREFIX  # type: ignore[attr-defined]

    def check(self, **kwargs: Any) -> list[Any]:
        return []

    @overload
    def find(self, path: str, find_all: Literal[False] = False) -> str | None: ...

    @overload
    def find(self, path: str, find_all: Literal[True]) -> list[str]: ...

    def find(self, path: str, find_all: bool = False) -> str | list[str] | None:
        found = [
            str(assets.NODE_MODULES / name)
            for name in assets.FILES
            if assets.static_name(name) == path and (assets.NODE_MODULES / name).is_file()
        ]
        if find_all:
            return found
        return found[0] if found else None

    def list(self, ignore_patterns: Iterable[str] | None) -> Iterator[tuple[str, FileSystemStorage]]:
        for name in assets.FILES:
            if (assets.NODE_MODULES / name).is_file():
                yield name, self.storage
