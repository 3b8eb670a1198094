"""C2SP signed notes, checkpoints and cosignatures against Go's reference vectors.

Ed25519 signing is deterministic, so reproducing ``signed_by_peter`` byte for byte from the
vector's text and signer key proves our key parsing, key ids and line format match Go's
``sumdb/note``; the bad keys must be refused.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import note

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata"
VECTORS_PATH = TESTDATA / "signed-note" / "vectors.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    # No skip: missing reference data must fail the suite.
    assert VECTORS_PATH.is_file(), f"signed-note vectors not found at {VECTORS_PATH}"
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def verifiers(vectors: dict[str, Any]) -> dict[str, note.Verifier]:
    return {name: note.Verifier.from_key(k) for name, k in vectors["verifier_keys"].items()}


def _flip_base64(text: str, at: int) -> str:
    """Change one base64 character so the decoded bytes differ."""
    replacement = "A" if text[at] != "A" else "B"
    return text[:at] + replacement + text[at + 1 :]


def test_signing_reproduces_the_reference_note(vectors: dict[str, Any]) -> None:
    signer = note.Signer.from_key(vectors["signer_key"])
    assert note.sign_note(vectors["text"], [signer]) == vectors["signed_by_peter"]


def test_signer_and_verifier_keys_round_trip(
    vectors: dict[str, Any], verifiers: dict[str, note.Verifier]
) -> None:
    signer = note.Signer.from_key(vectors["signer_key"])
    assert signer.to_key() == vectors["signer_key"]
    assert signer.verifier() == verifiers["PeterNeumann"]
    assert verifiers["PeterNeumann"].to_key() == vectors["verifier_keys"]["PeterNeumann"]
    assert "seed" not in repr(signer).lower() and vectors["signer_key"] not in repr(signer)


def test_both_reference_signatures_verify(
    vectors: dict[str, Any], verifiers: dict[str, note.Verifier]
) -> None:
    text, sigs, unknown = note.open_note(vectors["signed_by_both"], verifiers.values())
    assert text == vectors["text"]
    assert {s.name for s in sigs} == {"PeterNeumann", "EnochRoot"}
    assert unknown == []


def test_unknown_signatures_are_returned_not_trusted(
    vectors: dict[str, Any], verifiers: dict[str, note.Verifier]
) -> None:
    _, sigs, unknown = note.open_note(vectors["signed_by_both"], [verifiers["EnochRoot"]])
    assert [s.name for s in sigs] == ["EnochRoot"]
    assert len(unknown) == 1 and unknown[0].startswith("\u2014 PeterNeumann ")
    # A note signed only by keys we do not know is refused outright.
    with pytest.raises(note.NoteError):
        note.open_note(vectors["signed_by_peter"], [verifiers["EnochRoot"]])


@pytest.mark.parametrize("index", [0, 1])
def test_bad_verifier_keys_are_refused(vectors: dict[str, Any], index: int) -> None:
    with pytest.raises(note.NoteError):
        note.Verifier.from_key(vectors["bad_verifier_keys"][index])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k.replace("PeterNeumann", "PeterNeuman"),  # id no longer matches name
        lambda k: k.replace("c74f20a3", "c74f20a4"),  # wrong id
        lambda k: k.replace("c74f20a3", "c74f20a"),  # short id
        lambda k: k.replace("PeterNeumann", "Peter Neumann"),  # space in name
        lambda k: k.replace("PeterNeumann", ""),  # empty name
        lambda k: k.rsplit("+", 1)[0],  # no key
        lambda k: k + "=",  # broken base64
        lambda k: k[:-4],  # truncated key
    ],
)
def test_malformed_verifier_keys_are_refused(vectors: dict[str, Any], mangle: Any) -> None:
    with pytest.raises(note.NoteError):
        note.Verifier.from_key(mangle(vectors["verifier_keys"]["PeterNeumann"]))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k.replace("PRIVATE+KEY+", "PRIVATE+"),
        lambda k: k.replace("c74f20a3", "00000000"),
        lambda k: k.replace("PeterNeumann", "Mallory"),
        lambda k: k[:-4],
    ],
)
def test_malformed_signer_keys_are_refused(vectors: dict[str, Any], mangle: Any) -> None:
    with pytest.raises(note.NoteError):
        note.Signer.from_key(mangle(vectors["signer_key"]))


def test_tampered_text_fails(vectors: dict[str, Any], verifiers: dict[str, note.Verifier]) -> None:
    tampered = vectors["signed_by_peter"].replace("problem,", "problem;", 1)
    with pytest.raises(note.NoteError):
        note.open_note(tampered, verifiers.values())


def test_tampered_signature_fails(
    vectors: dict[str, Any], verifiers: dict[str, note.Verifier]
) -> None:
    signed = vectors["signed_by_peter"]
    # A character well inside the signature bytes, past the 4-byte key id.
    at = signed.index("x08go/") + 20
    with pytest.raises(note.NoteError, match="invalid signature"):
        note.open_note(_flip_base64(signed, at), verifiers.values())


@pytest.mark.parametrize(
    "malformed",
    [
        "no blank line\n\u2014 PeterNeumann AAAA\n",
        "text\n\n",  # no signature lines
        "text\n\n\u2014 PeterNeumann x08go/ZJ",  # no final newline
        "text\n\n- PeterNeumann x08go/ZJ\n",  # hyphen, not em dash
        "te\x07xt\n\n\u2014 PeterNeumann x08go/ZJ\n",  # control character
    ],
)
def test_malformed_notes_are_refused(malformed: str, verifiers: dict[str, note.Verifier]) -> None:
    with pytest.raises(note.NoteError):
        note.open_note(malformed, verifiers.values())


def test_sign_note_requires_final_newline(vectors: dict[str, Any]) -> None:
    signer = note.Signer.from_key(vectors["signer_key"])
    with pytest.raises(note.NoteError):
        note.sign_note("no newline", [signer])


def test_generated_keys_sign_and_verify() -> None:
    skey, vkey = note.generate_signer("alliance.example/log")
    signed = note.sign_note("hello\n", [note.Signer.from_key(skey)])
    text, sigs, _ = note.open_note(signed, [note.Verifier.from_key(vkey)])
    assert text == "hello\n" and sigs[0].name == "alliance.example/log"


# --- checkpoints ------------------------------------------------------------------------

ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")


def test_checkpoint_format_matches_the_c2sp_example() -> None:
    body = note.format_checkpoint("example.com/behind-the-sofa", 20852163, ROOT, [])
    assert body == (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    assert note.parse_checkpoint(body) == note.Checkpoint(
        "example.com/behind-the-sofa", 20852163, ROOT, []
    )


def test_checkpoint_extensions_round_trip() -> None:
    body = note.format_checkpoint("log", 0, ROOT, ["prev abc", "supply P 10"])
    assert note.parse_checkpoint(body).extensions == ["prev abc", "supply P 10"]


@pytest.mark.parametrize(
    "body",
    [
        "log\n5\n",  # missing root
        "log\n05\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # leading zero
        "log\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        "log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # bad padding
        "log\n5\nAAAA\n",  # short hash
        "\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",  # empty origin
        "log\n5\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",  # no final newline
    ],
)
def test_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(note.NoteError):
        note.parse_checkpoint(body)


# --- cosignatures -----------------------------------------------------------------------


@pytest.fixture
def checkpoint_body() -> str:
    return note.format_checkpoint("alliance.example/log", 42, ROOT, ["prev xyz"])


@pytest.mark.parametrize("alg", [note.ALG_ED25519, note.ALG_COSIGNATURE_V1])
def test_cosignature_round_trip(checkpoint_body: str, alg: int) -> None:
    skey, vkey = note.generate_signer("witness.example/w1", alg)
    witness = note.Signer.from_key(skey)
    line = note.cosign(checkpoint_body, witness, 1_700_000_000)
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    payload = base64.b64decode(line.split(" ")[2])
    assert len(payload) == 4 + 8 + 64
    # The key id is the cosignature/v1 one (type byte 0x04) whatever the key was written as.
    assert int.from_bytes(payload[:4], "big") == note.key_id(
        "witness.example/w1", note.ALG_COSIGNATURE_V1, witness.public_key
    )
    assert int.from_bytes(payload[4:12], "big") == 1_700_000_000
    verifier = note.Verifier.from_key(vkey)
    assert note.verify_cosignature(checkpoint_body, line, verifier) == 1_700_000_000


def test_cosignature_signs_the_cosignature_v1_message(checkpoint_body: str) -> None:
    skey, _ = note.generate_signer("w", note.ALG_COSIGNATURE_V1)
    witness = note.Signer.from_key(skey)
    line = note.cosign(checkpoint_body, witness, 7)
    signature = base64.b64decode(line.split(" ")[2])[12:]
    expected_message = ("cosignature/v1\ntime 7\n" + checkpoint_body).encode()
    # Checked with the raw Ed25519 primitive, independently of our own Verifier.
    Ed25519PublicKey.from_public_bytes(witness.public_key).verify(signature, expected_message)


def test_cosignature_tamper_is_detected(checkpoint_body: str) -> None:
    skey, vkey = note.generate_signer("witness.example/w1", note.ALG_COSIGNATURE_V1)
    verifier = note.Verifier.from_key(vkey)
    line = note.cosign(checkpoint_body, note.Signer.from_key(skey), 1_700_000_000)
    # A different checkpoint body.
    with pytest.raises(note.NoteError):
        note.verify_cosignature(checkpoint_body.replace("42", "43"), line, verifier)
    # A changed timestamp (bytes 4..12 of the payload).
    name_end = line.index(" ", 2) + 1
    payload = bytearray(base64.b64decode(line[name_end:]))
    payload[11] ^= 1
    forged = line[:name_end] + base64.b64encode(bytes(payload)).decode() + "\n"
    with pytest.raises(note.NoteError):
        note.verify_cosignature(checkpoint_body, forged, verifier)
    # A different witness key.
    _, other = note.generate_signer("witness.example/w1", note.ALG_COSIGNATURE_V1)
    with pytest.raises(note.NoteError):
        note.verify_cosignature(checkpoint_body, line, note.Verifier.from_key(other))


def test_cosigned_checkpoint_opens_with_log_and_witness_keys(checkpoint_body: str) -> None:
    log_skey, log_vkey = note.generate_signer("alliance.example/log")
    w_skey, w_vkey = note.generate_signer("witness.example/w1", note.ALG_COSIGNATURE_V1)
    signed = note.sign_note(checkpoint_body, [note.Signer.from_key(log_skey)])
    cosigned = signed + note.cosign(checkpoint_body, note.Signer.from_key(w_skey), 99)
    text, sigs, unknown = note.open_note(
        cosigned, [note.Verifier.from_key(log_vkey), note.Verifier.from_key(w_vkey)]
    )
    assert text == checkpoint_body and unknown == []
    assert [(s.name, s.timestamp) for s in sigs] == [
        ("alliance.example/log", None),
        ("witness.example/w1", 99),
    ]
    # Log key alone: the cosignature is merely unknown, the note still opens.
    _, sigs, unknown = note.open_note(cosigned, [note.Verifier.from_key(log_vkey)])
    assert len(sigs) == 1 and len(unknown) == 1
