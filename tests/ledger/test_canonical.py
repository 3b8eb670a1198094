"""RFC 8785 canonical JSON: the leaf bytes every implementation must agree on.

Examples come from RFC 8785 §3.2.2 and §3.2.3; properties cross-check against the standard
library where the two definitions coincide (BMP keys, no floats).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, canonical_json


def test_rfc8785_sorting_example_orders_keys_by_utf16_code_units() -> None:
    # Given the RFC 8785 §3.2.3 object, whose emoji key sorts *before* U+FB33 only in
    # UTF-16 order (it is a surrogate pair starting 0xD83D)
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    # When it is canonicalised, then the member order is the one the RFC prints
    decoded = json.loads(canonical_json(obj))
    assert list(decoded.values()) == [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]


def test_rfc8785_string_and_literal_example() -> None:
    # The §3.2.2 example minus its "numbers" member (the ledger refuses floats).
    source = (
        '{"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = '{"literals":[null,true,false],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    assert canonical_json(json.loads(source)) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("char", "escaped"),
    [
        ("\b", "\\b"),
        ("\f", "\\f"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\t", "\\t"),
        ('"', '\\"'),
        ("\\", "\\\\"),
        ("\x00", "\\u0000"),
        ("\x1f", "\\u001f"),
        ("\x7f", "\x7f"),  # DEL is not a C0 control: literal
        ("/", "/"),  # solidus is never escaped
        ("é", "é"),
        ("\U0001f600", "\U0001f600"),
    ],
)
def test_string_escaping_is_minimal(char: str, escaped: str) -> None:
    assert canonical_json(char) == f'"{escaped}"'.encode()


def test_integers_limited_to_the_ieee754_safe_range() -> None:
    assert canonical_json([MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 0]) == (
        b"[9007199254740991,-9007199254740991,0]"
    )
    # One past the limit would be silently rounded by a double-based JCS implementation.
    with pytest.raises(ValueError):
        canonical_json(MAX_SAFE_INTEGER + 1)
    with pytest.raises(ValueError):
        canonical_json({"amount": -(2**63)})


@pytest.mark.parametrize("bad", [1.5, 0.0, float("nan"), {"a": [1.0]}])
def test_floats_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        canonical_json(bad)


@pytest.mark.parametrize("bad", [{1: "x"}, b"bytes", {"a": object()}])
def test_non_json_values_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        canonical_json(bad)


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError):
        canonical_json("\ud800")
    with pytest.raises(ValueError):
        canonical_json({"\udfff": 1})


def test_booleans_are_not_written_as_numbers() -> None:
    assert canonical_json({"b": True, "a": False, "n": None}) == (b'{"a":false,"b":true,"n":null}')


_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | _text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_output_parses_back_and_is_a_fixed_point(value: object) -> None:
    encoded = canonical_json(value)
    assert json.loads(encoded) == value
    assert canonical_json(json.loads(encoded)) == encoded


_bmp_text = st.text(
    alphabet=st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=12
)


@given(st.dictionaries(_bmp_text, _bmp_text, max_size=6))
def test_matches_stdlib_for_bmp_keys(value: dict[str, str]) -> None:
    # Within the BMP, code-point and UTF-16 order coincide and the stdlib's minimal escaping
    # equals RFC 8785's, so the two encoders must agree byte for byte.
    expected = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert canonical_json(value) == expected.encode("utf-8")
