import pytest

from operations.reports.pdf import pdf_unavailable_reason

requires_pdf = pytest.mark.skipif(
    bool(pdf_unavailable_reason()), reason=pdf_unavailable_reason() or "PDF available"
)

# The job engine's fixtures: messages recorded instead of sent, eager tasks, on-commit runs.
from tests.jobs.conftest import committed, eager, sent  # noqa: E402,F401
