"""The fast exposition parser against prometheus_client's, the reference: same samples, or both
refuse. A corpus of hand-picked cases (escapes, comments, timestamps, NaN/Inf, malformed lines)
and hypothesis-generated text, both well-formed and mangled."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from operations.telemetry.exposition import ExpositionError, iter_samples, scan_samples

SCRAPE = (Path(__file__).parent / "fixtures" / "dcgm_exporter_two_hosts.prom").read_text()


def _number(value) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _comparable(samples):
    # NaN is not equal to itself: compare it as a marker.
    def key(number):
        return "NaN" if number is not None and math.isnan(number) else number

    return [
        (family, dict(labels), key(_number(value)), key(None if ts is None else float(ts)))
        for family, labels, value, ts in samples
    ]


def reference(text: str):
    """The reference's samples as (family, labels, value, ts), or the refusal."""
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError, OverflowError):
        return "refused"
    samples = _comparable(
        (family.name, sample.labels, sample.value, sample.timestamp)
        for family in families
        for sample in family.samples
    )
    return samples, {family.name for family in families}


def fast(text: str):
    empty: set[str] = set()
    try:
        samples = _comparable(iter_samples(text, empty_families=empty))
    except ExpositionError:
        return "refused"
    return samples, {family for family, *_rest in samples} | empty


CORPUS = [
    SCRAPE,
    "",
    "\n\n",
    "# just a comment\nup 1\n",
    "up 1\n",
    "up 1 1700000000000\n",
    "up 1 1700000000123\n",
    "up -1.5e3\n",
    "up NaN\n",
    "up +Inf\n",
    "up -Inf\n",
    "up nan\n",
    "up Infinity\n",
    "up 1_000\n",
    "up 0x10\n",
    "up\n",
    "up \n",
    "up 1 2 3\n",
    "up  1\n",
    "up\t1\n",
    "up 1\t2\n",
    'a{b="1"} 1\n',
    'a{b="1",} 1\n',
    'a{,b="1"} 1\n',
    'a{b="1",,c="2"} 1\n',
    'a{b="1",b="2"} 1\n',
    'a{__reserved="1"} 1\n',
    'a{b="1"}1\n',
    'a {b="1"} 1\n',
    'a{b = "1" , c="2"} 1\n',
    'a{b="x\\"y"} 1\n',
    'a{b="x\\\\"} 1\n',
    'a{b="x\\ny"} 1\n',
    'a{b="x\\ty"} 1\n',
    'a{b="x\\"} 1\n',
    'a{b="}"} 1\n',
    'a{b="{,=}"} 2\n',
    'a{b="1" 1\n',
    "a{b=1} 1\n",
    'a{b="1"}} 1\n',
    'a{b="1"} 1}\n',
    '{__name__="a",b="1"} 1\n',
    '{"a.b",c="1"} 1\n',
    'a{"b.c"="1"} 1\n',
    "1a 1\n",
    "a-b 1\n",
    'a-b{c="1"} 1\n',
    'a 1 # {trace="x"} 1\n',
    'a{b="1"} 1 # {trace="x"} 1\n',
    "# HELP a Some help\n# TYPE a gauge\na 1\na 2\n",
    "# HELP a Help with \\\\ and \\n escapes\na 1\n",
    "# TYPE a counter\na 1\n",
    "# TYPE a_total counter\na_total 1\n",
    '# TYPE a summary\na_count 1\na_sum 2\na{quantile="0.5"} 3\n',
    '# TYPE a histogram\na_bucket{le="+Inf"} 1\na_count 1\na_sum 2\na 3\n',
    "# TYPE a gauge\nb 1\na 2\n",
    "# TYPE a weird\na 1\n",
    "# TYPE a\na 1\n",
    "# TYPE\n",
    "# HELP\na 1\n",
    "# HELP a\n",
    "# HELP a x\n# TYPE a gauge\n# HELP b y\n# TYPE b gauge\nb 1\n",
    "# TYPE 1a gauge\n",
    '# TYPE "a.b" gauge\n{"a.b"} 1\n',
    '# TYPE "a.b gauge\n',
    "# TYPE a gauge\n# TYPE a counter\na 1\n",
    "# TYPE a gauge\n# HELP b x\nb 1\n",
    "# TYPE _total counter\n",
    "# TYPE a untyped\na 1\n",
    "  up   1  \n",
    "up 1\r\nup 2\r\n",
    "up 1\rup 2\n",
    "up 1\x0bup 2\n",
    "up 12345678901234567890\n",
    "up 1 " + "9" * 400 + "\n",
    "up " + "9" * 400 + "\n",
    "up 1 12345678901234567\n",
    "up 1 1.5\n",
    "up 1 NaN\n",
    "up ١٢\n",
    "up 1\u00a0\n",
    "up 1 \t2\n",
]


