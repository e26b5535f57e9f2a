"""The web worker's allocator (msp/memory.py): a request body of a MiB or so reuses the heap's
pages instead of faulting in fresh ones every request. Counted in page faults, not time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator")

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 50
#: A forwarded scrape's body in gunicorn's and Django's buffers: a few MiB held at once.
PAGES_A_REQUEST = 4 * 1024 * 1024 // 4096

_MEASURE = """
import resource

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for number in range({requests}):
        held = [bytes(1024 * 1024) + bytes([number % 256]) for _ in range(4)]  # written
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()  # the first pass may grow the heap once
print(faults())
"""


def _faults(setup: str) -> int:
    code = textwrap.dedent(setup) + _MEASURE.format(requests=REQUESTS)
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    env.setdefault("DJANGO_SETTINGS_MODULE", "msp.settings")
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def test_without_the_tuning_every_request_faults_its_buffers_in_again():
    # The baseline the tuning is for (glibc's defaults): about a fault a page, every request.
    assert _faults("") > REQUESTS * PAGES_A_REQUEST // 2


def test_the_wsgi_application_keeps_request_buffers_in_the_heap():
    # Imported as gunicorn imports it in each worker.
    assert _faults("import msp.wsgi\n") < REQUESTS * PAGES_A_REQUEST // 20
