"""WeasyPrint's import remaps ElementTree's default namespace; charts drawn afterwards (in the
worker that printed a PDF) must still be plain <svg>, not <ns0:svg>."""

import pytest

from tenants.portal.charts import BarSeries, bar_chart
from tests.reports.conftest import requires_pdf


@requires_pdf
def test_a_chart_drawn_after_weasyprint_is_imported_is_still_plain_svg():
    import weasyprint.pdf.metadata  # noqa: F401 - the import is what remaps the namespace

    chart = bar_chart(
        title="Incidents",
        categories=["SEV1"],
        series=[BarSeries("n", [1])],
        y_title="n",
        x_title="s",
    )
    assert str(chart.svg).startswith("<svg ")
    assert "ns0:" not in str(chart.svg)


pytestmark = pytest.mark.filterwarnings("ignore")
