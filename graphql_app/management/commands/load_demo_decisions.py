"""manage.py load_demo_decisions: load docs/adr/ into the decision log; running it again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from graphql_app.demo_data import DemoDataError, load


class Command(BaseCommand):
    help = "Load the demo decision records from docs/adr/ (numbers already present are left alone)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--directory",
            type=Path,
            default=None,
            help="Folder of NNNN-*.md records (default: docs/adr/ in the repository).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"] or Path(settings.BASE_DIR) / "docs" / "adr"
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        try:
            result = load(directory)
        except DemoDataError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Demo decisions: {len(result.created)} loaded, {len(result.skipped)} already present.")
