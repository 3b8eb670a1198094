"""RFC 8785 (JSON Canonicalization Scheme) encoder for the ledger's leaf bytes.

Every transaction becomes a Merkle leaf whose bytes are its canonical JSON, so two
implementations (the Django writer and the standalone verifier) must produce the very
same bytes for the same value. This module guards that invariant for the subset of JSON
the ledger uses: objects, arrays, strings, integers within the IEEE-754 "safe" range,
booleans and null.

Deliberately unsupported:

* floats -- RFC 8785 serialises numbers with the ECMAScript double formatting rules; the
  ledger never needs them (amounts are integers), and refusing them keeps a whole class
  of rounding disagreements out of the hash input;
* integers beyond +/-(2**53 - 1) -- a conforming JCS implementation would have to turn
  them into doubles and lose precision, silently changing the value being anchored.
  Callers encode such numbers as decimal strings instead.

Pure Python, no Django: imported by ``ledger.verify``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MAX_SAFE_INTEGER", "canonical_json"]

#: Largest integer a JCS encoder can round-trip exactly through an IEEE-754 double.
MAX_SAFE_INTEGER = 2**53 - 1

# RFC 8785 §3.2.2.2 (ECMAScript JSON.stringify): only these get short escapes...
_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
# ...the remaining C0 controls become lowercase \u00xx, and everything else (including
# U+007F and all non-ASCII) is emitted literally as UTF-8.
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group(0)
    short = _SHORT_ESCAPES.get(ch)
    if short is not None:
        return short
    return f"\\u{ord(ch):04x}"


def _encode_string(value: str) -> str:
    """Quote a string; lone surrogates are refused because I-JSON forbids them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("string contains a lone surrogate; not valid I-JSON") from exc
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, value) + '"'


def _utf16_sort_key(key: str) -> bytes:
    # RFC 8785 §3.2.3 orders members by UTF-16 code units, not code points: the two differ
    # for characters above U+FFFF versus U+E000..U+FFFF. Big-endian UTF-16 bytes compare
    # exactly like the sequence of code units.
    return key.encode("utf-16-be")


def _encode(value: Any, out: list[str]) -> None:
    # bool first: it is a subclass of int and must not be written as 0/1.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(
                f"integer {value} is outside the IEEE-754 safe range; encode it as a string"
            )
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("floats are not allowed in canonical ledger JSON")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"object keys must be strings, got {type(key).__name__}")
        try:
            keys = sorted(value, key=_utf16_sort_key)
        except UnicodeEncodeError as exc:
            raise ValueError("object key contains a lone surrogate") from exc
        out.append("{")
        for position, key in enumerate(keys):
            if position:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for position, item in enumerate(value):
            if position:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot canonicalise value of type {type(value).__name__}")


def canonical_json(obj: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of ``obj``.

    Raises ``TypeError`` for floats and non-JSON types, ``ValueError`` for integers outside
    the safe range and strings that are not valid Unicode scalar sequences.
    """
    out: list[str] = []
    _encode(obj, out)
    return "".join(out).encode("utf-8")
