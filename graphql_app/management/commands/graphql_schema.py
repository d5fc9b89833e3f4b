"""manage.py graphql_schema: write the live GraphQL schema to graphql_app/schema.graphql.

The file is committed so that API changes show up in review as a schema diff;
tests/test_graphql.py fails when it no longer matches. `--check` only compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from graphql_app.api.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def schema_text() -> str:
    return schema.as_str() + "\n"


class Command(BaseCommand):
    help = "Write the GraphQL schema to graphql_app/schema.graphql (or, with --check, fail if it differs)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Compare only; exit 1 if the file is out of date.")

    def handle(self, *args: Any, **options: Any) -> None:
        text = schema_text()
        if options["check"]:
            if not SCHEMA_FILE.exists() or SCHEMA_FILE.read_text(encoding="utf-8") != text:
                raise CommandError(f"{SCHEMA_FILE} is out of date: run `manage.py graphql_schema`")
            self.stdout.write(f"{SCHEMA_FILE} is up to date.")
            return
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {SCHEMA_FILE}.")
