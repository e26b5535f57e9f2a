from django.core.management.base import BaseCommand, CommandError

from operations.jobs.outbox import outbox_drain


class Command(BaseCommand):
    help = (
        "Send the job messages still waiting in the outbox (their broker was down at commit). "
        "Beat does this every few seconds; run it by hand after an outage."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=100_000)
        parser.add_argument(
            "--due-only",
            action="store_true",
            help="Leave messages still in their grace period or backoff (what beat does).",
        )

    def handle(self, *args, limit: int, due_only: bool, **options):
        result = outbox_drain(limit=limit, include_waiting=not due_only)
        self.stdout.write(
            f"sent {result.sent}, failed {result.failed}, still pending {result.pending}"
        )
        if result.failed:
            raise CommandError(f"The broker refused a message: {result.error}")