@pytest.mark.parametrize("text", CORPUS)
def test_corpus_matches_the_reference(text):
    assert fast(text) == reference(text)


def test_a_real_scrape_is_read_in_full():
    samples = list(iter_samples(SCRAPE))
    assert len(samples) == SCRAPE.count("\nDCGM_")
    assert fast(SCRAPE) != "refused"


# --- Generated text -------------------------------------------------------------------------

_NAMES = st.sampled_from(
    ["up", "a", "a_total", "a_count", "a_sum", "a_bucket", "DCGM_FI_DEV_GPU_UTIL", "x:y", "_z"]
)
_LABEL_NAMES = st.sampled_from(["gpu", "UUID", "Hostname", "le", "quantile", "a_b", "__x", "9"])
_VALUE_TEXT = st.text(alphabet='ab\\"\n{},= \tx-é', max_size=8)
_NUMBERS = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["NaN", "+Inf", "-Inf", "nan", "1e3", "1_0", "0x1", "", "-0", ".5", "1."]),
)


@st.composite
def _sample_line(draw):
    name = draw(_NAMES)
    labels = draw(st.lists(st.tuples(_LABEL_NAMES, _VALUE_TEXT), max_size=4))
    escaped = [
        (key, value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n"))
        for key, value in labels
    ]
    body = ",".join(f'{key}="{value}"' for key, value in escaped)
    line = f"{name}{{{body}}}" if labels or draw(st.booleans()) else name
    line += " " + draw(_NUMBERS)
    if draw(st.booleans()):
        line += " " + draw(st.one_of(st.integers(0, 2 * 10**12).map(str), _NUMBERS))
    return line


_COMMENT = st.builds(
    lambda keyword, name, rest: f"# {keyword} {name} {rest}".rstrip(),
    st.sampled_from(["HELP", "TYPE", "NOTE"]),
    _NAMES,
    st.sampled_from(["gauge", "counter", "summary", "histogram", "untyped", "bogus", "", "a b"]),
)


@st.composite
def _exposition(draw):
    lines = draw(st.lists(st.one_of(_sample_line(), _COMMENT, st.just("")), max_size=12))
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):
        # Mangle it: insert, delete or replace a character somewhere.
        position = draw(st.integers(0, len(text)))
        junk = draw(st.text(alphabet=' \t"\\{},=#\n\rx1', max_size=2))
        cut = draw(st.integers(0, 2))
        text = text[:position] + junk + text[position + cut :]
    return text


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: the profile
@given(_exposition())
@example('a{b="1"} 1\na{b="1"} 2\n')
def test_generated_text_matches_the_reference(text):
    assert fast(text) == reference(text)


@settings(deadline=None)  # examples: the profile (tests/conftest.py)
@given(st.text(max_size=60))
def test_arbitrary_text_matches_the_reference(text):
    assert fast(text) == reference(text)


# --- Lines whose key was read before ---------------------------------------------------------


@pytest.mark.parametrize("text", CORPUS)
def test_a_text_read_again_matches_the_reference(text):
    # The second reading finds every series key known: only the values are read afresh.
    fast(text)
    assert fast(text) == reference(text)


@pytest.mark.parametrize(
    "tail",
    [" 1_0", " 1 2 3", "  1", " 1 12345678901234567", " 0x1", "", " 1 1.5", " 1 ", "1", " nan 1"],
)
def test_a_known_key_with_another_value_is_read_as_the_reference_reads_it(tail):
    fast('a{b="1"} 1 1700000000000\n')
    text = f'a{{b="1"}}{tail}\n'
    assert fast(text) == reference(text)


@pytest.mark.parametrize("text", [text for text in CORPUS if reference(text) != "refused"])
def test_only_accepted_families_are_kept_and_every_family_is_named(text):
    accepted = {"a", "up", "DCGM_FI_DEV_GPU_UTIL"}
    columns = scan_samples(text, accepted=accepted)
    kept = [
        (name, labels, value, stamp)
        for (_key, name, labels), value, stamp in zip(
            columns.entries, columns.values, columns.stamps, strict=True
        )
    ]
    expected = [sample for sample in iter_samples(text) if sample[0] in accepted]
    assert _comparable(kept) == _comparable(expected)
    assert columns.families == reference(text)[1]
    # A key is given only where it alone names the family: the sample's own name.
    assert all(key is None or key.startswith(name + "{") for key, name, _l in columns.entries)
