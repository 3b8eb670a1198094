"""Everything that writes about merchants: API keys, staff, deposits, departures, imports.

Services take keyword arguments, check the rules they guard, write, and return the model.
They raise ``alliance.errors`` (``DomainError`` and friends); pages show the message, the API
answers it in its error shape. Who may call them (an owner, staff) is checked by the page or
endpoint through ``alliance.permissions``; which merchant a row belongs to is checked here.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

from allauth.account.models import EmailAddress
from django.db import IntegrityError, transaction
from django.db.models import Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from alliance.emails import email_after_commit
from alliance.errors import Conflict, DomainError, NotFound, PermissionDenied
from alliance.parameters import parameter_get
from ledger.errors import InsufficientBalance
from ledger.models import Account, Asset
from ledger.services import (
    Leg,
    Posted,
    account_get_or_create,
    alliance_asset,
    asset_create_brand,
    event_record,
    issuance_account,
    transaction_post,
)

from .api_auth import KEY_PATTERN, KEY_PREFIX, key_hash
from .models import (
    ApiKey,
    DepositWatch,
    LeaveRequest,
    Merchant,
    StaffInvitation,
    StaffMembership,
    Store,
)
from .webhooks import webhook_deposit_low

ALLIANCE_CLIENT = "alliance"


def merchant_client(merchant: Merchant) -> str:
    """The ledger client of a merchant's own requests: its idempotency keys are its own."""
    return f"merchant:{merchant.pk}"


# --- joining -----------------------------------------------------------------------------------


def _unique_slug(name: str) -> str:
    base = slugify(name)[:40] or "merchant"
    slug, n = base, 1
    while Merchant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def merchant_accounts_open(*, merchant: Merchant, asset: Asset | None = None) -> None:
    """Open the ledger accounts a member works with: its brand points' issuance, its SHARED
    wallet and deposit, its share-value wallet."""
    if asset is not None:
        issuance_account(asset)
    for code, kind in (("SHARED", Account.Kind.WALLET), ("SHARED", Account.Kind.DEPOSIT),
                       ("SV", Account.Kind.WALLET)):
        account_get_or_create(asset=alliance_asset(code), kind=kind, merchant=merchant)


@transaction.atomic
def merchant_onboard(
    *, owner, name_zh: str, name_en: str, legal_name: str, licence_number: str | None,
    category: str, district, rebate_rate: Decimal, stores: list[dict], asset_code: str,
    asset_name_zh: str, asset_name_en: str, units_per_cny: Decimal,
    expiry_months: int | None, slug: str | None = None,
) -> Merchant:
    """A new member: the merchant, its stores, its brand point type, its ledger accounts and
    its owner. Called when staff approve an application (and by the demo seed)."""
    merchant = Merchant.objects.create(
        slug=slug or _unique_slug(name_en), name_zh=name_zh, name_en=name_en,
        legal_name=legal_name, licence_number=licence_number or None, category=category,
        district=district, rebate_rate=rebate_rate, status=Merchant.Status.ACTIVE,
    )
    Store.objects.bulk_create(Store(merchant=merchant, **store) for store in stores)
    asset = asset_create_brand(
        merchant=merchant, code=asset_code, name_zh=asset_name_zh, name_en=asset_name_en,
        units_per_cny=units_per_cny, expiry_months=expiry_months,
    )
    merchant_accounts_open(merchant=merchant, asset=asset)
    # A new member starts without a deposit; its owner learns that on the dashboard, and the
    # alerts start with the first fall after a top-up.
    DepositWatch.objects.create(merchant=merchant, level=DepositWatch.Level.BELOW_MINIMUM)
    if owner is not None:
        StaffMembership.objects.create(merchant=merchant, user=owner,
                                       role=StaffMembership.Role.OWNER)
    return merchant


def merchant_set_status(*, merchant: Merchant, status: str) -> Merchant:
    """Suspend or readmit a member (a council decision); a suspended merchant's keys and
    dashboard stop working until it is readmitted."""
    Merchant.objects.filter(pk=merchant.pk).update(status=status)
    merchant.status = status
    return merchant


