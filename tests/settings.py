"""Test settings: the production settings module, with test-only speed-ups and a private var/."""

import os
from pathlib import Path

os.environ.setdefault(
    "GROUNDWORK_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / "test")
)
os.environ.setdefault("DJANGO_HTTPS", "false")
os.environ.setdefault("CACHE_KEY_PREFIX", "groundwork-test")

from msp.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": "100000/minute"}  # noqa: F405

# Worker subprocesses in tests must see the test database: keep SQLite's in a file (the pid
# keeps concurrent runs apart; Django deletes it afterwards).
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = str(VAR_DIR / f"test-{os.getpid()}.sqlite3")  # noqa: F405
