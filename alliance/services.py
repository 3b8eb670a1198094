"""Everything that writes for the alliance: membership applications, governance proposals and
the supervisors' alerts.

Decisions are journalled in the ledger as events (``ledger.services.event_record``) whose
metadata carries ids, codes and hashes only, never personal data: the journal is public.
"""

import hashlib
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ledger.models import Account, Asset, Posting
from ledger.services import alliance_asset, event_record
from merchants.models import Merchant

from .emails import email_after_commit
from .errors import Conflict, DomainError, NotFound, PermissionDenied
from .models import (
    Alert,
    ApplicationStore,
    MerchantApplication,
    Proposal,
    ProposalApproval,
    User,
)
from .parameters import parameter_get, parameter_set, parameter_validate
from .uploads import licence_file_check

ALLIANCE_CLIENT = "alliance"

# --- journal -----------------------------------------------------------------------------------


def _journal(what: str, metadata: dict, key: str) -> None:
    """Record a decision as the ledger event ``event.<what>`` (no personal data)."""
    event_record(kind=f"event.{what}", metadata=metadata, client=ALLIANCE_CLIENT,
                 idempotency_key=key)


def _digest(text: str) -> str:
    """A reason's SHA-256: the journal proves which words were kept without publishing them."""
    return hashlib.sha256(text.encode()).hexdigest()


# --- applications ------------------------------------------------------------------------------


class ApplicationIncomplete(DomainError):
    code = "application_incomplete"
    default_message = _("The application is missing information.")


class ApplicationState(Conflict):
    code = "application_state"
    default_message = _("The application is not in a state that allows this.")


class LicenceTaken(Conflict):
    code = "licence_taken"
    default_message = _("This business licence number is already registered with the alliance.")


class AssetCodeTaken(Conflict):
    code = "asset_code_taken"
    default_message = _("This point code is already used by another point type.")


APPLICATION_FIELDS = (
    "name_zh", "name_en", "legal_name", "licence_number", "contact_name", "contact_phone",
    "contact_email", "category", "district", "rebate_rate", "asset_code", "asset_name_zh",
    "asset_name_en", "units_per_cny", "expiry_months", "applicant_reply",
)
STORE_FIELDS = ("name", "address", "latitude", "longitude", "hours")
# Required before submission; a draft may be saved half filled.
REQUIRED_TO_SUBMIT = tuple(f for f in APPLICATION_FIELDS
                           if f not in ("expiry_months", "applicant_reply"))


def _save_with_history(application: MerchantApplication, by, reason: str = "") -> None:
    application._history_user = by
    application._change_reason = reason[:100]
    application.save()


def _licence_conflict(licence_number: str, *, excluding: int | None) -> bool:
    if Merchant.objects.filter(licence_number__iexact=licence_number).exists():
        return True
    others = MerchantApplication.objects.filter(
        licence_number__iexact=licence_number,
        status__in=[MerchantApplication.Status.SUBMITTED,
                    MerchantApplication.Status.CHANGES_REQUESTED,
                    MerchantApplication.Status.APPROVED],
    )
    if excluding is not None:
        others = others.exclude(pk=excluding)
    return others.exists()


def _asset_code_conflict(code: str, *, excluding: int | None) -> bool:
    if Asset.objects.filter(code__iexact=code).exists():
        return True
    others = MerchantApplication.objects.filter(
        asset_code__iexact=code,
        status__in=[MerchantApplication.Status.SUBMITTED,
                    MerchantApplication.Status.CHANGES_REQUESTED],
    )
    if excluding is not None:
        others = others.exclude(pk=excluding)
    return others.exists()


@transaction.atomic
def application_save(
    *, applicant: User, fields: dict, stores: list[dict],
    application: MerchantApplication | None = None,
    licence_image: UploadedFile | None = None,
) -> MerchantApplication:
    """Create or update the applicant's draft (or the application sent back for changes).

    ``fields`` are cleaned values of ``APPLICATION_FIELDS``; ``stores`` replaces the store
    list. A duplicate licence number is refused already here, so the applicant learns it
    before filling in the rest."""
    if application is None:
        application = MerchantApplication(applicant=applicant)
    else:
        application = MerchantApplication.objects.select_for_update().get(pk=application.pk)
        if application.applicant_id != applicant.pk:
            raise NotFound()
        if not application.editable:
            raise ApplicationState(_("Only a draft or an application sent back for changes "
                                     "can be edited."))
    for name in APPLICATION_FIELDS:
        if name in fields:
            setattr(application, name, fields[name])
    application.licence_number = (application.licence_number or "").strip().upper()
    application.asset_code = (application.asset_code or "").strip().upper()
    if application.licence_number and _licence_conflict(application.licence_number,
                                                        excluding=application.pk):
        raise LicenceTaken(details={"field": "licence_number"})
    if licence_image is not None:
        file_type = licence_file_check(licence_image)
        licence_image.name = f"licence{file_type.extension}"
        application.licence_image = licence_image
    _save_with_history(application, applicant, "saved")
    application.stores.all().delete()
    ApplicationStore.objects.bulk_create(
        ApplicationStore(application=application, **{k: store.get(k, "") for k in STORE_FIELDS})
        for store in stores
    )
    return application