def shared_allocate(*, merchant: Merchant, amount: int, idempotency_key: str,
                    metadata: dict | None = None) -> Posted:
    """Mint ``amount`` SHARED (minor units) from the alliance's issuance into the merchant's
    SHARED wallet: how SHARED reach a member (a council allocation)."""
    shared = alliance_asset("SHARED")
    wallet = account_get_or_create(asset=shared, kind=Account.Kind.WALLET, merchant=merchant)
    return transaction_post(
        kind="shared_allocation",
        legs=[Leg(issuance_account(shared), -amount), Leg(wallet, amount)],
        client=ALLIANCE_CLIENT, idempotency_key=idempotency_key,
        metadata={**(metadata or {}), "merchant": merchant.pk},
    )

# --- API keys ---------------------------------------------------------------------------------


class InvalidApiKeyRequest(DomainError):
    code = "invalid_api_key_request"


def api_key_new_raw() -> str:
    return f"{KEY_PREFIX}{secrets.token_hex(5)}_{secrets.token_hex(24)}"


def api_key_create(
    *, merchant: Merchant, name: str, scopes: list[str], created_by=None,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Make a key for ``merchant``'s systems and return it with the key itself, which is shown
    this once: only its hash is stored. ``raw_key`` is for the demo seed, whose key is derived
    so a rerun prints the same one."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidApiKeyRequest(_("Give the key a name of at most 80 characters."),
                                   details={"name": name[:80]})
    chosen = sorted(set(scopes or []))
    unknown = [scope for scope in chosen if scope not in ApiKey.Scope.values]
    if not chosen or unknown:
        raise InvalidApiKeyRequest(_("Choose at least one scope of: purchases, holds, vouchers."),
                                   details={"scopes": unknown or chosen})
    if raw_key is not None and not KEY_PATTERN.match(raw_key):
        raise InvalidApiKeyRequest(details={"raw_key": "malformed"})
    for _attempt in range(3):
        raw = raw_key or api_key_new_raw()
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    merchant=merchant, name=name, prefix=KEY_PATTERN.match(raw).group(1),
                    key_hash=key_hash(raw), scopes=chosen, created_by=created_by,
                )
            return api_key, raw
        except IntegrityError:
            # Two random 40-bit prefixes collided: draw again (a given raw key cannot).
            if raw_key is not None:
                raise
    raise RuntimeError("could not draw a unique API key prefix")


def api_key_revoke(*, api_key: ApiKey, revoked_by=None) -> ApiKey:
    """Revoke a key for good; revoking a revoked key changes nothing."""
    updated = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    if updated:
        api_key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return api_key


# --- staff -------------------------------------------------------------------------------------

INVITATION_VALID_FOR = timedelta(days=7)


class StaffConflict(Conflict):
    code = "staff_conflict"


class InvitationInvalid(Conflict):
    code = "invitation_invalid"
    default_message = _("This invitation is no longer valid.")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def staff_invite(
    *, merchant: Merchant, email: str, role: str, invited_by, site_url: str = ""
) -> StaffInvitation:
    """Invite ``email`` to the merchant's staff as ``role`` and mail the link. A new invitation
    to the same address replaces the open one."""
    email = (email or "").strip().lower()
    if role not in StaffMembership.Role.values:
        raise DomainError(_("Choose owner, manager or cashier."), code="invalid_role")
    if StaffMembership.objects.filter(merchant=merchant, user__email__iexact=email).exists():
        raise StaffConflict(_("%(email)s already works for this merchant.") % {"email": email})
    now = timezone.now()
    StaffInvitation.objects.filter(
        merchant=merchant, email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now)
    token = secrets.token_urlsafe(32)
    invitation = StaffInvitation.objects.create(
        merchant=merchant, email=email, role=role, token_hash=_token_hash(token),
        invited_by=invited_by, created_at=now, expires_at=now + INVITATION_VALID_FOR,
    )
    link = site_url.rstrip("/") + reverse("onboarding:invitation-accept", args=[token])
    email_after_commit(to=email, template="staff_invitation",
                       context={"invitation": invitation, "link": link,
                                "merchant": merchant, "role": invitation.get_role_display()})
    return invitation


