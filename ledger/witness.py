"""A witness of the alliance's transparency log (C2SP tlog-cosignature v1).

Run by a member against the public API, as ``manage.py witness --url URL --key FILE`` or,
without the portal's code base configured, ``python -m ledger.witness --url URL --key FILE``.
Pure Python (the standard library's urllib and ``cryptography``), no Django.

One run:

1. fetch the newest checkpoint (``GET /api/v1/log/checkpoint``) and check the log's
   signature on it with the pinned log key (``--log-key``, else the one this witness pinned
   on its first run, else -- trust on first use -- ``GET /api/v1/log/key``);
2. compare it with the checkpoint this witness last cosigned (its state file): the same
   origin, a size not smaller, the same root at the same size, and for a larger size a
   consistency proof (``GET /api/v1/log/proof/consistency``) that verifies;
3. record the new checkpoint in the state file, then cosign it and hand the cosignature in
   (``POST /api/v1/log/cosignatures``).

On a log that was rolled back or rewritten it refuses: nothing is signed, the evidence (both
checkpoints and the proof) is written to a file, and the exit status is 2. Any other failure
(network, a bad signature, the server refusing) exits with 1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ledger import merkle, note

__all__ = [
    "HttpClient",
    "InconsistentLog",
    "UrllibClient",
    "WitnessError",
    "WitnessState",
    "main",
    "witness_run",
]

EXIT_OK, EXIT_ERROR, EXIT_INCONSISTENT = 0, 1, 2


class WitnessError(Exception):
    """The run failed without proving anything against the log."""


class InconsistentLog(WitnessError):
    """The log contradicts a checkpoint this witness cosigned; ``evidence`` is the file."""

    def __init__(self, message: str, evidence: Path) -> None:
        super().__init__(message)
        self.evidence = evidence


class HttpClient(Protocol):
    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]: ...

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]: ...


class UrllibClient:
    """The portal's ``/api/v1`` over HTTP(S), with the standard library only."""

    def __init__(self, url: str, timeout: float = 20.0) -> None:
        base = url.rstrip("/")
        if not base.endswith("/api/v1"):
            base += "/api/v1"
        self.base = base
        self.timeout = timeout

    def _send(self, request: urllib.request.Request) -> tuple[int, bytes]:
        request.add_header("User-Agent", "alliance-witness/1")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessError(f"cannot reach {request.full_url}: {exc}") from exc

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return self._send(urllib.request.Request(self.base + path + query))  # noqa: S310

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310
            self.base + path, data=json.dumps(body).encode("utf-8"), method="POST",
            headers={"Content-Type": "application/json"},
        )
        return self._send(request)


@dataclass
class WitnessState:
    """What a witness remembers between runs: the log it watches and what it last cosigned."""

    log_key: str
    origin: str
    size: int
    root_hash: str  # base64
    checkpoint: str  # the signed note as fetched

    @classmethod
    def load(cls, path: Path) -> WitnessState | None:
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise WitnessError(f"state file {path} is unreadable: {exc}") from exc

    def save(self, path: Path) -> None:
        # Written whole or not at all: a crash must never leave a witness without its memory.
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(asdict(self), handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)


