"""The standalone receipt verifier, run the way an outside auditor runs it.

A tiny log is built in memory (``MerkleTree`` + freshly generated keys), a receipt is
written to disk, and ``python -m ledger.verify`` must exit 0 for it and 1 for any single
changed byte or an unmet witness quorum.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle, note
from ledger.canonical import canonical_json
from ledger.verify import RECEIPT_FORMAT, ReceiptError, verify_receipt

REPO_ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "alliance.example/ledger"


@dataclass
class Log:
    receipt: dict[str, Any]
    log_vkey: str
    witness_vkeys: list[str]  # the first two cosigned, the third did not


def _transaction(i: int) -> dict[str, Any]:
    return {
        "id": f"tx-{i:04d}",
        "kind": "earn" if i % 2 else "redeem",
        "postings": [{"account": f"acc-{i}", "asset": "PTS", "amount": str(100 + i)}],
        "time": f"2026-11-22T03:{i % 60:02d}:00Z",
    }


@pytest.fixture(scope="module")
def log() -> Log:
    tree = merkle.MerkleTree()
    leaves = [canonical_json(_transaction(i)) for i in range(11)]
    for leaf in leaves:
        tree.append(leaf)
    log_skey, log_vkey = note.generate_signer(ORIGIN)
    witnesses = [
        note.generate_signer("witness.example/a", note.ALG_COSIGNATURE_V1),
        note.generate_signer("witness.example/b"),  # a witness may give its plain 0x01 key
        note.generate_signer("witness.example/c", note.ALG_COSIGNATURE_V1),
    ]
    body = note.format_checkpoint(ORIGIN, tree.size, tree.root(), ["prev none"])
    signed = note.sign_note(body, [note.Signer.from_key(log_skey)])
    for skey, _ in witnesses[:2]:
        signed += note.cosign(body, note.Signer.from_key(skey), 1_790_000_000)
    index = 6
    receipt = {
        "format": RECEIPT_FORMAT,
        "origin": ORIGIN,
        "index": index,
        "tree_size": tree.size,
        "leaf": base64.b64encode(leaves[index]).decode(),
        "inclusion_proof": [base64.b64encode(h).decode() for h in tree.inclusion_proof(index)],
        "checkpoint": signed,
    }
    return Log(receipt, log_vkey, [vkey for _, vkey in witnesses])


def _run(tmp_path: Path, receipt: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "ledger.verify", str(path), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _witness_args(keys: list[str], minimum: int) -> list[str]:
    args = [arg for key in keys for arg in ("--witness-key", key)]
    return [*args, "--min-witnesses", str(minimum)]


def _flip_byte(encoded: str, position: int) -> str:
    raw = bytearray(base64.b64decode(encoded))
    raw[position] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_valid_receipt_exits_zero_and_names_the_transaction(log: Log, tmp_path: Path) -> None:
    result = _run(tmp_path, log.receipt, "--log-key", log.log_vkey)
    assert result.returncode == 0, result.stderr
    assert "tx-0006" in result.stdout and "redeem" in result.stdout


def test_keys_may_be_given_as_files(log: Log, tmp_path: Path) -> None:
    key_file = tmp_path / "log.vkey"
    key_file.write_text(log.log_vkey + "\n", encoding="utf-8")
    witness_file = tmp_path / "w.vkey"
    witness_file.write_text(log.witness_vkeys[0], encoding="utf-8")
    args = ["--log-key", str(key_file), *_witness_args([str(witness_file)], 1)]
    result = _run(tmp_path, log.receipt, *args)
    assert result.returncode == 0, result.stderr


def test_changed_leaf_byte_fails(log: Log, tmp_path: Path) -> None:
    # Flip the low bit of a digit in the amount: still canonical JSON, different transaction.
    leaf = base64.b64decode(log.receipt["leaf"])
    position = leaf.index(b'"amount":"1') + len(b'"amount":"1')
    receipt = dict(log.receipt, leaf=_flip_byte(log.receipt["leaf"], position))
    result = _run(tmp_path, receipt, "--log-key", log.log_vkey)
    assert result.returncode == 1
    assert "inclusion proof" in result.stderr


def test_non_canonical_leaf_fails(log: Log, tmp_path: Path) -> None:
    leaf = base64.b64decode(log.receipt["leaf"]).replace(b'","', b'", "', 1)
    receipt = dict(log.receipt, leaf=base64.b64encode(leaf).decode())
    result = _run(tmp_path, receipt, "--log-key", log.log_vkey)
    assert result.returncode == 1
    assert "canonical" in result.stderr


@pytest.mark.parametrize("element", [0, -1])
def test_changed_proof_byte_fails(log: Log, tmp_path: Path, element: int) -> None:
    proof = list(log.receipt["inclusion_proof"])
    proof[element] = _flip_byte(proof[element], 17)
    result = _run(tmp_path, dict(log.receipt, inclusion_proof=proof), "--log-key", log.log_vkey)
    assert result.returncode == 1
    assert "inclusion proof" in result.stderr


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c.replace("\n11\n", "\n12\n", 1),  # tree size in the signed text
        lambda c: c.replace("prev none", "prev nonf", 1),  # extension line
        lambda c: c.replace(ORIGIN + " ", ORIGIN + " A", 1),  # log signature line
    ],
)
def test_changed_checkpoint_byte_fails(log: Log, tmp_path: Path, change: Any) -> None:
    checkpoint = change(log.receipt["checkpoint"])
    assert checkpoint != log.receipt["checkpoint"]
    result = _run(tmp_path, dict(log.receipt, checkpoint=checkpoint), "--log-key", log.log_vkey)
    assert result.returncode == 1
    assert result.stderr.startswith("FAIL: ")


def test_log_signature_byte_flip_fails(log: Log, tmp_path: Path) -> None:
    checkpoint = log.receipt["checkpoint"]
    start = checkpoint.index("\u2014 " + ORIGIN + " ") + len("\u2014 " + ORIGIN + " ")
    end = checkpoint.index("\n", start)
    flipped = _flip_byte(checkpoint[start:end], 30)
    result = _run(
        tmp_path,
        dict(log.receipt, checkpoint=checkpoint[:start] + flipped + checkpoint[end:]),
        "--log-key",
        log.log_vkey,
    )
    assert result.returncode == 1
    assert "signature" in result.stderr


def test_wrong_log_key_fails(log: Log, tmp_path: Path) -> None:
    _, other = note.generate_signer(ORIGIN)
    result = _run(tmp_path, log.receipt, "--log-key", other)
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("field", "value"), [("origin", "other.example/log"), ("tree_size", 12), ("index", 7)]
)
def test_receipt_fields_must_match_checkpoint_and_proof(
    log: Log, tmp_path: Path, field: str, value: Any
) -> None:
    result = _run(tmp_path, dict(log.receipt, **{field: value}), "--log-key", log.log_vkey)
    assert result.returncode == 1


def test_witness_quorum_is_enforced(log: Log, tmp_path: Path) -> None:
    a, b, c = log.witness_vkeys
    ok = _run(tmp_path, log.receipt, "--log-key", log.log_vkey, *_witness_args([a, b, c], 2))
    assert ok.returncode == 0, ok.stderr
    assert "witnesses: 2" in ok.stdout
    # Witness c never cosigned: three configured keys cannot reach a quorum of three.
    short = _run(tmp_path, log.receipt, "--log-key", log.log_vkey, *_witness_args([a, b, c], 3))
    assert short.returncode == 1
    assert "2 valid witness cosignatures" in short.stderr
    only_c = _run(tmp_path, log.receipt, "--log-key", log.log_vkey, *_witness_args([c], 1))
    assert only_c.returncode == 1


def test_tampered_cosignature_by_a_known_witness_fails(log: Log, tmp_path: Path) -> None:
    checkpoint = log.receipt["checkpoint"]
    prefix = "\u2014 witness.example/a "
    start = checkpoint.index(prefix) + len(prefix)
    end = checkpoint.index("\n", start)
    forged = checkpoint[:start] + _flip_byte(checkpoint[start:end], 40) + checkpoint[end:]
    receipt = dict(log.receipt, checkpoint=forged)
    args = ("--log-key", log.log_vkey, "--witness-key", log.witness_vkeys[0])
    assert _run(tmp_path, receipt, *args).returncode == 1
    # Without that witness configured, its line is just an unknown signature.
    assert _run(tmp_path, receipt, "--log-key", log.log_vkey).returncode == 0


def test_unreadable_receipt_fails_cleanly(tmp_path: Path, log: Log) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.verify",
            str(tmp_path / "missing.json"),
            "--log-key",
            log.log_vkey,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_library_function_returns_a_summary(log: Log) -> None:
    summary = verify_receipt(log.receipt, log.log_vkey, log.witness_vkeys[:2], min_witnesses=2)
    assert summary["transaction"]["id"] == "tx-0006"
    assert summary["tree_size"] == 11 and summary["index"] == 6
    assert {w["name"] for w in summary["witnesses"]} == {"witness.example/a", "witness.example/b"}
    assert all(w["timestamp"] == 1_790_000_000 for w in summary["witnesses"])
    with pytest.raises(ReceiptError):
        verify_receipt(dict(log.receipt, format="other/v1"), log.log_vkey)


def test_verifier_does_not_import_django() -> None:
    # The auditor's machine has no Django; importing it would also drag in settings.
    code = (
        "import sys, ledger.verify, ledger.merkle, ledger.note, ledger.canonical;"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith('django.'));"
        "sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