def staff_invitation_for_token(token: str) -> StaffInvitation:
    invitation = (StaffInvitation.objects.select_related("merchant")
                  .filter(token_hash=_token_hash(token or "")).first())
    if invitation is None:
        raise NotFound(_("There is no such invitation."))
    return invitation


@transaction.atomic
def staff_invitation_accept(*, token: str, user) -> StaffMembership:
    """Join the merchant's staff. Only someone who has verified the invited address may
    accept, so a forwarded link cannot be used by another person."""
    invitation = staff_invitation_for_token(token)
    invitation = StaffInvitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.state != "pending":
        raise InvitationInvalid(details={"state": invitation.state})
    if invitation.merchant.status not in (Merchant.Status.ACTIVE, Merchant.Status.LEAVING):
        raise InvitationInvalid(details={"merchant": invitation.merchant.status})
    verified = EmailAddress.objects.filter(user=user, email__iexact=invitation.email,
                                           verified=True).exists()
    if not verified:
        raise PermissionDenied(
            _("This invitation is for %(email)s: sign in with that address, verified.")
            % {"email": invitation.email},
            code="invitation_other_address",
        )
    if StaffMembership.objects.filter(merchant=invitation.merchant, user=user).exists():
        raise StaffConflict(_("You already work for this merchant."))
    membership = StaffMembership.objects.create(merchant=invitation.merchant, user=user,
                                                role=invitation.role)
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def staff_invitation_revoke(*, invitation: StaffInvitation) -> StaffInvitation:
    StaffInvitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True,
                                   revoked_at__isnull=True).update(revoked_at=timezone.now())
    invitation.refresh_from_db()
    return invitation


def _other_owners(membership: StaffMembership) -> bool:
    return (StaffMembership.objects.filter(merchant_id=membership.merchant_id,
                                           role=StaffMembership.Role.OWNER)
            .exclude(pk=membership.pk).exists())


@transaction.atomic
def staff_role_change(*, membership: StaffMembership, role: str) -> StaffMembership:
    """Change a staff member's role; a merchant always keeps at least one owner."""
    if role not in StaffMembership.Role.values:
        raise DomainError(_("Choose owner, manager or cashier."), code="invalid_role")
    # Lock the merchant's owners so that two owners cannot demote each other at once.
    list(StaffMembership.objects.select_for_update()
         .filter(merchant_id=membership.merchant_id, role=StaffMembership.Role.OWNER)
         .order_by("pk"))
    membership.refresh_from_db()
    if (membership.role == StaffMembership.Role.OWNER and role != membership.role
            and not _other_owners(membership)):
        raise StaffConflict(_("A merchant needs at least one owner."), code="last_owner")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def staff_remove(*, membership: StaffMembership) -> None:
    list(StaffMembership.objects.select_for_update()
         .filter(merchant_id=membership.merchant_id, role=StaffMembership.Role.OWNER)
         .order_by("pk"))
    membership.refresh_from_db()
    if membership.role == StaffMembership.Role.OWNER and not _other_owners(membership):
        raise StaffConflict(_("A merchant needs at least one owner."), code="last_owner")
    membership.delete()


# --- deposit (SPEC §4.3) -----------------------------------------------------------------------


@dataclass(frozen=True)
class DepositStatus:
    """Where a merchant's deposit stands against the alliance's levels (minor units)."""

    balance: int
    wallet: int
    minimum: int
    warning: int
    level: str

    @property
    def shortfall(self) -> int:
        return max(self.minimum - self.balance, 0)


def deposit_levels(*, shared: Asset | None = None, parameters: dict | None = None
                   ) -> tuple[int, int]:
    """(minimum, warning level) in SHARED minor units, from the parameters in force (or
    ``parameters``, as ``parameters_current`` read them). The warning level is
    ``deposit_warning_ratio`` above the minimum, rounded down."""
    shared = shared or alliance_asset("SHARED")
    if parameters is None:
        parameters = {key: parameter_get(key)
                      for key in ("min_deposit_shared", "deposit_warning_ratio")}
    minimum = shared.to_minor(parameters["min_deposit_shared"])
    warning = int((Decimal(minimum) * (1 + parameters["deposit_warning_ratio"]))
                  .to_integral_value(rounding=ROUND_FLOOR))
    return minimum, warning


