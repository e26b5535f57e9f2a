"""Telemetry backends: where raw samples live, chosen by the setting ``TELEMETRY_BACKEND``.

``builtin`` (the default): the database's own store (``operations.telemetry.storage``:
PostgreSQL blocks or SQLite's table). ``victoriametrics``: a VictoriaMetrics single node or
cluster at ``TELEMETRY_URL`` (:mod:`operations.telemetry.backends.victoriametrics`).

Both implement :class:`operations.telemetry.storage.SampleStore`; ``storage.sample_store()``
answers the one in force, so services and selectors never know which it is.
"""

from __future__ import annotations

BUILTIN = "builtin"
VICTORIAMETRICS = "victoriametrics"
BACKENDS = (BUILTIN, VICTORIAMETRICS)
