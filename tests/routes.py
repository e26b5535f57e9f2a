"""Every route the URL resolver knows, for the tests that enumerate routes instead of listing
them (hostile input, the tenant boundary, MSP-wide routes): a new route is covered unlisted."""

from __future__ import annotations

from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver


def url_routes(patterns=None, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    """(route, pattern) of every URL, e.g. ``("api/v1/tenants/<slug>/…/?$", pattern)``.

    Regex routes carry their own anchors (``^tenants/…/?$``); the ``^`` are dropped so that
    routes compare as text.
    """
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from url_routes(entry.url_patterns, prefix + str(entry.pattern).replace("^", ""))
        elif isinstance(entry, URLPattern):
            yield (prefix + str(entry.pattern)).replace("^", ""), entry