def _deposit_level(balance: int, minimum: int, warning: int) -> str:
    if balance < minimum:
        return DepositWatch.Level.BELOW_MINIMUM
    if balance < warning:
        return DepositWatch.Level.WARNING
    return DepositWatch.Level.OK


def deposit_status(merchant: Merchant) -> DepositStatus:
    shared = alliance_asset("SHARED")
    balances = dict(
        Account.objects.filter(asset=shared, merchant=merchant,
                               kind__in=[Account.Kind.WALLET, Account.Kind.DEPOSIT])
        .values_list("kind", "balance")
    )
    balance = balances.get(Account.Kind.DEPOSIT, 0)
    minimum, warning = deposit_levels(shared=shared)
    level = _deposit_level(balance, minimum, warning)
    return DepositStatus(balance, balances.get(Account.Kind.WALLET, 0), minimum, warning, level)


_LEVEL_ORDER = [DepositWatch.Level.OK, DepositWatch.Level.WARNING,
                DepositWatch.Level.BELOW_MINIMUM]


def _owner_emails(merchant: Merchant) -> list[str]:
    return [email for email in StaffMembership.objects.filter(
        merchant=merchant, role=StaffMembership.Role.OWNER
    ).values_list("user__email", flat=True) if email]


def deposit_level_watch(*, merchant: Merchant, shared: Asset, parameters: dict,
                        seen: tuple[int | None, str | None] | None = None) -> str:
    """``deposit_level_check`` after a purchase's burn, in one read while the level holds:
    the deposit's balance and the level remembered, compared without a lock (as the full
    check compares them before it locks). A changed or never remembered level runs the full
    check, which locks, remembers, mails and alerts. ``seen``: the balance and the level
    remembered, as the purchase's own statement returned them (no read at all)."""
    row = seen if seen is not None and seen[0] is not None else (
        Account.objects.filter(asset=shared, merchant=merchant, kind=Account.Kind.DEPOSIT)
        .annotate(watched=Subquery(DepositWatch.objects.filter(merchant=merchant)
                                   .values("level")[:1]))
        .values_list("balance", "watched").first())
    if row is not None and row[1] is not None:
        level = _deposit_level(row[0], *deposit_levels(shared=shared, parameters=parameters))
        if level == row[1]:
            return level
    return deposit_level_check(merchant=merchant)


@transaction.atomic
def deposit_level_check(*, merchant: Merchant) -> str:
    """Compare the deposit with the levels in force and remember the level. On a fall below
    the warning level or the minimum the owners are mailed and supervisors alerted, once per
    fall. Call it after anything that lowers a deposit (purchases burn from it); the periodic
    task ``merchants.tasks.deposit_levels_check`` catches the rest (a raised minimum)."""
    from alliance.models import Alert
    from alliance.services import alert_raise

    status = deposit_status(merchant)
    watch, _created = DepositWatch.objects.select_for_update().get_or_create(merchant=merchant)
    if watch.level == status.level:
        return status.level
    fell = _LEVEL_ORDER.index(status.level) > _LEVEL_ORDER.index(watch.level)
    watch.level = status.level
    watch.changed_at = timezone.now()
    watch.save(update_fields=["level", "changed_at"])
    if fell:
        shared = alliance_asset("SHARED")
        below = status.level == DepositWatch.Level.BELOW_MINIMUM
        alert_raise(
            kind=Alert.Kind.DEPOSIT_LOW, merchant=merchant,
            severity=Alert.Severity.CRITICAL if below else Alert.Severity.WARNING,
            key=f"deposit_low:{merchant.pk}:{status.level}:{watch.changed_at.isoformat()}",
            details={"balance": status.balance, "minimum": status.minimum,
                     "warning": status.warning, "level": status.level},
        )
        email_after_commit(
            to=_owner_emails(merchant), template="deposit_low",
            context={"merchant": merchant, "below_minimum": below,
                     "balance": shared.to_major(status.balance),
                     "minimum": shared.to_major(status.minimum),
                     "warning": shared.to_major(status.warning)},
        )
        # Recorded with the level it announces and sent after commit, so the merchant's
        # systems hear of each fall once, and never of a rolled-back one.
        webhook_deposit_low(merchant=merchant, status=status)
    return status.level