@transaction.atomic
def application_submit(*, application: MerchantApplication, by: User) -> MerchantApplication:
    """Send a draft (or the answer to a change request) to the alliance's staff."""
    application = MerchantApplication.objects.select_for_update().get(pk=application.pk)
    if application.applicant_id != by.pk:
        raise NotFound()
    if not application.editable:
        raise ApplicationState(_("This application has already been sent."))
    missing = [name for name in REQUIRED_TO_SUBMIT
               if getattr(application, name if name != "district" else "district_id") in
               (None, "")]
    if not application.licence_image:
        missing.append("licence_image")
    if not application.stores.exists():
        missing.append("stores")
    if missing:
        raise ApplicationIncomplete(
            _("Fill in every field, upload the licence image and add at least one store."),
            details={"missing": missing},
        )
    if _licence_conflict(application.licence_number, excluding=application.pk):
        raise LicenceTaken(details={"field": "licence_number"})
    if _asset_code_conflict(application.asset_code, excluding=application.pk):
        raise AssetCodeTaken(details={"field": "asset_code"})
    resubmission = application.status == MerchantApplication.Status.CHANGES_REQUESTED
    application.status = MerchantApplication.Status.SUBMITTED
    application.submitted_at = timezone.now()
    _save_with_history(application, by, "resubmitted" if resubmission else "submitted")
    _journal("application.submitted",
             {"application": application.pk, "resubmission": resubmission},
             f"application-history:{application.history.latest().history_id}")
    return application


@transaction.atomic
def application_withdraw(*, application: MerchantApplication, by: User) -> MerchantApplication:
    application = MerchantApplication.objects.select_for_update().get(pk=application.pk)
    if application.applicant_id != by.pk:
        raise NotFound()
    if application.status not in MerchantApplication.OPEN:
        raise ApplicationState(_("A decided application cannot be withdrawn."))
    application.status = MerchantApplication.Status.WITHDRAWN
    _save_with_history(application, by, "withdrawn")
    _journal("application.withdrawn", {"application": application.pk},
             f"application-history:{application.history.latest().history_id}")
    return application


def _decide(application: MerchantApplication, by: User, status: str, message: str,
            what: str, metadata: dict) -> MerchantApplication:
    application.status = status
    application.staff_message = message
    application.decided_at = timezone.now()
    application.decided_by = by
    _save_with_history(application, by, what)
    # Transaction kinds hold 32 characters: "event.application.changes" says it.
    _journal(f"application.{what.removesuffix('_requested')}",
             {"application": application.pk, **metadata,
              **({"reason_sha256": _digest(message)} if message else {})},
             f"application-history:{application.history.latest().history_id}")
    email_after_commit(
        to=[application.contact_email, application.applicant.email],
        template=f"application_{what}",
        context={"application": application, "message": message},
    )
    return application


def _locked_submitted(application: MerchantApplication) -> MerchantApplication:
    application = (MerchantApplication.objects.select_for_update()
                   .select_related("applicant", "district").get(pk=application.pk))
    if application.status != MerchantApplication.Status.SUBMITTED:
        raise ApplicationState(
            _("This application was already decided or is not waiting for review "
              "(it is “%(status)s”).") % {"status": application.get_status_display()},
            details={"status": application.status},
        )
    return application


def _required_text(text: str, what) -> str:
    text = (text or "").strip()
    if not text:
        raise DomainError(what, code="reason_required", details={"field": "message"})
    return text


@transaction.atomic
def application_request_changes(
    *, application: MerchantApplication, by: User, message: str
) -> MerchantApplication:
    """Send a submitted application back to its applicant with what to change."""
    message = _required_text(message, _("Say what the applicant should change."))
    application = _locked_submitted(application)
    return _decide(application, by, MerchantApplication.Status.CHANGES_REQUESTED, message,
                   "changes_requested", {})


