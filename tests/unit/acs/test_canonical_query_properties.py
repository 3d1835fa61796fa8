"""Canonical query strings: what both signer and verifier must agree on, whatever the wire order."""

from __future__ import annotations

import random
import re
from urllib.parse import parse_qsl, unquote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emrops.acs.signing import canonical_query, percent_encode

# The machine is shared and loaded: judge properties, not generation speed.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any Unicode a JSON string can carry (no lone surrogates: they cannot be UTF-8 encoded).
text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
keys = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=12)
pairs = st.dictionaries(keys, text, max_size=8).map(lambda d: list(d.items()))


@relaxed
@given(pairs, st.randoms())
def test_order_of_parameters_does_not_matter(items: list[tuple[str, str]], rnd: random.Random) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert canonical_query(shuffled) == canonical_query(items)


@relaxed
@given(pairs)
def test_wire_round_trip_keeps_the_canonical_form(items: list[tuple[str, str]]) -> None:
    """What the SDK puts on the wire (urlencode) and a server reads back (parse_qsl) signs the same."""
    wire = urlencode(items)
    assert canonical_query(parse_qsl(wire, keep_blank_values=True)) == canonical_query(items)


@relaxed
@given(text)
def test_percent_encode_is_rfc3986(value: str) -> None:
    encoded = percent_encode(value)
    assert re.fullmatch(r"(?:[A-Za-z0-9\-_.~]|%[0-9A-F]{2})*", encoded)
    assert unquote(encoded) == value


def test_percent_encode_special_characters() -> None:
    assert percent_encode("a b*~/+&=中") == "a%20b%2A~%2F%2B%26%3D%E4%B8%AD"


def test_canonical_query_sorts_by_encoded_key_and_keeps_blank_values() -> None:
    assert canonical_query([("b", ""), ("a", "x y"), ("A", "*")]) == "A=%2A&a=x%20y&b="