def _positive_minor(amount) -> int:
    if type(amount) is not int or amount <= 0:
        raise DomainError(_("Enter an amount greater than zero."), code="invalid_amount",
                          details={"amount": str(amount)})
    return amount


@transaction.atomic
def deposit_top_up(*, merchant: Merchant, amount: int, idempotency_key: str) -> Posted:
    """Move ``amount`` SHARED (minor units) from the merchant's wallet into its deposit. More
    than the wallet holds is refused (``insufficient_balance``) and nothing moves."""
    amount = _positive_minor(amount)
    if merchant.status != Merchant.Status.ACTIVE:
        raise Conflict(_("Only an active member tops up its deposit."), code="merchant_inactive")
    shared = alliance_asset("SHARED")
    wallet = account_get_or_create(asset=shared, kind=Account.Kind.WALLET, merchant=merchant)
    deposit = account_get_or_create(asset=shared, kind=Account.Kind.DEPOSIT, merchant=merchant)
    try:
        posted = transaction_post(
            kind="deposit_top_up", legs=[Leg(wallet, -amount), Leg(deposit, amount)],
            client=merchant_client(merchant), idempotency_key=idempotency_key,
            metadata={"merchant": merchant.pk},
        )
    except InsufficientBalance as exc:
        wallet.refresh_from_db(fields=["balance"])
        raise InsufficientBalance(
            _("Your SHARED wallet holds %(available)s; you asked to move %(amount)s.")
            % {"available": shared.to_major(wallet.balance), "amount": shared.to_major(amount)},
            details={**exc.details, "available": wallet.balance, "requested": amount},
        ) from None
    deposit_level_check(merchant=merchant)
    return posted


# --- leaving -----------------------------------------------------------------------------------


class LeaveState(Conflict):
    code = "leave_state"
    default_message = _("The request to leave is not in a state that allows this.")


@transaction.atomic
def merchant_leave_request(*, merchant: Merchant, by, reason: str = "") -> LeaveRequest:
    """The owner asks to leave the alliance and to have the deposit back. The merchant is
    LEAVING (it still trades) until staff decide."""
    merchant = Merchant.objects.select_for_update().get(pk=merchant.pk)
    if merchant.status != Merchant.Status.ACTIVE:
        raise LeaveState(_("Only an active member can ask to leave."),
                         details={"status": merchant.status})
    request = LeaveRequest(merchant=merchant, requested_by=by, reason=(reason or "").strip())
    request._history_user = by
    request.save()
    merchant_set_status(merchant=merchant, status=Merchant.Status.LEAVING)
    event_record(kind="event.merchant.leave_requested",
                 metadata={"merchant": merchant.pk, "leave_request": request.pk},
                 client=ALLIANCE_CLIENT, idempotency_key=f"leave:{request.pk}:requested")
    return request


def _locked_pending_leave(leave_request: LeaveRequest) -> LeaveRequest:
    leave_request = (LeaveRequest.objects.select_for_update().select_related("merchant")
                     .get(pk=leave_request.pk))
    if leave_request.status != LeaveRequest.Status.PENDING:
        raise LeaveState(
            _("This request to leave was already decided (it is “%(status)s”).")
            % {"status": leave_request.get_status_display()},
            details={"status": leave_request.status},
        )
    return leave_request


def _close_leave(leave_request: LeaveRequest, by, status: str, note: str) -> None:
    leave_request.status = status
    leave_request.decided_by = by
    leave_request.decided_at = timezone.now()
    leave_request.decision_note = (note or "").strip()
    leave_request._history_user = by
    leave_request._change_reason = status
    leave_request.save()


