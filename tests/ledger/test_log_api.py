"""The public log API and the parties' receipts: formats, proofs that verify, every bad input
a 4xx in the error shape, and a downloaded receipt that ``python -m ledger.verify`` accepts
offline (and refuses with one byte changed)."""

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from ledger import log_services, merkle, note
from ledger.models import Cosignature, WitnessKey
from tests.factories import StaffMembershipFactory, UserFactory

from . import log_helpers
from .log_helpers import ORIGIN

pytestmark = pytest.mark.django_db
kit, log_key = log_helpers.kit, log_helpers.log_key  # fixtures
REPO = Path(settings.BASE_DIR)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def anchored(kit, log_key) -> list[int]:
    """Nine transactions in two checkpoints (sizes 6 and 9)."""
    ids = [kit.issue(100 + n, shopper=n % 2) for n in range(9)]
    log_services.log_anchor(batch_size=6)
    return ids


@pytest.fixture
def witness(kit):
    """An approved witness key of the kit's merchant: (signer, WitnessKey)."""
    skey, vkey = note.generate_signer("witness.example/w1", note.ALG_COSIGNATURE_V1)
    key = log_services.witness_key_register(vkey=vkey, merchant=kit.merchant)
    log_services.witness_key_approve(witness_key=key, by=UserFactory(is_alliance_staff=True))
    return note.Signer.from_key(skey), key


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert set(body) == {"code", "message", "details"}
    if code:
        assert body["code"] == code
    return body


def _b64s(items) -> list[bytes]:
    return [base64.b64decode(item) for item in items]


# --- checkpoints and keys ---------------------------------------------------------------------


def test_the_log_key_is_served_as_text(api, log_key):
    response = api.get("/api/v1/log/key")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode().strip() == log_key


def test_the_newest_checkpoint_is_a_signed_note_in_text(api, anchored, log_key):
    # when anyone, not signed in, fetches the newest checkpoint
    response = api.get("/api/v1/log/checkpoint", HTTP_ACCEPT="text/plain")

    # then it is a C2SP checkpoint at size 9 signed by the log key
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text, _sigs, _ = note.open_note(response.content.decode(), [note.Verifier.from_key(log_key)])
    checkpoint = note.parse_checkpoint(text)
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 9)


def test_a_checkpoint_by_size_and_the_json_list(api, anchored):
    assert api.get("/api/v1/log/checkpoints/6").content.decode().split("\n")[1] == "6"
    listing = api.get("/api/v1/log/checkpoints").json()
    assert [c["size"] for c in listing["results"]] == [9, 6]
    assert listing["results"][0]["previous_hash"]
    assert listing["results"][1]["previous_hash"] is None


def test_no_checkpoint_yet_is_a_404_in_the_error_shape(api, log_key):
    _error(api.get("/api/v1/log/checkpoint"), 404, "no_checkpoint_yet")
    _error(api.get("/api/v1/log/checkpoints/5"), 404, "checkpoint_not_found")


def test_a_text_endpoint_asked_for_json_still_answers_errors_in_json(api, log_key):
    response = api.get("/api/v1/log/checkpoints/7", HTTP_ACCEPT="text/plain")
    _error(response, 404, "checkpoint_not_found")
    assert response["Content-Type"] == "application/json"


# --- proofs -----------------------------------------------------------------------------------


def _root(api, size: int) -> bytes:
    body = api.get(f"/api/v1/log/checkpoints/{size}").content.decode()
    return note.parse_checkpoint(note.split_note(body)[0]).root_hash


def test_inclusion_proofs_verify_against_the_signed_roots(api, anchored):
    for size in (6, 9):
        root = _root(api, size)
        for index in range(size):
            body = api.get("/api/v1/log/proof/inclusion", {"index": index, "size": size}).json()
            assert (body["index"], body["tree_size"]) == (index, size)
            merkle.verify_inclusion(base64.b64decode(body["leaf_hash"]), index, size,
                                    _b64s(body["proof"]), root)


def test_consistency_proofs_verify_between_checkpoints(api, anchored):
    body = api.get("/api/v1/log/proof/consistency", {"first": 6, "second": 9}).json()
    merkle.verify_consistency(6, 9, _b64s(body["proof"]), _root(api, 6), _root(api, 9))
    same = api.get("/api/v1/log/proof/consistency", {"first": 9, "second": 9}).json()
    assert same["proof"] == []


