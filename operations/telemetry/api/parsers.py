"""Reading an ingest body: media type, size limits and gzip or snappy, before any parsing;
JSON by orjson.

The body is read through ``HttpRequest.body``, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``
applies (``RequestDataTooBig`` becomes a 413 in the API's error format). A gzip body
(``Content-Encoding: gzip``) is inflated with the same limit on the *decompressed* size, checked
while inflating, so a small compressed bomb never grows past it in memory. A snappy body
(remote write) declares its decompressed length up front: that is checked against the same
limit before anything is decompressed.
"""

from __future__ import annotations

import re
import zlib

import cramjam
import orjson
from django.conf import settings
from django.utils.http import parse_header_parameters
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


#: Remote write 1.0's message; 2.0 senders name ``io.prometheus.write.v2.Request`` instead.
REMOTE_WRITE_MEDIA_TYPE = "application/x-protobuf"
REMOTE_WRITE_PROTO = "prometheus.WriteRequest"


def snappy_length_checked(body: bytes, limit: int) -> int:
    """The length a snappy block declares once decompressed; 413 past ``limit``."""
    try:
        declared = cramjam.snappy.decompress_raw_len(body)
    except cramjam.DecompressionError as exc:
        raise exceptions.ParseError("The body is not snappy-compressed (block format).") from exc
    if declared > limit:
        raise PayloadTooLarge(
            f"The decompressed body would be {declared} bytes; at most {limit} are accepted."
        )
    return declared


def unsnappy_capped(body: bytes, limit: int) -> bytes:
    """Decompress a snappy block (not the framed format); 413 when it declares over ``limit``."""
    snappy_length_checked(body, limit)
    try:
        # The output buffer is the declared length, and a block that inflates to any other
        # length is refused: nothing grows past the check above.
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise exceptions.ParseError(f"The body is not valid snappy (block format): {exc}") from exc


def read_remote_write_body(request, *, decompress: bool = True) -> bytes:
    """A Prometheus remote write 1.0 body, decompressed: the bytes of a ``WriteRequest``.

    ``decompress=False``: the snappy body as received, once the length it declares is checked
    (to forward it: the receiver decompresses it)."""
    media_type, params = parse_header_parameters(request.content_type or "")
    media_type = media_type.lower()
    if media_type and media_type != REMOTE_WRITE_MEDIA_TYPE:
        raise exceptions.UnsupportedMediaType(
            media_type, detail=f"Send Content-Type: {REMOTE_WRITE_MEDIA_TYPE} (remote write 1.0)."
        )
    proto = params.get("proto", REMOTE_WRITE_PROTO)
    if proto != REMOTE_WRITE_PROTO:
        raise exceptions.UnsupportedMediaType(
            media_type,
            detail=f"Only remote write 1.0 ({REMOTE_WRITE_PROTO}) is accepted, not '{proto}'.",
        )
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding != "snappy":
        raise exceptions.UnsupportedMediaType(
            media_type,
            detail="Send Content-Encoding: snappy (remote write bodies are snappy-compressed).",
        )
    body = request.body  # RequestDataTooBig past DATA_UPLOAD_MAX_MEMORY_SIZE: a 413
    if not body:
        raise exceptions.ParseError("The body is empty: expected a snappy-compressed WriteRequest.")
    if not decompress:
        snappy_length_checked(body, decompressed_limit())
        return body
    return unsnappy_capped(body, decompressed_limit())


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