@transaction.atomic
def merchant_leave_approve(*, leave_request: LeaveRequest, by, note: str = "") -> LeaveRequest:
    """Staff let the merchant go: its whole deposit goes back to its SHARED wallet (the
    SHARED stay the merchant's, as on any other day; they are not burned), its API keys and
    open invitations are revoked and it is LEFT. Its brand points stay with their holders."""
    leave_request = _locked_pending_leave(leave_request)
    merchant = leave_request.merchant
    shared = alliance_asset("SHARED")
    wallet = account_get_or_create(asset=shared, kind=Account.Kind.WALLET, merchant=merchant)
    deposit = account_get_or_create(asset=shared, kind=Account.Kind.DEPOSIT, merchant=merchant)
    deposit.refresh_from_db(fields=["balance"])
    refunded = deposit.balance
    if refunded:
        posted = transaction_post(
            kind="deposit_refund", legs=[Leg(deposit, -refunded), Leg(wallet, refunded)],
            client=ALLIANCE_CLIENT, idempotency_key=f"leave:{leave_request.pk}:refund",
            metadata={"merchant": merchant.pk, "leave_request": leave_request.pk},
        )
        leave_request.refund_transaction_id = posted.transaction_id
    leave_request.refunded = refunded
    _close_leave(leave_request, by, LeaveRequest.Status.APPROVED, note)
    merchant_set_status(merchant=merchant, status=Merchant.Status.LEFT)
    now = timezone.now()
    ApiKey.objects.filter(merchant=merchant, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by)
    StaffInvitation.objects.filter(merchant=merchant, accepted_at__isnull=True,
                                   revoked_at__isnull=True).update(revoked_at=now)
    event_record(kind="event.merchant.left",
                 metadata={"merchant": merchant.pk, "leave_request": leave_request.pk,
                           "deposit_returned": refunded},
                 client=ALLIANCE_CLIENT, idempotency_key=f"leave:{leave_request.pk}:approved")
    email_after_commit(to=_owner_emails(merchant), template="leave_approved",
                       context={"merchant": merchant, "refunded": shared.to_major(refunded),
                                "note": leave_request.decision_note})
    return leave_request


@transaction.atomic
def merchant_leave_reject(*, leave_request: LeaveRequest, by, note: str) -> LeaveRequest:
    """Staff keep the merchant in (e.g. debts to settle first): it is ACTIVE again."""
    note = (note or "").strip()
    if not note:
        raise DomainError(_("Give the reason."), code="reason_required",
                          details={"field": "note"})
    leave_request = _locked_pending_leave(leave_request)
    _close_leave(leave_request, by, LeaveRequest.Status.REJECTED, note)
    merchant_set_status(merchant=leave_request.merchant, status=Merchant.Status.ACTIVE)
    event_record(kind="event.merchant.leave_rejected",
                 metadata={"merchant": leave_request.merchant_id,
                           "leave_request": leave_request.pk,
                           "reason_sha256": hashlib.sha256(note.encode()).hexdigest()},
                 client=ALLIANCE_CLIENT, idempotency_key=f"leave:{leave_request.pk}:rejected")
    email_after_commit(to=_owner_emails(leave_request.merchant), template="leave_rejected",
                       context={"merchant": leave_request.merchant, "note": note})
    return leave_request


@transaction.atomic
def merchant_leave_cancel(*, leave_request: LeaveRequest, by) -> LeaveRequest:
    """The owner changes their mind before staff decide: the merchant is ACTIVE again."""
    leave_request = _locked_pending_leave(leave_request)
    _close_leave(leave_request, by, LeaveRequest.Status.CANCELLED, "")
    merchant_set_status(merchant=leave_request.merchant, status=Merchant.Status.ACTIVE)
    event_record(kind="event.merchant.leave_cancelled",
                 metadata={"merchant": leave_request.merchant_id,
                           "leave_request": leave_request.pk},
                 client=ALLIANCE_CLIENT, idempotency_key=f"leave:{leave_request.pk}:cancelled")
    return leave_request