def _error_text(body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _write_evidence(
    directory: Path, reason: str, url: str, state: WitnessState, received: str,
    proof: list[str] | None,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"evidence-{stamp}.json"
    path.write_text(json.dumps({
        "reason": reason,
        "log": url,
        "observed_at": stamp,
        "log_key": state.log_key,
        "cosigned_checkpoint": state.checkpoint,
        "received_checkpoint": received,
        "consistency_proof": proof,
    }, indent=2) + "\n", encoding="utf-8")
    return path


def _log_key(client: HttpClient, pinned: str | None, state: WitnessState | None,
             say: Callable[[str], None]) -> note.Verifier:
    if pinned and state and pinned.strip() != state.log_key:
        raise WitnessError("--log-key differs from the log key this witness pinned earlier")
    key = pinned or (state.log_key if state else None)
    if key is None:
        status, body = client.get("/log/key")
        if status != 200:
            raise WitnessError(f"GET /log/key: HTTP {status} {_error_text(body)}")
        key = body.decode("utf-8").strip()
        say(f"trusting the log key on first use: {key}")
    try:
        verifier = note.Verifier.from_key(key.strip())
    except note.NoteError as exc:
        raise WitnessError(f"log key is invalid: {exc}") from exc
    if verifier.alg != note.ALG_ED25519:
        raise WitnessError("the log key must be an Ed25519 note key (type 0x01)")
    return verifier


def witness_run(
    *,
    client: HttpClient,
    signer: note.Signer,
    state_path: Path,
    log_key: str | None = None,
    evidence_dir: Path | None = None,
    url: str = "",
    clock: Callable[[], float] = time.time,
    say: Callable[[str], None] = lambda message: None,
) -> WitnessState:
    """One witnessing round; returns the new state. Raises ``InconsistentLog`` (evidence
    written, nothing signed) or ``WitnessError``."""
    state = WitnessState.load(state_path)
    verifier = _log_key(client, log_key, state, say)
    evidence_dir = evidence_dir or state_path.parent

    status, body = client.get("/log/checkpoint")
    if status != 200:
        raise WitnessError(f"GET /log/checkpoint: HTTP {status} {_error_text(body)}")
    received = body.decode("utf-8", "replace")
    try:
        text, _signatures, _others = note.open_note(received, [verifier])
        checkpoint = note.parse_checkpoint(text)
    except note.NoteError as exc:
        raise WitnessError(f"the checkpoint is not validly signed by the log key: {exc}") from exc
    root64 = base64.b64encode(checkpoint.root_hash).decode("ascii")

    def refuse(reason: str, proof: list[str] | None = None) -> InconsistentLog:
        assert state is not None
        path = _write_evidence(evidence_dir, reason, url, state, received, proof)
        return InconsistentLog(f"{reason}; evidence in {path}", path)

    if state is not None:
        old_root = base64.b64decode(state.root_hash)
        if checkpoint.origin != state.origin:
            raise refuse(f"origin changed from {state.origin!r} to {checkpoint.origin!r}")
        if checkpoint.size < state.size:
            raise refuse(f"rolled back: tree size {checkpoint.size} is smaller than the "
                         f"{state.size} this witness cosigned")
        if checkpoint.size == state.size and checkpoint.root_hash != old_root:
            raise refuse(f"rewritten: another root at the cosigned tree size {state.size}")
        if checkpoint.size > state.size and state.size > 0:
            status, body = client.get("/log/proof/consistency",
                                      {"first": state.size, "second": checkpoint.size})
            if status != 200:
                # Refusing to prove consistency with what it signed is itself a rewrite sign.
                raise refuse(f"no consistency proof from {state.size} to {checkpoint.size}: "
                             f"HTTP {status} {_error_text(body)}")
            try:
                proof64 = json.loads(body)["proof"]
                proof = [note.b64decode_strict(item) for item in proof64]
            except (ValueError, KeyError, TypeError) as exc:
                raise refuse(f"malformed consistency proof ({exc})") from exc
            try:
                merkle.verify_consistency(state.size, checkpoint.size, proof, old_root,
                                          checkpoint.root_hash)
            except merkle.ProofError as exc:
                raise refuse(f"rewritten: the log at size {checkpoint.size} does not extend "
                             f"the one cosigned at size {state.size} ({exc})", proof64) from exc

    new_state = WitnessState(log_key=verifier.to_key(), origin=checkpoint.origin,
                             size=checkpoint.size, root_hash=root64, checkpoint=received)
    # Remember before signing: a witness must never sign something it would then forget.
    new_state.save(state_path)
    line = note.cosign(text, signer, int(clock()))
    status, body = client.post_json(
        "/log/cosignatures", {"checkpoint_size": checkpoint.size, "cosignature": line}
    )
    if status not in (200, 201):
        raise WitnessError(f"the log refused the cosignature: HTTP {status} {_error_text(body)}")
    say(f"cosigned {checkpoint.origin} at tree size {checkpoint.size}, root {root64}")
    return new_state


def load_signer(path: Path) -> note.Signer:
    try:
        return note.Signer.from_key(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WitnessError(f"cannot read the key file {path}: {exc}") from exc
    except note.NoteError as exc:
        raise WitnessError(f"the key file {path} holds no valid signer key: {exc}") from exc


def run_cli(
    *, url: str, key: Path, state: Path | None, log_key: str | None, evidence_dir: Path | None,
    timeout: float, out: Callable[[str], None], err: Callable[[str], None],
) -> int:
    """The command line's behaviour, shared by ``manage.py witness`` and ``-m``."""
    try:
        signer = load_signer(key)
        if log_key and Path(log_key).is_file():
            log_key = Path(log_key).read_text(encoding="utf-8").strip()
        witness_run(
            client=UrllibClient(url, timeout), signer=signer,
            state_path=state or key.with_name(key.name + ".state.json"),
            log_key=log_key, evidence_dir=evidence_dir, url=url, say=out,
        )
    except InconsistentLog as exc:
        err(f"REFUSED: {exc}")
        return EXIT_INCONSISTENT
    except WitnessError as exc:
        err(f"FAIL: {exc}")
        return EXIT_ERROR
    return EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the portal, e.g. https://points.example")
    parser.add_argument("--key", required=True, type=Path,
                        help="file with this witness's private signer key (note format)")
    parser.add_argument("--state", type=Path,
                        help="state file (default: next to the key, KEY.state.json)")
    parser.add_argument("--log-key", help="pin the log's verifier key (string or file)")
    parser.add_argument("--evidence-dir", type=Path,
                        help="where evidence of an inconsistent log goes (default: state dir)")
    parser.add_argument("--timeout", type=float, default=20.0, help="HTTP timeout, seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.witness", description=__doc__.split(
        "\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_cli(url=args.url, key=args.key, state=args.state, log_key=args.log_key,
                   evidence_dir=args.evidence_dir, timeout=args.timeout,
                   out=print, err=lambda message: print(message, file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
