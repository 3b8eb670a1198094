"""C2SP signed notes (Ed25519), tlog checkpoints and tlog cosignatures (v1).

Specs followed: c2sp.org/signed-note, c2sp.org/tlog-checkpoint and
c2sp.org/tlog-cosignature (cosignature/v1, Ed25519). Invariants guarded here:

* a note is only ever returned to the caller after at least one signature from a known key
  verified, and never if a known key's signature is bad (signed-note "SHOULD reject");
* key strings are refused unless their name, key id, algorithm byte and key length are all
  consistent -- a verifier key whose id does not match its own name and key is refused;
* signing is byte-for-byte what Go's ``golang.org/x/mod/sumdb/note`` produces.

Key formats (all base64 is RFC 4648 standard alphabet, padded):

* verifier key ``<name>+<hex key id>+base64(alg || public key)``
* signer key   ``PRIVATE+KEY+<name>+<hex key id>+base64(alg || 32-byte seed)``
* key id       ``SHA-256(name || 0x0A || alg || public key)[:4]``, big-endian uint32.

Algorithms: ``0x01`` Ed25519 note signatures; ``0x04`` timestamped Ed25519 cosignatures
(cosignature/v1). Witness keys: tlog-cosignature says an Ed25519 cosigner public key MAY be
written as a vkey with type byte 0x04, so ``Verifier.from_key`` accepts such keys (and
``generate_signer(name, ALG_COSIGNATURE_V1)`` makes matching signer keys, using the same
``PRIVATE+KEY+`` layout with type byte 0x04 -- signed-note itself does not define a private
key format, this mirrors the 0x01 one). For convenience a witness may also be given by an
ordinary 0x01 key of the same Ed25519 key pair: ``cosign`` and ``verify_cosignature``
always sign/verify with the cosignature/v1 key id, recomputed with type byte 0x04 from the
name and public key, so both spellings of the same witness key interoperate.

Pure Python, no Django: imported by ``ledger.verify``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Checkpoint",
    "NoteError",
    "Signature",
    "Signer",
    "Verifier",
    "b64decode_strict",
    "cosign",
    "cosignature_message",
    "format_checkpoint",
    "generate_signer",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "sign_note",
    "split_note",
    "verify_cosignature",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_SUPPORTED_ALGS = (ALG_ED25519, ALG_COSIGNATURE_V1)

_SIG_PREFIX = "\u2014 "  # em dash + space starts every signature line
_ED25519_SIG_LEN = 64
_TIMESTAMP_LEN = 8
_MAX_TIMESTAMP = 2**63 - 1
# signed-note: verifiers must accept at least 16 signatures and should cap the count;
# Go's implementation caps at 100, which we mirror so both reject the same notes.
_MAX_SIGNATURES = 100
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")
_TREE_SIZE = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note, key, checkpoint or cosignature is malformed or fails verification."""


def _is_valid_name(name: str) -> bool:
    """Key names: non-empty, no Unicode spaces, no '+', and (our addition) no controls."""
    if not name:
        return False
    for ch in name:
        if ch == "+" or ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F:
            return False
        if unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cs"):
            return False
    return True


def _check_text_chars(text: str, what: str) -> None:
    """Signed notes are UTF-8 without ASCII controls other than newline."""
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch != "\n") or 0xD800 <= code <= 0xDFFF:
            raise NoteError(f"{what} contains a forbidden control or surrogate character")


def b64decode_strict(data: str) -> bytes:
    """Standard padded base64 as Go's ``base64.StdEncoding`` reads it; ValueError otherwise.

    Python's decoder alone tolerates stray padding (``"QUJD="``), which would let two
    different strings name the same key or signature.
    """
    if len(data) % 4:
        raise ValueError("base64 length is not a multiple of 4")
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(str(exc)) from exc


