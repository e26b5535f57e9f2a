"""What telemetry's services and selectors raise when the telemetry store cannot answer."""

from __future__ import annotations

from msp.api.errors import DependencyUnavailable


class TelemetryUnavailable(DependencyUnavailable):
    """The telemetry store (VictoriaMetrics) did not answer: refused, timed out or a 5xx.

    The API answers 503 ``service_unavailable``; pages that chart telemetry keep the rest of
    the page and say so in place of the charts; tasks leave their work for the next run."""

    message = "The telemetry store cannot be reached; try again shortly."
