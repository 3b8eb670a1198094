"""Standalone receipt verifier: ``python -m ledger.verify RECEIPT --log-key VKEY ...``.

Pure Python (``cryptography`` only, no Django), so anyone can check a receipt downloaded
from the portal without trusting the portal's code or database.

Receipt format ``alliance-receipt/v1`` (a JSON object; the portal produces exactly this)::

    {
      "format": "alliance-receipt/v1",
      "origin": "<log origin line, as in the checkpoint>",
      "index": <int, 0-based leaf index of the transaction>,
      "tree_size": <int, size of the tree the checkpoint commits to>,
      "leaf": "<base64 of the leaf bytes: RFC 8785 canonical JSON of the transaction>",
      "inclusion_proof": ["<base64 32-byte hash>", ...],   # RFC 9162 PATH, leaf side first
      "checkpoint": "<the full signed note: checkpoint text, blank line, signature lines,
                     witness cosignature lines included>"
    }

What a successful verification establishes (each a separate check, failing with a one-line
reason):

1. the leaf bytes are canonical JSON (parsing and re-encoding gives the same bytes), so
   the anchored transaction has exactly one byte representation;
2. the checkpoint note carries a valid signature by the log key (C2SP signed-note);
3. the checkpoint's origin and tree size are the receipt's;
4. the inclusion proof leads from ``SHA-256(0x00 || leaf)`` to the checkpoint's root hash;
5. every configured witness that cosigned did so validly (a bad cosignature by a known
   witness rejects the receipt), and at least ``min_witnesses`` of them cosigned.

Witness keys may be cosignature vkeys (type byte 0x04) or plain Ed25519 note keys (0x01) of
the same key pair; see ``ledger.note``.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger import merkle, note
from ledger.canonical import canonical_json

__all__ = ["RECEIPT_FORMAT", "ReceiptError", "load_key", "main", "verify_receipt"]

RECEIPT_FORMAT = "alliance-receipt/v1"


class ReceiptError(ValueError):
    """The receipt does not verify; the message is the one-line reason."""


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ReceiptError(f"{what} must be a base64 string")
    try:
        return note.b64decode_strict(value)
    except ValueError as exc:
        raise ReceiptError(f"{what} is not valid base64") from exc


def _non_negative_int(receipt: dict[str, Any], field: str) -> int:
    value = receipt.get(field)
    # bool is an int subclass; `true` is not a leaf index.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReceiptError(f"receipt field {field!r} must be a non-negative integer")
    return value


def _decode_leaf(leaf: bytes) -> Any:
    """Parse the leaf and insist it is already in canonical form."""
    try:
        parsed = json.loads(leaf.decode("utf-8"))
        reencoded = canonical_json(parsed)
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise ReceiptError(f"leaf is not canonical JSON ({exc})") from exc
    if reencoded != leaf:
        raise ReceiptError("leaf is not canonical JSON (re-encoding changes its bytes)")
    return parsed


def _as_verifier(key: str | note.Verifier, what: str) -> note.Verifier:
    if isinstance(key, note.Verifier):
        return key
    try:
        return note.Verifier.from_key(key)
    except note.NoteError as exc:
        raise ReceiptError(f"{what} is not a valid verifier key: {exc}") from exc


def verify_receipt(
    receipt: dict[str, Any],
    log_key: str | note.Verifier,
    witness_keys: Iterable[str | note.Verifier] = (),
    min_witnesses: int = 0,
) -> dict[str, Any]:
    """Verify an ``alliance-receipt/v1`` receipt; raise ``ReceiptError`` on any failure.

    Returns a summary: ``origin``, ``index``, ``tree_size``, ``root_hash`` (base64),
    ``leaf_hash`` (hex), ``transaction`` (the parsed leaf), ``log_key`` (name+hexid) and
    ``witnesses`` (list of ``{"name", "key_id", "timestamp"}`` for valid cosignatures).
    """
    if not isinstance(receipt, dict):
        raise ReceiptError("receipt must be a JSON object")
    if receipt.get("format") != RECEIPT_FORMAT:
        raise ReceiptError(f"receipt format must be {RECEIPT_FORMAT!r}")
    origin = receipt.get("origin")
    if not isinstance(origin, str) or not origin:
        raise ReceiptError("receipt origin must be a non-empty string")
    index = _non_negative_int(receipt, "index")
    tree_size = _non_negative_int(receipt, "tree_size")
    leaf = _b64(receipt.get("leaf"), "leaf")
    raw_proof = receipt.get("inclusion_proof")
    if not isinstance(raw_proof, list):
        raise ReceiptError("inclusion_proof must be a list")
    proof = [_b64(item, f"inclusion_proof[{i}]") for i, item in enumerate(raw_proof)]
    checkpoint_note = receipt.get("checkpoint")
    if not isinstance(checkpoint_note, str):
        raise ReceiptError("checkpoint must be the signed note text")

    transaction = _decode_leaf(leaf)

    log_verifier = _as_verifier(log_key, "log key")
    if log_verifier.alg != note.ALG_ED25519:
        raise ReceiptError("log key must be an Ed25519 note key (type 0x01)")
    cosigners: dict[tuple[str, int], note.Verifier] = {}
    for position, key in enumerate(witness_keys):
        cosigner = _as_verifier(key, f"witness key {position + 1}").as_cosigner()
        cosigners[(cosigner.name, cosigner.key_id)] = cosigner
    if min_witnesses > len(cosigners):
        raise ReceiptError(
            f"{min_witnesses} witnesses required but only {len(cosigners)} witness key(s) given"
        )

    # One pass over the note with every known key: a bad signature by *any* known key,
    # log or witness, rejects the whole note (signed-note: clients SHOULD reject).
    try:
        text, signatures, _unknown = note.open_note(
            checkpoint_note, [log_verifier, *cosigners.values()]
        )
    except note.NoteError as exc:
        raise ReceiptError(f"checkpoint signature check failed: {exc}") from exc
    if not any((s.name, s.key_id) == (log_verifier.name, log_verifier.key_id) for s in signatures):
        raise ReceiptError("checkpoint is not signed by the log key")

    try:
        checkpoint = note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise ReceiptError(f"checkpoint is malformed: {exc}") from exc
    if checkpoint.origin != origin:
        raise ReceiptError(
            f"checkpoint origin {checkpoint.origin!r} is not the receipt's {origin!r}"
        )
    if checkpoint.size != tree_size:
        raise ReceiptError(
            f"checkpoint tree size {checkpoint.size} is not the receipt's {tree_size}"
        )

    hashed_leaf = merkle.leaf_hash(leaf)
    try:
        merkle.verify_inclusion(hashed_leaf, index, tree_size, proof, checkpoint.root_hash)
    except merkle.ProofError as exc:
        raise ReceiptError(f"inclusion proof failed: {exc}") from exc

    witnesses = [
        {"name": s.name, "key_id": f"{s.key_id:08x}", "timestamp": s.timestamp}
        for s in signatures
        if (s.name, s.key_id) in cosigners
    ]
    if len(witnesses) < min_witnesses:
        raise ReceiptError(
            f"only {len(witnesses)} valid witness cosignatures, {min_witnesses} required"
        )

    return {
        "origin": origin,
        "index": index,
        "tree_size": tree_size,
        "root_hash": base64.b64encode(checkpoint.root_hash).decode("ascii"),
        "leaf_hash": hashed_leaf.hex(),
        "transaction": transaction,
        "log_key": f"{log_verifier.name}+{log_verifier.key_id:08x}",
        "witnesses": witnesses,
    }


def load_key(value: str) -> str:
    """A key given on the command line: the key string itself, or a file holding it."""
    # Only an existing file is read, so a key string is never mistaken for a missing path.
    try:
        path = Path(value)
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReceiptError(f"cannot read key file {value!r}: {exc}") from exc
    return value.strip()


def _when(timestamp: int) -> str:
    try:
        return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M:%S} UTC"
    except (OverflowError, OSError, ValueError):
        # A valid cosignature may carry any u63 timestamp; show it raw rather than crash.
        return f"unix time {timestamp}"


def _describe(summary: dict[str, Any]) -> str:
    tx = summary["transaction"]
    label = "leaf"
    if isinstance(tx, dict):
        tx_id = next((tx[k] for k in ("id", "tx_id", "transaction_id") if k in tx), None)
        parts = [f"transaction {tx_id}" if tx_id is not None else "transaction"]
        if "kind" in tx:
            parts.append(f"({tx['kind']})")
        label = " ".join(parts)
    lines = [
        f"OK: {label} is leaf {summary['index']} of {summary['origin']} "
        f"at tree size {summary['tree_size']}",
        f"  root {summary['root_hash']} signed by {summary['log_key']}",
        f"  witnesses: {len(summary['witnesses'])}"
        + "".join(
            f"\n    {w['name']} cosigned at {_when(w['timestamp'])}" for w in summary["witnesses"]
        ),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ledger.verify",
        description="Verify an alliance-receipt/v1 receipt against the log key and witnesses.",
    )
    parser.add_argument("receipt", help="path to the receipt JSON file ('-' for stdin)")
    parser.add_argument("--log-key", required=True, help="log verifier key, or a file with it")
    parser.add_argument(
        "--witness-key",
        action="append",
        default=[],
        help="witness verifier key or file (repeatable)",
    )
    parser.add_argument(
        "--min-witnesses", type=int, default=0, help="valid cosignatures required (default 0)"
    )
    args = parser.parse_args(argv)

    try:
        if args.min_witnesses < 0:
            raise ReceiptError("--min-witnesses must be non-negative")
        try:
            raw = sys.stdin.read() if args.receipt == "-" else Path(args.receipt).read_text("utf-8")
            receipt = json.loads(raw)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ReceiptError(f"cannot read receipt: {exc}") from exc
        summary = verify_receipt(
            receipt,
            load_key(args.log_key),
            [load_key(k) for k in args.witness_key],
            args.min_witnesses,
        )
    except ReceiptError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    print(_describe(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
