"""The witness command against a live portal: it cosigns a log that only grows, and refuses,
keeping the evidence, a log that was rolled back or rewritten."""

import json
from pathlib import Path

import pytest
from django.core.management import call_command

from ledger import log_services, note
from ledger.models import Checkpoint, Cosignature
from tests.factories import UserFactory

from . import log_helpers
from .log_helpers import tamper

pytestmark = pytest.mark.django_db(transaction=True)
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures


@pytest.fixture
def witness_key(kit, tmp_path) -> Path:
    """A member's witness key file, registered and approved."""
    path = tmp_path / "witness" / "w1.key"
    call_command("create_log_key", "--witness", "--out", str(path),
                 "--name", "witness.example/w1")
    vkey = note.Signer.from_key(path.read_text()).verifier().to_key()
    key = log_services.witness_key_register(vkey=vkey, merchant=kit.merchant)
    log_services.witness_key_approve(witness_key=key, by=UserFactory(is_alliance_staff=True))
    return path


def _witness(live_server, key: Path, *extra: str) -> int:
    try:
        call_command("witness", "--url", live_server.url, "--key", str(key), *extra)
    except SystemExit as exit_info:
        return exit_info.code
    return 0


def _evidence(key: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(key.parent.glob("evidence-*.json"))]


def _erase_log() -> None:
    """What an operator rewriting history would do: drop the log and start it again."""
    for table in ("ledger_cosignature", "ledger_checkpoint", "ledger_lognode", "ledger_logleaf"):
        tamper(f"DELETE FROM {table}")


def test_the_witness_cosigns_a_growing_log_and_the_log_serves_it(
    live_server, kit, log_key, witness_key, capsys
):
    # given a log of three transactions
    for n in range(3):
        kit.issue(n + 1)
    log_services.log_anchor()

    # when the witness runs for the first time (it learns the log key from the log)
    assert _witness(live_server, witness_key) == 0

    # then it pinned the log key and cosigned checkpoint 3, which the log now serves
    state = json.loads((witness_key.parent / "w1.key.state.json").read_text())
    assert (state["log_key"], state["size"]) == (log_key, 3)
    assert Cosignature.objects.get().checkpoint.size == 3
    assert "trusting the log key on first use" in capsys.readouterr().out

    # and when the log grows, it proves consistency and cosigns again
    kit.issue(9)
    kit.issue(10)
    log_services.log_anchor()
    assert _witness(live_server, witness_key) == 0
    assert sorted(Cosignature.objects.values_list("checkpoint__size", flat=True)) == [3, 5]
    assert _evidence(witness_key) == []


def test_the_witness_refuses_a_rolled_back_log(live_server, kit, log_key, witness_key, capsys):
    # given the witness cosigned checkpoint 6
    for n in range(6):
        kit.issue(n + 1)
        if n == 2:
            log_services.log_anchor()
    log_services.log_anchor()
    assert _witness(live_server, witness_key, "--log-key", log_key) == 0

    # when the operator rolls the log back to checkpoint 3
    tamper("DELETE FROM ledger_cosignature")
    tamper("DELETE FROM ledger_checkpoint WHERE size > 3")
    tamper("DELETE FROM ledger_logleaf WHERE log_index >= 3")
    capsys.readouterr()

    # then the witness refuses, signs nothing, exits 2 and keeps the evidence
    assert _witness(live_server, witness_key) == 2
    assert "REFUSED: rolled back: tree size 3 is smaller than the 6" in capsys.readouterr().err
    assert not Cosignature.objects.exists()
    [evidence] = _evidence(witness_key)
    assert evidence["cosigned_checkpoint"].split("\n")[1] == "6"
    assert evidence["received_checkpoint"].split("\n")[1] == "3"
    # and its memory still holds the checkpoint it cosigned
    state = json.loads((witness_key.parent / "w1.key.state.json").read_text())
    assert state["size"] == 6


def test_the_witness_refuses_a_rewritten_log(live_server, kit, log_key, witness_key, capsys):
    # given the witness cosigned checkpoint 4
    ids = [kit.issue(n + 1) for n in range(4)]
    log_services.log_anchor()
    assert _witness(live_server, witness_key, "--log-key", log_key) == 0

    # when the operator edits an old transaction and rebuilds the log over it
    tamper("UPDATE ledger_posting SET amount = amount * 2 WHERE transaction_id = %s", [ids[1]])
    _erase_log()
    log_services.log_anchor()
    assert Checkpoint.objects.get().size == 4
    capsys.readouterr()

    # then at the same size the witness sees another root and refuses
    assert _witness(live_server, witness_key) == 2
    assert "rewritten: another root at the cosigned tree size 4" in capsys.readouterr().err

    # and once the rewritten log has grown past it, the consistency proof fails: refused again
    kit.issue(50)
    kit.issue(60)
    log_services.log_anchor()
    assert _witness(live_server, witness_key) == 2
    assert "does not extend the one cosigned at size 4" in capsys.readouterr().err
    assert not Cosignature.objects.exists()
    _first, second = _evidence(witness_key)
    assert second["consistency_proof"]
    assert second["received_checkpoint"].split("\n")[1] == "6"


def test_the_witness_refuses_a_checkpoint_not_signed_by_the_pinned_key(
    live_server, kit, log_key, witness_key, capsys
):
    # given a log whose checkpoint is signed by a key other than the one the witness pins
    kit.issue()
    log_services.log_anchor()
    other = note.generate_signer(log_helpers.ORIGIN)[1]

    # then the run fails (exit 1), with nothing cosigned and no evidence (nothing proven)
    assert _witness(live_server, witness_key, "--log-key", other) == 1
    assert "not validly signed by the log key" in capsys.readouterr().err
    assert not Cosignature.objects.exists()
    assert _evidence(witness_key) == []


def test_an_unapproved_witness_is_turned_away(live_server, kit, log_key, tmp_path, capsys):
    # given a witness whose key the alliance never approved
    key = tmp_path / "w2.key"
    call_command("create_log_key", "--witness", "--out", str(key), "--name", "w2.example/w")
    kit.issue()
    log_services.log_anchor()

    # then the log refuses its cosignature, and the witness says so
    assert _witness(live_server, key) == 1
    assert "unknown_witness" in capsys.readouterr().err


def test_the_witness_reports_an_unreachable_log(tmp_path, witness_key, capsys):
    assert _witness(type("S", (), {"url": "http://127.0.0.1:9"})(), witness_key) == 1
    assert "cannot reach" in capsys.readouterr().err
