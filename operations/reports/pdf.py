"""HTML to PDF with WeasyPrint, which needs the Pango system library.

Without Pango the import of WeasyPrint fails: reports are then made in HTML only, the run's log
and the report row say why, and ``manage.py check`` (run by ``make demo`` and ``make test``)
warns with the command that installs it.
"""

from __future__ import annotations

import logging
from functools import cache

from django.core import checks

# pygal's SVG styles (fill, stroke) are unknown to WeasyPrint's HTML CSS parser, which warns
# about each one on every PDF: its real errors still show.
logging.getLogger("weasyprint").setLevel(logging.ERROR)

INSTALL_HINT = (
    "install Pango (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0; "
    "macOS: brew install pango), then regenerate the report"
)


class PdfUnavailable(RuntimeError):
    """PDFs cannot be made on this machine; the message says why and how to fix it."""


@cache
def pdf_unavailable_reason() -> str:
    """Empty when PDFs can be made, else why not (with how to fix it)."""
    try:
        import weasyprint  # noqa: F401
    except (OSError, ImportError) as exc:
        first_line = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc)
        return f"PDF unavailable: WeasyPrint cannot load ({first_line}); {INSTALL_HINT}."
    return ""


def html_to_pdf(html: str) -> bytes:
    """The PDF of a self-contained HTML document (no external assets are fetched)."""
    reason = pdf_unavailable_reason()
    if reason:
        raise PdfUnavailable(reason)
    import weasyprint
    from weasyprint.urls import URLFetcher

    # A report embeds everything it shows (data: URIs); it never reaches out, so no SSRF
    # through a PDF.
    fetcher = URLFetcher(allowed_protocols=("data",))
    return weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()


@checks.register()
def pdf_library_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    reason = pdf_unavailable_reason()
    if not reason:
        return []
    return [
        checks.Warning(
            "Reports are made in HTML only: " + reason,
            hint=INSTALL_HINT,
            id="reports.W001",
        )
    ]
