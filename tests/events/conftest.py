# The job engine's and readiness' fixtures, for the events those contexts emit.
from tests.jobs.conftest import committed, eager  # noqa: F401
from tests.readiness.conftest import framework  # noqa: F401
