"""Test settings: the production settings module, with test-only speed-ups and a private var/."""

import atexit
import gc
import os
from pathlib import Path

# Under pytest-xdist every worker process (gw0, gw1, ...) gets a var/ of its own (file cache,
# filesystem broker, SQLite test database) and cache and broker key prefixes of its own on
# Redis. Subprocesses a test starts (Celery workers) inherit them through the environment.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_TEST_VAR = Path(__file__).resolve().parent.parent / "var" / "test"
os.environ.setdefault(
    "GROUNDWORK_VAR_DIR", str(_TEST_VAR / XDIST_WORKER if XDIST_WORKER else _TEST_VAR)
)
os.environ.setdefault("DJANGO_HTTPS", "false")
os.environ.setdefault(
    "CACHE_KEY_PREFIX", f"groundwork-test-{XDIST_WORKER}" if XDIST_WORKER else "groundwork-test"
)

from msp.settings import *  # noqa: E402,F403

# Every process on these settings (the test run, the Celery workers tests start) skips the
# garbage collections of its exit: walking the ~200k objects of a loaded project took 1-5 s a
# worker stop, to free memory the OS takes back anyway.
atexit.register(gc.freeze)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": "100000/minute"}  # noqa: F405

# Worker subprocesses in tests must see the test database: keep SQLite's in a file (the pid
# keeps concurrent runs apart; Django deletes it afterwards).
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = str(VAR_DIR / f"test-{os.getpid()}.sqlite3")  # noqa: F405

# One Redis broker for the whole suite: each xdist worker publishes under a prefix of its own,
# so a test that purges or reads the job queues sees only its own worker's messages.
if XDIST_WORKER and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):  # noqa: F405
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,  # noqa: F405
        "global_keyprefix": f"groundwork-test-{XDIST_WORKER}:",
    }