@pytest.mark.parametrize("query", [
    {}, {"index": 0}, {"size": 3}, {"index": "x", "size": 3}, {"index": -1, "size": 3},
    {"index": 3, "size": 3}, {"index": 0, "size": 10}, {"index": 0, "size": 0},
    {"index": 0, "size": 2**70}, {"index": "1e3", "size": 9},
])
def test_bad_inclusion_queries_are_4xx(api, anchored, query):
    response = api.get("/api/v1/log/proof/inclusion", query)
    assert 400 <= response.status_code < 500
    _error(response, response.status_code)


@pytest.mark.parametrize("query", [
    {}, {"first": 0, "second": 9}, {"first": 5, "second": 4}, {"first": 1, "second": 10},
    {"first": "a", "second": 9}, {"first": 1, "second": 2**64},
])
def test_bad_consistency_queries_are_4xx(api, anchored, query):
    response = api.get("/api/v1/log/proof/consistency", query)
    _error(response, 400)


# --- cosignatures -----------------------------------------------------------------------------


def _cosign(api, size: int, signer: note.Signer, when: int | None = None):
    body = api.get(f"/api/v1/log/checkpoints/{size}").content.decode()
    text = note.split_note(body)[0]
    line = note.cosign(text, signer, when if when is not None else int(time.time()))
    return api.post("/api/v1/log/cosignatures", {"checkpoint_size": size, "cosignature": line},
                    format="json"), line


def test_an_approved_witness_cosignature_is_kept_and_served(api, anchored, witness, log_key):
    signer, key = witness

    # when the witness hands in its cosignature, twice
    first, line = _cosign(api, 9, signer)
    again, _ = _cosign(api, 9, signer)

    # then it is kept once and served with the checkpoint
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert Cosignature.objects.count() == 1
    served = api.get("/api/v1/log/checkpoint").content.decode()
    assert served.endswith(line)
    _text, signatures, _ = note.open_note(
        served, [note.Verifier.from_key(log_key), note.Verifier.from_key(key.vkey)]
    )
    assert len(signatures) == 2


def test_cosignatures_from_unknown_revoked_or_pending_keys_are_refused(api, anchored, witness):
    signer, key = witness
    stranger = note.Signer.from_key(
        note.generate_signer("stranger.example/w", note.ALG_COSIGNATURE_V1)[0]
    )
    _error(_cosign(api, 9, stranger)[0], 403, "unknown_witness")

    log_services.witness_key_revoke(witness_key=key, by=None)
    _error(_cosign(api, 9, signer)[0], 403, "unknown_witness")


def test_a_cosignature_over_another_checkpoint_or_from_the_future_is_refused(
    api, anchored, witness
):
    signer, _key = witness
    # a valid line for checkpoint 6 handed in as checkpoint 9's
    _response, line_for_6 = _cosign(api, 6, signer)
    response = api.post("/api/v1/log/cosignatures",
                        {"checkpoint_size": 9, "cosignature": line_for_6}, format="json")
    _error(response, 422, "invalid_cosignature")
    # dated a day ahead
    _error(_cosign(api, 9, signer, int(time.time()) + 86400)[0], 422, "invalid_cosignature")


@pytest.mark.parametrize("body", [
    {}, {"checkpoint_size": 9}, {"cosignature": "x"},
    {"checkpoint_size": "nine", "cosignature": "\u2014 a AAAA"},
    {"checkpoint_size": 9, "cosignature": "not a signature line"},
    {"checkpoint_size": 9, "cosignature": "\u2014 w %%%"},
    {"checkpoint_size": 9, "cosignature": "\u2014 w AAAAAAAA\n\u2014 w AAAAAAAA"},
    {"checkpoint_size": 99, "cosignature": "\u2014 w AAAAAAAA"},
])
def test_malformed_cosignatures_are_4xx(api, anchored, body):
    response = api.post("/api/v1/log/cosignatures", body, format="json")
    assert 400 <= response.status_code < 500
    _error(response, response.status_code)


def test_cosignatures_need_no_login_and_no_csrf_token(anchored, witness):
    # a browser session without a CSRF token is no obstacle: the signature is the credential
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(UserFactory())
    signer, _key = witness
    response, _line = _cosign(client, 9, signer)
    assert response.status_code == 201


# --- witness keys -----------------------------------------------------------------------------