def _b64decode(data: str, what: str) -> bytes:
    try:
        return b64decode_strict(data)
    except ValueError as exc:
        raise NoteError(f"{what} is not valid base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """``SHA-256(name || "\\n" || alg || public_key)[:4]`` as a big-endian uint32."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Verifier:
    """A public key able to check note signatures (0x01) or cosignatures (0x04)."""

    name: str
    key_id: int
    alg: int
    public_key: bytes

    @classmethod
    def from_key(cls, vkey: str) -> Verifier:
        """Parse ``name+hexid+base64(alg||pub)``; refuse anything inconsistent."""
        vkey = vkey.strip()
        parts = vkey.split("+", 2)  # base64 may itself contain '+', the name may not
        if len(parts) != 3:
            raise NoteError("verifier key must be name+keyid+key")
        name, hex_id, key64 = parts
        if not _is_valid_name(name):
            raise NoteError("verifier key has an invalid name")
        if not _HEX_ID.fullmatch(hex_id):
            raise NoteError("verifier key id must be 8 hex digits")
        raw = _b64decode(key64, "verifier key")
        if not raw:
            raise NoteError("verifier key is empty")
        if int(hex_id, 16) != key_id(name, raw[0], raw[1:]):
            raise NoteError("verifier key id does not match its name and key")
        alg, public = raw[0], raw[1:]
        if alg not in _SUPPORTED_ALGS:
            raise NoteError(f"unsupported verifier key algorithm 0x{alg:02x}")
        if len(public) != 32:
            raise NoteError("Ed25519 public key must be 32 bytes")
        return cls(name=name, key_id=int(hex_id, 16), alg=alg, public_key=public)

    def to_key(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64encode(bytes([self.alg]) + self.public_key)}"

    def as_cosigner(self) -> Verifier:
        """The same Ed25519 key viewed as a cosignature/v1 (0x04) verifier."""
        if self.alg == ALG_COSIGNATURE_V1:
            return self
        return Verifier(
            name=self.name,
            key_id=key_id(self.name, ALG_COSIGNATURE_V1, self.public_key),
            alg=ALG_COSIGNATURE_V1,
            public_key=self.public_key,
        )

    def _ed25519_ok(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != _ED25519_SIG_LEN:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def verify(self, text: bytes, payload: bytes) -> bool:
        """Check a signature payload (the bytes after the key id) over note ``text``.

        For 0x04 keys the payload is ``timestamp(8) || sig`` and the signed message is the
        cosignature/v1 message built from ``text``.
        """
        if self.alg == ALG_ED25519:
            return self._ed25519_ok(text, payload)
        if len(payload) != _TIMESTAMP_LEN + _ED25519_SIG_LEN:
            return False
        (timestamp,) = struct.unpack(">Q", payload[:_TIMESTAMP_LEN])
        if timestamp > _MAX_TIMESTAMP:
            return False
        message = cosignature_message(text.decode("utf-8"), timestamp)
        return self._ed25519_ok(message, payload[_TIMESTAMP_LEN:])


class Signer:
    """An Ed25519 private key with its note name and key id."""

    def __init__(self, name: str, seed: bytes, alg: int = ALG_ED25519) -> None:
        if not _is_valid_name(name):
            raise NoteError("invalid signer name")
        if alg not in _SUPPORTED_ALGS:
            raise NoteError(f"unsupported signer algorithm 0x{alg:02x}")
        if len(seed) != 32:
            raise NoteError("Ed25519 seed must be 32 bytes")
        self.name = name
        self.alg = alg
        self._seed = seed
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.public_key = self._private.public_key().public_bytes_raw()
        self.key_id = key_id(name, alg, self.public_key)

    def __repr__(self) -> str:  # never leak the seed into logs
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x}, alg={self.alg:#04x})"

    @classmethod
    def from_key(cls, skey: str) -> Signer:
        """Parse ``PRIVATE+KEY+name+hexid+base64(alg||seed)``; the id must match the key."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
            raise NoteError("signer key must be PRIVATE+KEY+name+keyid+key")
        _, _, name, hex_id, key64 = parts
        if not _is_valid_name(name):
            raise NoteError("signer key has an invalid name")
        if not _HEX_ID.fullmatch(hex_id):
            raise NoteError("signer key id must be 8 hex digits")
        raw = _b64decode(key64, "signer key")
        if len(raw) != 33:
            raise NoteError("signer key must be one algorithm byte and a 32-byte seed")
        signer = cls(name, raw[1:], raw[0])
        # The id commits to the *public* key, so it can only be checked after derivation.
        if signer.key_id != int(hex_id, 16):
            raise NoteError("signer key id does not match its name and key")
        return signer

    def to_key(self) -> str:
        encoded = _b64encode(bytes([self.alg]) + self._seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{encoded}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_id, self.alg, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """Raw Ed25519 signature (deterministic, RFC 8032)."""
        return self._private.sign(message)


def generate_signer(name: str, alg: int = ALG_ED25519) -> tuple[str, str]:
    """Fresh key pair: ``(signer_key_string, verifier_key_string)``."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    signer = Signer(name, seed, alg)
    return signer.to_key(), signer.verifier().to_key()


@dataclass(frozen=True)
class Signature:
    """One verified signature line of a note."""

    name: str
    key_id: int
    payload: bytes  # everything after the 4-byte key id
    line: str  # the full line, ending in "\n"
    timestamp: int | None = None  # set for cosignature/v1 signatures


def _signature_line(name: str, kid: int, payload: bytes) -> str:
    return f"{_SIG_PREFIX}{name} {_b64encode(kid.to_bytes(4, 'big') + payload)}\n"


def _parse_signature_line(line: str) -> tuple[str, int, bytes]:
    """Split ``— name base64`` (without the newline) into name, key id and payload."""
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("signature line does not start with an em dash and space")
    name, sep, encoded = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not encoded or not _is_valid_name(name):
        raise NoteError("malformed signature line")
    raw = _b64decode(encoded, "signature")
    if len(raw) < 5:
        raise NoteError("signature is too short")
    return name, int.from_bytes(raw[:4], "big"), raw[4:]


def _check_note_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    _check_text_chars(text, "note text")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` with each signer (0x01 keys) and return the signed note."""
    _check_note_text(text)
    if not signers:
        raise NoteError("at least one signer is required")
    message = text.encode("utf-8")
    lines = []
    for signer in signers:
        if signer.alg != ALG_ED25519:
            raise NoteError("note signatures need a 0x01 key; use cosign() for witnesses")
        lines.append(_signature_line(signer.name, signer.key_id, signer.sign(message)))
    return text + "\n" + "".join(lines)


def split_note(note: str) -> tuple[str, list[str]]:
    """Split a signed note into its text and signature lines (each ending in "\\n").

    Only syntax is checked here; nothing is verified.
    """
    _check_text_chars(note, "note")
    # The text ends at the *last* blank line: texts may contain blank lines themselves.
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("note has no signature lines or does not end in a newline")
    lines = [line + "\n" for line in block[:-1].split("\n")]
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError("note has too many signatures")
    for line in lines:
        _parse_signature_line(line[:-1])
    return text, lines


def open_note(note: str, verifiers: Iterable[Verifier]) -> tuple[str, list[Signature], list[str]]:
    """Verify a signed note against known keys.

    Returns ``(text, verified_signatures, unknown_signature_lines)``. Signatures by keys
    not in ``verifiers`` (matched on name *and* key id) are returned unverified, as lines
    ending in "\\n". Raises ``NoteError`` if a known key's signature fails, or if no known
    key signed the note at all.
    """
    text, lines = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    message = text.encode("utf-8")
    verified: list[Signature] = []
    unknown: list[str] = []
    seen: set[tuple[str, int]] = set()
    for line in lines:
        name, kid, payload = _parse_signature_line(line[:-1])
        verifier = known.get((name, kid))
        if verifier is None:
            if line not in unknown:
                unknown.append(line)
            continue
        if (name, kid) in seen:
            continue  # a repeated signature by one key adds nothing
        seen.add((name, kid))
        if not verifier.verify(message, payload):
            raise NoteError(f"invalid signature by known key {name}+{kid:08x}")
        timestamp = None
        if verifier.alg == ALG_COSIGNATURE_V1:
            (timestamp,) = struct.unpack(">Q", payload[:_TIMESTAMP_LEN])
        verified.append(Signature(name, kid, payload, line, timestamp))
    if not verified:
        raise NoteError("note is not signed by any known key")
    return text, verified, unknown


# --- checkpoints (c2sp.org/tlog-checkpoint) ---------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The three mandatory checkpoint lines plus opaque extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: list[str]


def format_checkpoint(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """Checkpoint note text: origin, decimal size, base64 root, extension lines."""
    if not origin or "\n" in origin:
        raise NoteError("origin must be a non-empty single line")
    if size < 0:
        raise NoteError("tree size must be non-negative")
    if len(root_hash) != 32:
        raise NoteError("root hash must be 32 bytes")
    for extension in extensions:
        if not extension or "\n" in extension:
            raise NoteError("extension lines must be non-empty single lines")
    body = "".join(line + "\n" for line in [origin, str(size), _b64encode(root_hash), *extensions])
    _check_text_chars(body, "checkpoint")
    return body


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text (the verified note text, not the signature block)."""
    _check_note_text(text)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint needs origin, size and root hash lines")
    origin, size_line, root_line, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin is empty")
    if not _TREE_SIZE.fullmatch(size_line):
        raise NoteError("checkpoint tree size is not a decimal without leading zeroes")
    root = _b64decode(root_line, "checkpoint root hash")
    if len(root) != 32:
        raise NoteError("checkpoint root hash is not 32 bytes")
    if any(not line for line in extensions):
        raise NoteError("checkpoint extension lines must be non-empty")
    return Checkpoint(origin, int(size_line), root, list(extensions))


# --- cosignatures (c2sp.org/tlog-cosignature, cosignature/v1) -------------------------


def cosignature_message(checkpoint_body: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 witness signs: header, time line, whole note body."""
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_body}".encode()


def cosign(checkpoint_body: str, witness_signer: Signer, timestamp: int) -> str:
    """Cosign a checkpoint body; returns the signature line (ending in "\\n").

    The key id is always the 0x04 one, whatever type byte the signer key was written with.
    """
    parse_checkpoint(checkpoint_body)  # witnesses only ever vouch for well-formed checkpoints
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp out of range")
    signature = witness_signer.sign(cosignature_message(checkpoint_body, timestamp))
    kid = key_id(witness_signer.name, ALG_COSIGNATURE_V1, witness_signer.public_key)
    return _signature_line(witness_signer.name, kid, struct.pack(">Q", timestamp) + signature)


def verify_cosignature(checkpoint_body: str, line: str, witness_verifier: Verifier) -> int:
    """Verify one cosignature line by ``witness_verifier``; returns its timestamp.

    The line must carry the witness's name and cosignature/v1 key id.
    """
    cosigner = witness_verifier.as_cosigner()
    name, kid, payload = _parse_signature_line(line.removesuffix("\n"))
    if name != cosigner.name or kid != cosigner.key_id:
        raise NoteError("cosignature line is not by this witness key")
    _check_note_text(checkpoint_body)
    if not cosigner.verify(checkpoint_body.encode("utf-8"), payload):
        raise NoteError(f"invalid cosignature by {name}+{kid:08x}")
    (timestamp,) = struct.unpack(">Q", payload[:_TIMESTAMP_LEN])
    return int(timestamp)
