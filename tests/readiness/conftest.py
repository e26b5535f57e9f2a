from __future__ import annotations

import pytest

from operations.readiness.catalogue import readiness_frameworks_load
from operations.readiness.selectors import readiness_framework_current


@pytest.fixture
def framework(db):
    """The shipped framework (reloaded if a transactional test flushed the migration's row)."""
    readiness_frameworks_load()
    return readiness_framework_current()


# The job engine's fixtures: messages recorded instead of sent, eager tasks, on-commit runs.
from tests.jobs.conftest import committed, eager, sent  # noqa: E402,F401