def test_a_member_registers_a_witness_key_and_staff_approve_it(api, kit, log_key):
    _skey, vkey = note.generate_signer("member.example/w", note.ALG_COSIGNATURE_V1)
    # a merchant's owner registers for the merchant
    api.force_login(kit.owner)
    created = api.post("/api/v1/log/witnesses", {"vkey": vkey, "holder": "merchant"},
                       format="json")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "pending"
    _error(api.post("/api/v1/log/witnesses", {"vkey": vkey}, format="json"), 409,
           "witness_key_exists")
    _error(api.post("/api/v1/log/witnesses", {"vkey": "nonsense"}, format="json"), 422,
           "invalid_witness_key")
    long_name = note.generate_signer("w" * 200, note.ALG_COSIGNATURE_V1)[1]
    _error(api.post("/api/v1/log/witnesses", {"vkey": long_name}, format="json"), 422,
           "invalid_witness_key")
    assert api.get("/api/v1/log/witnesses").json() == []

    # a shopper may not approve; alliance staff may
    pk = created.json()["id"]
    assert api.post(f"/api/v1/log/witnesses/{pk}/approve").status_code == 403
    api.force_login(UserFactory(is_alliance_staff=True))
    approved = api.post(f"/api/v1/log/witnesses/{pk}/approve")
    assert approved.json()["status"] == "approved"
    assert [k["vkey"] for k in APIClient().get("/api/v1/log/witnesses").json()] == [vkey]
    _error(api.post("/api/v1/log/witnesses/999999/approve"), 404)
    revoked = api.post(f"/api/v1/log/witnesses/{pk}/revoke")
    assert revoked.json()["status"] == "revoked"
    _error(api.post(f"/api/v1/log/witnesses/{pk}/approve"), 409, "witness_key_state")


def test_registering_needs_a_login_and_ownership_for_a_merchant(api, kit):
    _skey, vkey = note.generate_signer("member.example/w2", note.ALG_COSIGNATURE_V1)
    anonymous = api.post("/api/v1/log/witnesses", {"vkey": vkey}, format="json")
    _error(anonymous, anonymous.status_code, "not_authenticated")
    api.force_login(kit.shoppers[0])
    _error(api.post("/api/v1/log/witnesses", {"vkey": vkey, "holder": "merchant"},
                    format="json"), 403)
    mine = api.post("/api/v1/log/witnesses", {"vkey": vkey}, format="json")
    assert mine.status_code == 201
    assert WitnessKey.objects.get().user == kit.shoppers[0]


# --- receipts ---------------------------------------------------------------------------------


def _verify_offline(
    tmp_path: Path, receipt: dict | bytes, *keys: str
) -> subprocess.CompletedProcess:
    path = tmp_path / "receipt.json"
    path.write_bytes(receipt if isinstance(receipt, bytes) else json.dumps(receipt).encode())
    args = [sys.executable, "-m", "ledger.verify", str(path), "--log-key", keys[0]]
    for witness_key in keys[1:]:
        args += ["--witness-key", witness_key]
    if keys[1:]:
        args += ["--min-witnesses", str(len(keys) - 1)]
    # The verifier needs no Django: run it with no settings at all.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=60)


def test_a_partys_receipt_verifies_offline_and_one_changed_byte_fails(
    api, anchored, kit, log_key, tmp_path
):
    # given the shopper of transaction #4 signed in
    api.force_login(kit.shoppers[0])

    # when they download its receipt
    response = api.get(f"/api/v1/transactions/{anchored[4]}/receipt", {"download": "1"})

    # then it is an attachment in the alliance-receipt/v1 format
    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == (
        f'attachment; filename="receipt-{anchored[4]}.json"'
    )
    receipt = response.json()
    assert set(receipt) == {"format", "origin", "index", "tree_size", "leaf",
                            "inclusion_proof", "checkpoint"}
    assert (receipt["format"], receipt["index"], receipt["tree_size"]) == (
        "alliance-receipt/v1", 4, 9
    )
    # and the standalone verifier accepts it, with no Django around
    raw = response.content
    ok = _verify_offline(tmp_path, raw, log_key)
    assert ok.returncode == 0, ok.stderr
    assert f"transaction {anchored[4]} (issue) is leaf 4" in ok.stdout

    # and any single changed byte of what the receipt commits to makes it fail
    leaf = bytearray(base64.b64decode(receipt["leaf"]))
    leaf[leaf.index(b'"104"') + 1] = ord("9")
    tampered_leaf = {**receipt, "leaf": base64.b64encode(bytes(leaf)).decode()}
    proof = _b64s(receipt["inclusion_proof"])
    proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    tampered_proof = {**receipt, "inclusion_proof": [base64.b64encode(p).decode() for p in proof]}
    note_text = receipt["checkpoint"].replace("\n9\n", "\n8\n", 1)
    for tampered in (tampered_leaf, tampered_proof, {**receipt, "index": 3},
                     {**receipt, "checkpoint": note_text}):
        failed = _verify_offline(tmp_path, tampered, log_key)
        assert failed.returncode == 1, tampered
        assert failed.stderr.startswith("FAIL:")
    # one byte of the file itself
    position = raw.index(b'"index":') + len(b'"index":')
    flipped = raw[:position] + b"5" + raw[position + 1:]
    assert _verify_offline(tmp_path, flipped, log_key).returncode == 1


