"""Reading an ingest body: media type, size limits and gzip, before any parsing; JSON by orjson.

The body is read through ``HttpRequest.body``, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
applies (``RequestDataTooBig`` becomes a 413 in the API's error format). A gzip body
(``Content-Encoding: gzip``) is inflated with the same limit on the *decompressed* size, checked
while inflating, so a small compressed bomb never grows past it in memory.
"""

from __future__ import annotations

import re
import zlib

import orjson
from django.conf import settings
from rest_framework import exceptions

from msp.api.errors import PayloadTooLarge
from msp.api.parsers import MAX_JSON_DEPTH, _too_deep, json_document

# 19 digits in a row: maybe an integer past 64 bits, which orjson reads as a float.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")

#: Used when DATA_UPLOAD_MAX_MEMORY_SIZE is None (no limit configured).
FALLBACK_LIMIT = 64 * 1024 * 1024


def decompressed_limit() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or FALLBACK_LIMIT


def gunzip_capped(body: bytes, limit: int) -> bytes:
    """Inflate gzip ``body`` (several members allowed); 413 once the output passes ``limit``."""
    out = bytearray()
    data = body
    while data:
        decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            out += decoder.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise exceptions.ParseError("The body is not valid gzip.") from exc
        if len(out) > limit or decoder.unconsumed_tail:
            raise PayloadTooLarge(f"The decompressed body exceeds {limit} bytes.")
        if not decoder.eof:
            raise exceptions.ParseError("The gzip body is truncated.")
        data = decoder.unused_data
    return bytes(out)


def read_body(request, *, media_types: tuple[str, ...]) -> bytes:
    """The request body, checked against ``media_types`` and decoded from gzip if need be."""
    media_type = (request.content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in media_types:
        raise exceptions.UnsupportedMediaType(media_type)
    body = request.body  # RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE: a 413
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip_capped(body, decompressed_limit())
    raise exceptions.UnsupportedMediaType(
        media_type, detail=f"Unsupported Content-Encoding '{encoding}': send gzip or identity."
    )


def json_samples_document(body: bytes):
    """A JSON ingest body, read by orjson (several times faster than the standard library on
    a batch of samples), under the API's JSON rules (``msp.api.parsers.json_document``).

    Whatever orjson refuses or may read otherwise (``NaN``, ``1e400``, a lone surrogate, an
    integer past 64 bits, invalid JSON) is read again by ``json_document``: the same values
    and the same messages as every other endpoint. Non-finite numbers pass through, for the
    service to refuse per sample.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return json_document(body, finite_only=False)
    deep = body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _too_deep(document)
    if deep or _LONG_DIGITS.search(body):
        return json_document(body, finite_only=False)
    return document
