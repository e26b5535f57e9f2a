import argparse
import sys

from django.core.management.base import BaseCommand, CommandError

from operations.jobs.supervisor import BACKOFF_FIRST_SECONDS, worker_command, worker_supervise


class Command(BaseCommand):
    help = (
        "Run a Celery worker (`celery -A msp worker ARGS`) and start it again whenever it exits "
        "unexpectedly; SIGTERM or SIGINT stops both. For the demo's Procfile: production uses "
        "systemd (deploy/systemd/)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--backoff",
            type=float,
            default=BACKOFF_FIRST_SECONDS,
            help="seconds before the first restart; doubled on each quick exit, at most 30",
        )
        parser.add_argument(
            "worker_args",
            nargs=argparse.REMAINDER,
            help="arguments for `celery worker`, after --",
        )

    def handle(self, *args, backoff: float, worker_args: list[str], **options):
        if worker_args[:1] == ["--"]:
            worker_args = worker_args[1:]
        if backoff <= 0:
            raise CommandError("--backoff must be positive.")

        def say(line: str) -> None:
            # Straight to the log honcho shows, next to the worker's own lines.
            print(line, file=sys.stdout, flush=True)

        code = worker_supervise(
            command=worker_command(worker_args), backoff_seconds=backoff, say=say
        )
        if code:
            sys.exit(code)
