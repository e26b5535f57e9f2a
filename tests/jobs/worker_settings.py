"""Settings of the worker subprocesses in the failure tests.

The test settings, pointed at the test database the test process created and at a broker
namespace private to the test (so no other worker on this machine takes its messages), with
short leases so that a killed worker's run is taken over in seconds, not minutes. The values
come from the environment ``tests/jobs/worker.py`` gives the subprocess; without them (when
the meta-tests import every test module) this is just the test settings.
"""

import json
import os

from tests.settings import *  # noqa: F403

if "GROUNDWORK_TEST_DB_NAME" in os.environ:
    DATABASES["default"]["NAME"] = os.environ["GROUNDWORK_TEST_DB_NAME"]  # noqa: F405
if "GROUNDWORK_TEST_BROKER_URL" in os.environ:
    CELERY_BROKER_URL = os.environ["GROUNDWORK_TEST_BROKER_URL"]
    CELERY_BROKER_TRANSPORT_OPTIONS = json.loads(os.environ["GROUNDWORK_TEST_BROKER_OPTIONS"])

JOBS_LEASE_SECONDS = int(os.environ.get("GROUNDWORK_TEST_LEASE_SECONDS", "3"))
JOBS_HEARTBEAT_SECONDS = 0.5
JOBS_KIND_MODULES = ["tests.jobs.kinds"]

# Webhook tests: a receiver on 127.0.0.1, and a claim a killed sender gives up in seconds.
if os.environ.get("GROUNDWORK_TEST_WEBHOOKS"):
    WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    WEBHOOKS_CLAIM_LEASE_SECONDS = 2