@transaction.atomic
def application_reject(
    *, application: MerchantApplication, by: User, reason: str
) -> MerchantApplication:
    reason = _required_text(reason, _("Give the reason for the rejection."))
    application = _locked_submitted(application)
    return _decide(application, by, MerchantApplication.Status.REJECTED, reason, "rejected", {})


@transaction.atomic
def application_approve(*, application: MerchantApplication, by: User) -> MerchantApplication:
    """Admit the applicant: create the merchant, its stores, its brand point type and ledger
    accounts, and make the applicant its owner. Approving twice is refused (the row is locked
    and must still be SUBMITTED)."""
    from merchants.services import merchant_onboard

    application = _locked_submitted(application)
    if _licence_conflict(application.licence_number, excluding=application.pk):
        raise LicenceTaken(details={"field": "licence_number"})
    if Asset.objects.filter(code__iexact=application.asset_code).exists():
        raise AssetCodeTaken(details={"field": "asset_code"})
    merchant = merchant_onboard(
        owner=application.applicant,
        name_zh=application.name_zh, name_en=application.name_en,
        legal_name=application.legal_name, licence_number=application.licence_number,
        category=application.category, district=application.district,
        rebate_rate=application.rebate_rate,
        stores=[{k: getattr(s, k) for k in STORE_FIELDS} for s in application.stores.all()],
        asset_code=application.asset_code, asset_name_zh=application.asset_name_zh,
        asset_name_en=application.asset_name_en, units_per_cny=application.units_per_cny,
        expiry_months=application.expiry_months,
    )
    application.merchant = merchant
    return _decide(application, by, MerchantApplication.Status.APPROVED, "", "approved",
                   {"merchant": merchant.pk, "asset": application.asset_code})


# --- governance --------------------------------------------------------------------------------


class ProposalInvalid(DomainError):
    code = "invalid_proposal"
    default_message = _("The proposal is not valid.")


class ProposalClosed(Conflict):
    code = "proposal_closed"
    default_message = _("This proposal is closed: it can no longer be approved.")


class AlreadyApproved(Conflict):
    code = "already_approved"
    default_message = _("You have already approved this proposal.")


def _merchant_for(payload: dict, statuses: tuple[str, ...]) -> Merchant:
    try:
        merchant = Merchant.objects.get(pk=int(payload.get("merchant")))
    except (TypeError, ValueError, Merchant.DoesNotExist):
        raise ProposalInvalid(_("Choose a merchant."), details={"merchant": "unknown"}) from None
    if merchant.status not in statuses:
        raise ProposalInvalid(
            _("%(merchant)s is %(status)s.") % {"merchant": merchant.name_en,
                                                "status": merchant.get_status_display()},
            details={"merchant": merchant.pk, "status": merchant.status},
        )
    return merchant


def _shared_minor(amount) -> int:
    shared = alliance_asset("SHARED")
    try:
        number = Decimal(str(amount).strip())
        if not number.is_finite() or number <= 0:
            raise InvalidOperation
        return shared.to_minor(number)
    except (InvalidOperation, ValueError):
        raise ProposalInvalid(
            _("Enter a positive amount of SHARED with at most two decimal places."),
            details={"amount": str(amount)},
        ) from None


def proposal_payload_clean(kind: str, data: dict) -> tuple[dict, Merchant | None]:
    """The normalised payload of a proposal of ``kind`` and the merchant it concerns, or
    ``ProposalInvalid`` naming what is wrong. Checked when proposed and again on execution."""
    if kind == Proposal.Kind.SET_PARAMETER:
        key = str(data.get("key", ""))
        value = parameter_validate(key, data.get("value", ""))
        return {"key": key, "value": f"{value.normalize():f}"}, None
    if kind == Proposal.Kind.ALLOCATE_SHARED:
        merchant = _merchant_for(data, (Merchant.Status.ACTIVE,))
        # A stored payload carries minor units already (re-checked when executed).
        minor = data.get("amount_minor")
        if not (type(minor) is int and minor > 0):
            minor = _shared_minor(data.get("amount", ""))
        return {"merchant": merchant.pk, "amount_minor": minor}, merchant
    if kind == Proposal.Kind.SUSPEND_MERCHANT:
        merchant = _merchant_for(data, (Merchant.Status.ACTIVE,))
        return {"merchant": merchant.pk}, merchant
    if kind == Proposal.Kind.READMIT_MERCHANT:
        merchant = _merchant_for(data, (Merchant.Status.SUSPENDED,))
        return {"merchant": merchant.pk}, merchant
    if kind == Proposal.Kind.ADMIT_WITNESS_KEY:
        from ledger.models import WitnessKey

        try:
            witness_key = WitnessKey.objects.get(pk=int(data.get("witness_key")))
        except (TypeError, ValueError, WitnessKey.DoesNotExist):
            raise ProposalInvalid(_("Choose a registered witness key."),
                                  details={"witness_key": "unknown"}) from None
        if witness_key.status != WitnessKey.Status.PENDING:
            raise ProposalInvalid(_("This witness key is not waiting for admission."),
                                  details={"witness_key": witness_key.pk,
                                           "status": witness_key.status})
        return {"witness_key": witness_key.pk}, witness_key.merchant
    raise ProposalInvalid(details={"kind": kind})


