"""A fast parser for the Prometheus text exposition format (version 0.0.4).

It gives the same families, labels, values and timestamps as prometheus_client's
``text_string_to_metric_families`` (the reference, kept in the tests), or refuses the same
text, at a fraction of its cost: the reference walks every line character by character in
Python; here a well-formed sample line costs a few string operations, and a label set is parsed
once per request however many lines repeat it (dcgm-exporter repeats each GPU's labels in
every family). Lines the quick path cannot vouch for (odd spacing, quoted names, ``__name__``
labels, three value fields …) are handed, one at a time, to the reference itself, so unusual
text is read exactly as before.

What the reference does that is kept on purpose:

- a line is what lies between ``\\n`` characters, stripped of whitespace;
- ``# HELP`` / ``# TYPE`` open a family, other comments are skipped; a sample whose name is not
  the open family's (``_count``/``_sum``/``_bucket`` for summaries and histograms) is a family
  of its own; a counter family named ``x_total`` is called ``x``;
- label values unescape ``\\\\``, ``\\"`` and ``\\n`` only;
- a value or timestamp is any number Python reads (``NaN``, ``+Inf``, ``1e3``) without ``_``;
  a timestamp is in milliseconds (returned in seconds);
- an unknown metric type, a label name starting with ``__`` or given twice, text after a closing
  quote, an unquoted name that is not ``[a-zA-Z_:][a-zA-Z0-9_:]*`` are refused.

Exemplars are OpenMetrics, not this format: a line with `` # `` after its value is refused,
as by the reference.
"""

from __future__ import annotations

import re
import string
from collections.abc import Container, Iterator

from prometheus_client.parser import text_string_to_metric_families

#: (family name, labels, value, timestamp in seconds or None). Lines with the same label text
#: share one labels dict: treat it as read-only.
Sample = tuple[str, dict[str, str], float, float | None]

_METRIC_TYPES = frozenset(
    {"counter", "gauge", "summary", "histogram", "gaugehistogram", "unknown", "info", "stateset"}
)
_ALLOWED_SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "summary": ("_count", "_sum", ""),
    "histogram": ("_count", "_sum", "_bucket"),
}
_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Label sets the quick path vouches for: plain names (not reserved ``__``), quoted values with
# backslash escapes, commas between and at most one trailing comma, no spaces.
_QUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"'  # the unrolled form: fast in Python's re
_LABEL = rf"(?!__)[a-zA-Z_][a-zA-Z0-9_]*={_QUOTED}"
_LABEL_SET = re.compile(rf"(?:{_LABEL}(?:,{_LABEL})*,?)?")
_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(r'\\[\\n"]')
_HELP_ESCAPE = re.compile(r"\\[\\n]")
_UNESCAPED = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
_WHITESPACE = re.compile(f"[{re.escape(string.whitespace)}]+")


class ExpositionError(ValueError):
    """The text is not the Prometheus text exposition format."""


def _unescape(text: str, pattern: re.Pattern = _ESCAPE) -> str:
    return pattern.sub(lambda match: _UNESCAPED[match.group(0)], text) if "\\" in text else text


def _labels(text: str) -> dict[str, str] | None:
    """The labels of ``text`` (between the braces), or None when the quick path may not judge."""
    if not _LABEL_SET.fullmatch(text):
        return None
    pairs = _LABEL_PAIR.findall(text)
    labels = {name: _unescape(value) for name, value in pairs}
    # A name given twice: the reference refuses it.
    return labels if len(labels) == len(pairs) else None


