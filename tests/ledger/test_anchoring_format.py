"""The leaf encoding pinned in docs/log-format.md: the anchoring service's fast encoder writes
exactly the bytes of the reference RFC 8785 encoder, for any transaction."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import log_format, note
from ledger.canonical import MAX_SAFE_INTEGER, canonical_json

# Any Unicode the database can hold (no lone surrogates), astral planes included.
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))]),
)
postings = st.lists(
    st.tuples(text, text, st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1)), max_size=8
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)


@given(st.integers(min_value=1, max_value=MAX_SAFE_INTEGER), text, moments, postings,
       st.dictionaries(text, json_values, max_size=5))
def test_the_fast_leaf_encoder_writes_the_reference_bytes(ident, kind, moment, legs, metadata):
    # given any transaction, as the journal would hand it over
    document = log_format.leaf_document(
        transaction_id=ident, kind=kind, time=log_format.encode_time(moment), postings=legs,
        metadata_sha256=log_format.metadata_digest(json.dumps(metadata)),
    )

    # then the fast path and RFC 8785 agree byte for byte
    assert log_format.leaf_bytes(document) == canonical_json(document)
    assert log_format.leaf_bytes(document, reference=True) == canonical_json(document)


@given(st.dictionaries(text, json_values, max_size=6))
def test_metadata_digest_is_the_canonical_hash_with_unsafe_numbers_as_strings(metadata):
    stored = json.dumps(metadata, ensure_ascii=False)
    parsed = log_format.parse_metadata(stored)
    assert log_format.metadata_digest(stored) == hashlib.sha256(canonical_json(parsed)).hexdigest()


def test_metadata_numbers_json_cannot_carry_exactly_become_strings():
    assert log_format.parse_metadata('{"a": 1.50, "b": 9007199254740993, "c": 7}') == {
        "a": "1.50", "b": "9007199254740993", "c": 7
    }
    assert log_format.metadata_digest("{}") == hashlib.sha256(b"{}").hexdigest()
    assert log_format.metadata_digest(None) == hashlib.sha256(b"{}").hexdigest()


def test_times_are_utc_with_microseconds_and_z():
    moment = datetime(2026, 3, 1, 8, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    assert log_format.encode_time(moment) == "2026-03-01T00:00:00.000000Z"
    with pytest.raises(ValueError):
        log_format.encode_time(datetime(2026, 3, 1))


def test_a_leaf_looks_as_documented():
    document = log_format.leaf_document(
        transaction_id=42, kind="purchase",
        time=log_format.encode_time(datetime(2026, 1, 2, 3, 4, 5, 6, UTC)),
        postings=[("ac_00000000000000a1", "BURGER", -1000),
                  ("ac_00000000000000b2", "BURGER", 1000)],
        metadata_sha256="0" * 64,
    )
    assert log_format.leaf_bytes(document) == (
        b'{"id":42,"kind":"purchase","metadata_sha256":"' + b"0" * 64 + b'",'
        b'"postings":[["ac_00000000000000a1","BURGER","-1000"],'
        b'["ac_00000000000000b2","BURGER","1000"]],'
        b'"time":"2026-01-02T03:04:05.000006Z","v":1}'
    )


def test_supply_totals_and_checkpoint_extensions_round_trip():
    supply: dict = {}
    log_format.supply_add(supply, [
        ("a", "SHARED", -500, "issuance"), ("b", "SHARED", 400, "wallet"),
        ("c", "SHARED", 100, "deposit"),
    ])
    log_format.supply_add(supply, [("c", "SHARED", -30, "deposit"), ("d", "SHARED", 30, "burn")])
    assert supply == {"SHARED": {"issued": 500, "burned": 30, "expired": 0, "circulating": 470}}

    body = log_format.checkpoint_body(origin="o.example/log", size=3, root_hash=bytes(32),
                                      previous_note_hash=b"\x01" * 32, supply=supply)
    assert body.splitlines()[3:] == [
        "prev AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        "supply SHARED issued=500 burned=30 expired=0 circulating=470",
    ]
    parsed = note.parse_checkpoint(body)
    assert log_format.parse_extensions(parsed.extensions) == (b"\x01" * 32, supply)
    with pytest.raises(ValueError):
        log_format.parse_extensions(["unknown line"])
