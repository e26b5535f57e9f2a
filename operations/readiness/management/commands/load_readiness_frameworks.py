"""``manage.py load_readiness_frameworks [--directory DIR]``: load the readiness framework files."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from operations.readiness.catalogue import readiness_frameworks_load


class Command(BaseCommand):
    help = "Load the readiness frameworks from their YAML files (idempotent, all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--directory", type=Path, help="Another folder of *.yaml files.")

    def handle(self, *args, directory=None, **options):
        try:
            results = readiness_frameworks_load(directory=directory)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"load_readiness_frameworks: {exc}") from exc
        for result in results:
            self.stdout.write(
                f"{result.code} {result.version}: {result.outcome} "
                f"({result.questions} questions, {result.signals} signals)"
            )