def _escaped(text: str, position: int) -> bool:
    backslashes = 0
    while position > backslashes and text[position - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _split_quoted(text: str, maxsplit: int) -> list[str]:
    """``text`` split on whitespace outside double quotes, as the reference splits comments."""
    tokens, start, quoted = [], None, False
    for position, char in enumerate(text):
        if char == '"' and not _escaped(text, position):
            quoted = not quoted
        if not quoted and char in string.whitespace:
            if start is not None:
                if len(tokens) == maxsplit:
                    break
                tokens.append(text[start:position])
                start = None
        elif start is None:
            start = position
    if start is not None:
        tokens.append(text[start:])
    return tokens


def _comment(line: str) -> tuple[str, str, str | None] | None:
    """(``HELP`` or ``TYPE``, family name, type or None) of a comment line; None for others."""
    # Quotes may hide whitespace: only then the slow split.
    parts = _split_quoted(line, 3) if '"' in line else _WHITESPACE.split(line, 3)
    if len(parts) < 2:
        return None
    keyword, name = parts[1], ""
    if len(parts) > 2:
        if keyword != "TYPE" and keyword != "HELP":
            return None
        name = parts[2].strip()
        quoted = name.startswith('"')
        if quoted:
            if len(name) == 1 or not name.endswith('"'):
                raise ExpositionError(f"Missing close quote in: {line[:200]}")
            name = name[1:-1]
        name = _unescape(name)
        if not quoted and not _LEGACY_NAME.fullmatch(name):
            raise ExpositionError(f"Invalid metric name in: {line[:200]}")
    if keyword == "HELP":
        return "HELP", name, None
    if keyword == "TYPE":
        if len(parts) < 4:
            raise ExpositionError(f"TYPE without a type: {line[:200]}")
        return "TYPE", name, parts[3]
    return None


def _number(text: str) -> float:
    if "_" in text:
        raise ValueError(text)
    return float(text)


def _slow_sample(line: str) -> tuple[str, dict[str, str], float, float | None]:
    """One sample line read by the reference parser (the rare, unusual lines)."""
    try:
        (family,) = text_string_to_metric_families(line)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise ExpositionError(f"Invalid sample line: {line[:200]}") from exc
    (sample,) = family.samples
    try:
        value = float(sample.value)
    except OverflowError:  # an integer too long for a float
        value = float("inf") if sample.value > 0 else float("-inf")
    return sample.name, sample.labels, value, sample.timestamp


class _Family:
    __slots__ = ("name", "type", "allowed", "renames")

    def __init__(self, name: str = "", type_: str = "untyped", allowed: tuple = ()):
        self.name, self.type, self.allowed = name, type_, allowed
        # Some sample may be named otherwise than the family (summary, histogram suffixes).
        self.renames = False

    def closed_name(self) -> str:
        """Its name as the reference yields it, or the reference's refusal."""
        name = self.name
        if self.type == "counter" and name.endswith("_total"):
            name = name[:-6]
        if not name:
            raise ExpositionError("A metric family without a name.")
        if self.type != "untyped" and self.type not in _METRIC_TYPES:
            raise ExpositionError(f"Invalid metric type '{self.type[:100]}' of '{name[:200]}'.")
        return name


#: (series key or None, family name, labels) of one sample. The key is the line's text up to
#: its last ``}`` (``name{labels``), given only when it alone settles name and labels (the
#: family is named as the sample); the labels dict is shared: treat it as read-only.
Entry = tuple[str | None, str, dict[str, str]]

#: Series keys the quick path vouched for, with their entry, kept across requests: a scrape
#: repeats the same keys every time, so a known line costs a dict lookup instead of its labels'
#: parsing. Cleared when it outgrows ``_KEYS_KEPT`` (about 400 bytes a key).
_KEYS: dict[str, Entry] = {}
_KEYS_KEPT = 50_000


class SampleColumns:
    """The samples of a text in line order, as columns: ``entries`` (see ``Entry``),
    ``values`` and ``stamps`` (seconds or None; one float object per distinct timestamp text).
    ``families``: the names of every family in the text; ``empty``: those declared
    (``# HELP``/``# TYPE``) without a sample."""

    __slots__ = ("entries", "values", "stamps", "families", "empty")

    def __init__(self):
        self.entries: list[Entry] = []
        self.values: list[float] = []
        self.stamps: list[float | None] = []
        self.families: set[str] = set()
        self.empty: set[str] = set()


def scan_samples(text: str, *, accepted: Container[str] | None = None) -> SampleColumns:
    """The samples of ``text`` as columns, only those of ``accepted`` families when given (the
    others are still read, and refused as the reference refuses them); ``ExpositionError`` for
    text the reference refuses."""
    if len(_KEYS) > _KEYS_KEPT:
        _KEYS.clear()  # before the loop: an entry handed out stays valid for the whole scan
    known = _KEYS
    columns = SampleColumns()
    entries, values, stamps = columns.entries, columns.values, columns.stamps
    add_entry, add_value, add_stamp = entries.append, values.append, stamps.append
    families = columns.families
    label_sets: dict[str, dict[str, str] | None] = {}
    names: dict[str, bool] = {}  # sample name → a plain (legacy) metric name
    comments: dict[str, tuple | None] = {}
    seconds: dict[str, float] = {}  # timestamp text → seconds
    family, start = _Family(), 0  # the open family and the index of its first sample
    allowed = family.allowed

    def close(family: _Family, start: int) -> None:
        closed = family.closed_name()
        families.add(closed)
        if len(entries) == start:
            columns.empty.add(closed)
        elif accepted is not None and closed not in accepted:
            del entries[start:], values[start:], stamps[start:]
        elif family.renames or closed != family.name:
            for index in range(start, len(entries)):
                _key, name, labels = entries[index]
                if name != closed:
                    entries[index] = (None, closed, labels)

    for raw in text.split("\n"):
        line = raw.strip()
        if not line:
            continue
        if line[0] == "#":
            parsed = comments.get(line, False)
            if parsed is False:
                parsed = comments[line] = _comment(line)
            if parsed is None:
                continue
            keyword, name, type_ = parsed
            if name != family.name:
                if family.name:
                    close(family, start)
                family, start = _Family(name, "untyped", (name,)), len(entries)
            if keyword == "TYPE":
                family.type = type_
                family.allowed = tuple(name + s for s in _ALLOWED_SUFFIXES.get(type_, ("",)))
                family.renames = family.renames or family.allowed != (name,)
            allowed = family.allowed
            continue

        # A line repeated from an earlier scrape: its key is known, only the value is read.
        key, _closing, tail = line.rpartition("}")
        entry = known.get(key)
        if entry is None:
            head, brace, rest = line.partition("{")
            if brace:
                label_text, closing, tail = rest.rpartition("}")
                if closing:
                    labels = label_sets.get(label_text, False)
                    if labels is False:
                        labels = label_sets[label_text] = _labels(label_text)
                    if labels is not None:
                        entry = (key, head, labels)
            else:
                head, space, tail = line.partition(" ")
                if space:
                    entry, tail = (None, head, {}), " " + tail
            if entry is not None:
                plain = names.get(head)
                if plain is None:
                    plain = names[head] = _LEGACY_NAME.fullmatch(head) is not None
                if not plain:
                    entry = None
                elif entry[0] is not None:
                    known[key] = entry
        if entry is not None:
            fields = tail.split(" ")
            try:
                if "_" in tail:  # Python reads 1_000, the reference does not
                    raise ValueError(tail)
                if len(fields) == 3:
                    blank, number, millis = fields
                    # Up to 15 digits a float holds the milliseconds exactly, as the
                    # reference's integer division by 1000 reads them.
                    if blank or not number or not 0 < len(millis) < 16:
                        raise ValueError(tail)
                    value = float(number)
                    stamp = seconds.get(millis)
                    if stamp is None:
                        stamp = seconds[millis] = float(millis) / 1000
                elif len(fields) == 2 and not fields[0] and fields[1]:
                    value, stamp = float(fields[1]), None
                else:
                    raise ValueError(tail)
            except ValueError:
                entry = None
        if entry is None:
            name, labels, value, stamp = _slow_sample(line)
            entry = (None, name, labels)
        name = entry[1]
        if name in allowed:
            add_entry(entry)
            add_value(value)
            add_stamp(stamp)
            continue
        if family.name:
            close(family, start)
        family, start = _Family(), len(entries)
        allowed = family.allowed
        if not name:
            raise ExpositionError("A metric family without a name.")
        families.add(name)
        if accepted is None or name in accepted:
            add_entry(entry)
            add_value(value)
            add_stamp(stamp)
            start += 1
    if family.name:
        close(family, start)
    return columns


def iter_samples(text: str, *, empty_families: set[str] | None = None) -> Iterator[Sample]:
    """Every sample of ``text`` with its family's name, in order; ``ExpositionError`` for text
    the reference refuses. ``empty_families``: filled with the names of the families declared
    (``# HELP``/``# TYPE``) without a sample."""
    columns = scan_samples(text)
    if empty_families is not None:
        empty_families |= columns.empty
    for (_key, name, labels), value, stamp in zip(
        columns.entries, columns.values, columns.stamps, strict=True
    ):
        yield name, labels, value, stamp