def council_size() -> int:
    return User.objects.filter(is_council_member=True, is_active=True).count()


@transaction.atomic
def proposal_create(*, kind: str, data: dict, proposed_by: User, reason: str = "") -> Proposal:
    """Put a proposal to the council. It needs ``council_threshold`` approvals (as in force
    now); a council smaller than that could never carry it, so it is refused."""
    payload, merchant = proposal_payload_clean(kind, data)
    threshold = int(parameter_get("council_threshold"))
    if council_size() < threshold:
        raise Conflict(
            _("The council has fewer members than the %(m)d approvals a proposal needs.")
            % {"m": threshold}, code="council_too_small",
        )
    proposal = Proposal.objects.create(
        kind=kind, payload=payload, merchant=merchant, reason=(reason or "").strip(),
        proposed_by=proposed_by, threshold=threshold,
    )
    _journal("proposal.created",
             {"proposal": proposal.pk, "kind": kind, "payload": payload, "threshold": threshold},
             f"proposal:{proposal.pk}:created")
    return proposal


def _execute(proposal: Proposal, member: User) -> dict:
    from merchants.services import merchant_set_status, shared_allocate

    payload, merchant = proposal_payload_clean(proposal.kind, proposal.payload)
    if proposal.kind == Proposal.Kind.SET_PARAMETER:
        change = parameter_set(key=payload["key"], value=payload["value"], changed_by=member,
                               proposal=proposal)
        return {"key": change.key, "old": f"{change.old_value.normalize():f}",
                "new": f"{change.new_value.normalize():f}"}
    if proposal.kind == Proposal.Kind.ALLOCATE_SHARED:
        posted = shared_allocate(merchant=merchant, amount=payload["amount_minor"],
                                 idempotency_key=f"proposal:{proposal.pk}",
                                 metadata={"proposal": proposal.pk})
        return {"transaction": posted.transaction_id}
    if proposal.kind == Proposal.Kind.SUSPEND_MERCHANT:
        merchant_set_status(merchant=merchant, status=Merchant.Status.SUSPENDED)
        return {"merchant": merchant.pk, "status": Merchant.Status.SUSPENDED}
    if proposal.kind == Proposal.Kind.READMIT_MERCHANT:
        merchant_set_status(merchant=merchant, status=Merchant.Status.ACTIVE)
        return {"merchant": merchant.pk, "status": Merchant.Status.ACTIVE}
    if proposal.kind == Proposal.Kind.ADMIT_WITNESS_KEY:
        from ledger.log_services import witness_key_approve
        from ledger.models import WitnessKey

        witness_key = WitnessKey.objects.get(pk=payload["witness_key"])
        witness_key_approve(witness_key=witness_key, by=member)
        return {"witness_key": witness_key.pk}
    raise ProposalInvalid(details={"kind": proposal.kind})


@transaction.atomic
def proposal_approve(*, proposal: Proposal, member: User) -> Proposal:
    """A council member's approval. The approval that reaches the threshold executes the
    proposal in the same transaction; an approval after that is refused (``proposal_closed``).
    If execution is no longer possible (the merchant left meanwhile), the proposal is closed
    as FAILED with the reason, and the approvals stay recorded."""
    if not (member.is_council_member and member.is_active):
        raise PermissionDenied(_("Only council members approve proposals."))
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if proposal.status != Proposal.Status.OPEN:
        raise ProposalClosed(details={"status": proposal.status})
    if proposal.approvals.filter(member=member).exists():
        raise AlreadyApproved()
    approval = ProposalApproval.objects.create(proposal=proposal, member=member)
    count = proposal.approvals.count()
    _journal("proposal.approved",
             {"proposal": proposal.pk, "approvals": count, "threshold": proposal.threshold},
             f"proposal:{proposal.pk}:approval:{approval.pk}")
    if count < proposal.threshold:
        return proposal
    try:
        with transaction.atomic():
            outcome = _execute(proposal, member)
    except DomainError as exc:
        proposal.status = Proposal.Status.FAILED
        proposal.outcome = {"error": exc.code, "message": str(exc.message)}
        what = "failed"
    else:
        proposal.status = Proposal.Status.EXECUTED
        proposal.outcome = outcome
        what = "executed"
    proposal.closed_at = timezone.now()
    proposal.save(update_fields=["status", "outcome", "closed_at"])
    _journal(f"proposal.{what}",
             {"proposal": proposal.pk, "kind": proposal.kind, "outcome": proposal.outcome},
             f"proposal:{proposal.pk}:{what}")
    return proposal


