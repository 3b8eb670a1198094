"""Errors of the transparency log, each with a stable code for the API's error shape."""

from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict, DomainError, NotFound


class LogKeyMissing(DomainError):
    """No signer key is configured; anchoring cannot sign checkpoints."""

    code = "log_key_missing"
    status = 503
    default_message = _("The log's signing key is not configured.")


class NoCheckpointYet(NotFound):
    code = "no_checkpoint_yet"
    default_message = _("The log has no checkpoint yet.")


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"
    default_message = _("There is no checkpoint of this tree size.")


class NotAnchoredYet(Conflict):
    code = "not_anchored_yet"
    default_message = _("This transaction is not in a signed checkpoint yet; try again in a "
                        "minute.")


class ProofRangeError(DomainError):
    code = "invalid_proof_range"
    default_message = _("No proof exists for these sizes.")


class LogInconsistent(Conflict):
    """The journal no longer produces the leaf the log holds: ``verify_ledger`` says more."""

    code = "log_inconsistent"
    default_message = _("The journal no longer matches the log for this transaction.")


class InvalidWitnessKey(DomainError):
    code = "invalid_witness_key"
    status = 422
    default_message = _("This is not a valid Ed25519 witness verifier key.")


class WitnessKeyExists(Conflict):
    code = "witness_key_exists"
    default_message = _("This witness key is already registered.")


class WitnessKeyState(Conflict):
    code = "witness_key_state"
    default_message = _("The witness key is not in a state that allows this.")


class UnknownWitness(DomainError):
    code = "unknown_witness"
    status = 403
    default_message = _("The cosignature is not by an approved witness key.")


class InvalidCosignature(DomainError):
    code = "invalid_cosignature"
    status = 422
    default_message = _("The cosignature does not verify for this checkpoint.")
