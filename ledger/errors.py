"""Errors of the posting engine, each with a stable code for the API's error shape."""

from django.utils.translation import gettext_lazy as _

from alliance.errors import Conflict, DomainError


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    default_message = _("The balance is too low for this.")


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = _("This idempotency key was already used for a different request.")


class LedgerInvariantError(DomainError):
    """A request that would break a ledger invariant (unbalanced legs, a non-transferable
    asset moving between holders). A programming error in the caller, never a user's."""

    code = "ledger_invariant"
    status = 422
    default_message = _("The transaction breaks a ledger rule.")


class HoldStateError(Conflict):
    code = "hold_not_pending"
    default_message = _("The hold is no longer pending.")