@transaction.atomic
def proposal_cancel(*, proposal: Proposal, by: User) -> Proposal:
    """Withdraw an open proposal: its proposer or alliance staff."""
    proposal = Proposal.objects.select_for_update().get(pk=proposal.pk)
    if by.pk != proposal.proposed_by_id and not by.is_alliance_staff:
        raise PermissionDenied(_("Only the proposer or alliance staff can cancel a proposal."))
    if proposal.status != Proposal.Status.OPEN:
        raise ProposalClosed(details={"status": proposal.status})
    proposal.status = Proposal.Status.CANCELLED
    proposal.closed_at = timezone.now()
    proposal.save(update_fields=["status", "closed_at"])
    _journal("proposal.cancelled", {"proposal": proposal.pk}, f"proposal:{proposal.pk}:cancelled")
    return proposal


# --- alerts ------------------------------------------------------------------------------------


def alert_raise(
    *, kind: str, key: str, severity: str = Alert.Severity.WARNING, merchant=None,
    details: dict | None = None,
) -> tuple[Alert, bool]:
    """Raise an alert for supervisors once per ``key`` (e.g. ``abuse:velocity:<ip>:<date>``);
    raising it again returns the first. For other apps too: points' abuse defences call it
    with ``kind=Alert.Kind.ABUSE``."""
    if kind not in Alert.Kind.values:
        raise ValueError(kind)
    return Alert.objects.get_or_create(
        key=key[:120],
        defaults={"kind": kind, "severity": severity, "merchant": merchant,
                  "details": details or {}},
    )


@transaction.atomic
def alert_acknowledge(*, alert: Alert, by: User, note: str = "") -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.acknowledged_at is not None:
        return alert  # Idempotent: the first acknowledgement stands.
    alert.acknowledged_at = timezone.now()
    alert.acknowledged_by = by
    alert.note = (note or "").strip()[:200]
    alert.save(update_fields=["acknowledged_at", "acknowledged_by", "note"])
    return alert



# Imports bring points that existed before: a large import is not a spike of issuance.
_NOT_NEW_ISSUANCE = ("member_import", "import_claim")


def issuance_spike_check(*, now: datetime | None = None, window_days: int = 28) -> list[Alert]:
    """Alert supervisors about every brand whose issuance today (alliance time) is above
    ``issuance_alert_factor`` times its average day of the ``window_days`` before. A brand
    with no issuance in the window has no average to compare with and is skipped. Raised once
    per brand and day, so the hourly task may run as often as it likes."""
    factor = parameter_get("issuance_alert_factor")
    local_now = (now or timezone.now()).astimezone(ZoneInfo(settings.TIME_ZONE))
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    window_start = day_start - timedelta(days=window_days)
    rows = (
        Posting.objects.filter(account__kind=Account.Kind.ISSUANCE,
                               asset__family=Asset.Family.BRAND, amount__lt=0,
                               transaction__created_at__gte=window_start,
                               transaction__created_at__lte=local_now)
        .exclude(transaction__kind__in=_NOT_NEW_ISSUANCE)
        .values("asset_id")
        .annotate(today=Sum("amount", filter=Q(transaction__created_at__gte=day_start)),
                  before=Sum("amount", filter=Q(transaction__created_at__lt=day_start)))
    )
    assets = Asset.objects.in_bulk([row["asset_id"] for row in rows])
    raised = []
    for row in rows:
        today, before = -(row["today"] or 0), -(row["before"] or 0)
        average = Decimal(before) / window_days
        if average <= 0 or today <= factor * average:
            continue
        asset = assets[row["asset_id"]]
        alert, created = alert_raise(
            kind=Alert.Kind.ISSUANCE_SPIKE, merchant=asset.issuer,
            key=f"issuance_spike:{asset.pk}:{day_start.date().isoformat()}",
            details={"asset": asset.code, "today": today,
                     "average": str(average.quantize(Decimal("0.01"))),
                     "factor": f"{factor.normalize():f}"},
        )
        if created:
            raised.append(alert)
    return raised