def test_a_receipt_prefers_the_newest_cosigned_checkpoint(api, anchored, kit, witness, log_key,
                                                          tmp_path):
    # given checkpoint 6 cosigned by the approved witness, checkpoint 9 not yet
    signer, key = witness
    _cosign(api, 6, signer)

    # when the shopper fetches the receipt of an early transaction
    api.force_login(kit.shoppers[0])
    receipt = api.get(f"/api/v1/transactions/{anchored[2]}/receipt").json()

    # then it proves inclusion in the witnessed checkpoint, and verifies with the witness
    assert receipt["tree_size"] == 6
    result = _verify_offline(tmp_path, receipt, log_key, key.vkey)
    assert result.returncode == 0, result.stderr
    assert "witness.example/w1 cosigned" in result.stdout
    # asked for explicitly, the newest checkpoint
    assert api.get(f"/api/v1/transactions/{anchored[2]}/receipt",
                   {"size": 9}).json()["tree_size"] == 9


def test_receipts_are_for_the_parties_only(api, anchored, kit):
    url = f"/api/v1/transactions/{anchored[1]}/receipt"  # shopper 1's transaction
    _error(api.get(url), api.get(url).status_code, "not_authenticated")  # anonymous
    api.force_login(kit.shoppers[0])
    _error(api.get(url), 403, "permission_denied")  # another shopper
    other_merchant = StaffMembershipFactory().user
    api.force_login(other_merchant)
    _error(api.get(url), 403)
    for party in (kit.shoppers[1], kit.owner, UserFactory(is_alliance_staff=True),
                  UserFactory(is_supervisor=True)):
        api.force_login(party)
        assert api.get(url).status_code == 200


def test_a_merchants_system_fetches_the_receipts_of_its_transactions_with_its_key(
        api, anchored, kit):
    from merchants.services import api_key_create, api_key_revoke

    # given an API key of the merchant whose points the transaction issued, and another
    # merchant's key (any scope: a receipt moves nothing)
    key, raw = api_key_create(merchant=kit.merchant, name="till", scopes=["purchases"])
    _other, other_raw = api_key_create(merchant=StaffMembershipFactory().merchant,
                                       name="till", scopes=["purchases", "vouchers"])
    url = f"/api/v1/transactions/{anchored[1]}/receipt"

    # when the party's system asks, it gets the receipt, which verifies
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    response = api.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["format"] == "alliance-receipt/v1"

    # when another merchant's system asks, it is refused in the error shape
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {other_raw}")
    body = _error(api.get(url), 403, "permission_denied")
    assert body["details"] == {"transaction": anchored[1]}

    # and a revoked key of the party is no key at all
    api_key_revoke(api_key=key)
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    _error(api.get(url), 401, "api_key_revoked")


def test_a_receipt_before_anchoring_is_a_409_not_anchored_yet(api, anchored, kit):
    late = kit.issue(5)
    api.force_login(kit.shoppers[0])
    _error(api.get(f"/api/v1/transactions/{late}/receipt"), 409, "not_anchored_yet")
    log_services.log_anchor()
    assert api.get(f"/api/v1/transactions/{late}/receipt").status_code == 200


@pytest.mark.parametrize("query", [{"size": "x"}, {"size": 0}, {"size": 4}, {"size": 7},
                                   {"size": 2**64}])
def test_bad_receipt_queries_are_4xx(api, anchored, kit, query):
    api.force_login(kit.owner)
    response = api.get(f"/api/v1/transactions/{anchored[5]}/receipt", query)
    assert 400 <= response.status_code < 500
    _error(response, response.status_code)


def test_unknown_or_absurd_transaction_ids_are_404(api, anchored, kit):
    api.force_login(kit.owner)
    _error(api.get("/api/v1/transactions/999999/receipt"), 404)
    _error(api.get(f"/api/v1/transactions/{2**70}/receipt"), 404)


def test_the_schema_documents_the_log_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/log/checkpoint", "/api/v1/log/checkpoints/{size}",
                 "/api/v1/log/proof/inclusion", "/api/v1/log/proof/consistency",
                 "/api/v1/log/cosignatures", "/api/v1/log/key",
                 "/api/v1/transactions/{id}/receipt"):
        assert path in schema["paths"], path
