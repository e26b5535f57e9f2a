import time
import uuid

from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError

from operations.jobs.tasks import DIAGNOSTIC_KEY, diagnostic_ping


class Command(BaseCommand):
    help = "Send a diagnostic task through the broker and wait for a worker to run it."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args, timeout: float, **options):
        nonce = uuid.uuid4().hex
        diagnostic_ping.delay(nonce)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = cache.get(DIAGNOSTIC_KEY.format(nonce=nonce))
            if answer:
                self.stdout.write(
                    f"worker {answer['worker']} ran the diagnostic task at {answer['at']}"
                )
                return
            time.sleep(0.25)
        raise CommandError(f"No worker ran the diagnostic task within {timeout:.0f}s.")
