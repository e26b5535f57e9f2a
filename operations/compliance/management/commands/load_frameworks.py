"""``manage.py load_frameworks [--directory DIR]``: load the compliance framework data files."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.compliance.catalogue import frameworks_load


class Command(BaseCommand):
    help = "Load the compliance frameworks and controls from their YAML files (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, help="Another folder of *.yaml files.")

    def handle(self, *args, directory=None, **options):
        try:
            results = frameworks_load(directory=directory)
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"load_frameworks: {exc}") from exc
        for result in results:
            self.stdout.write(
                f"{result.code} {result.version}: {result.outcome} ({result.controls} controls)"
            )
