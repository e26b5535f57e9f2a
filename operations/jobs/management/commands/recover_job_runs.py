from django.core.management.base import BaseCommand

from operations.jobs.services import job_runs_recover


class Command(BaseCommand):
    help = (
        "Re-queue job runs whose worker died, re-send queued runs whose message was lost, and "
        "fail runs that used all their attempts. Beat does this every minute."
    )

    def handle(self, *args, **options):
        result = job_runs_recover()
        self.stdout.write(
            f"re-queued {result.requeued}, re-sent {result.resent}, failed {result.failed}"
        )
