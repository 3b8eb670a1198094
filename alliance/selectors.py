"""Reads of the alliance app for pages and endpoints."""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ledger.models import Account, Asset, Posting
from merchants.models import LeaveRequest, Merchant

from .models import (
    Alert,
    MerchantApplication,
    ParameterChange,
    Proposal,
    User,
    WorkerHeartbeat,
)
from .parameters import PARAMETERS, parameters_current

# A worker beats every minute (CELERY_BEAT_SCHEDULE); a few missed beats is when to worry.
HEARTBEAT_STALE_AFTER_SECONDS = 5 * 60


def worker_heartbeat_list() -> QuerySet[WorkerHeartbeat]:
    """Every worker that has ever beaten, the most recently seen first."""
    return WorkerHeartbeat.objects.order_by("-seen_at", "worker")


# --- applications (staff console) -------------------------------------------------------------


def application_queue(*, status: str = "", district: str = "", category: str = "",
                      q: str = "") -> QuerySet[MerchantApplication]:
    """Applications for staff, filtered; drafts are the applicant's own business and never
    listed. Without a status filter, those waiting for review come first."""
    applications = (MerchantApplication.objects.exclude(status=MerchantApplication.Status.DRAFT)
                    .select_related("district", "applicant"))
    if status:
        applications = applications.filter(status=status)
    if district:
        applications = applications.filter(district__slug=district)
    if category:
        applications = applications.filter(category=category)
    if q:
        applications = applications.filter(
            Q(name_zh__icontains=q) | Q(name_en__icontains=q) | Q(legal_name__icontains=q)
            | Q(licence_number__icontains=q) | Q(asset_code__icontains=q)
        )
    return applications.order_by("submitted_at", "pk")


def application_get(*, pk: int) -> MerchantApplication:
    """A submitted (never a draft) application for staff."""
    return get_object_or_404(
        MerchantApplication.objects.exclude(status=MerchantApplication.Status.DRAFT)
        .select_related("district", "applicant", "decided_by", "merchant"), pk=pk)


def application_timeline(application: MerchantApplication) -> list:
    """Every kept state of an application, oldest first, with who and why (simple-history)."""
    return list(application.history.select_related("history_user")
                .order_by("history_date", "history_id"))


def leave_request_queue(*, status: str = LeaveRequest.Status.PENDING):
    requests = LeaveRequest.objects.select_related("merchant", "requested_by", "decided_by")
    if status:
        requests = requests.filter(status=status)
    return requests.order_by("requested_at", "pk")


def leave_request_get(*, pk: int) -> LeaveRequest:
    return get_object_or_404(LeaveRequest.objects.select_related("merchant"), pk=pk)


# --- governance -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterRow:
    key: str
    label: str
    unit: str
    value: Decimal
    default: Decimal
    last_change: ParameterChange | None


def parameter_table() -> list[ParameterRow]:
    values = parameters_current()
    latest: dict[str, ParameterChange] = {}
    for change in ParameterChange.objects.select_related("changed_by", "proposal").order_by(
        "key", "-changed_at", "-pk"
    ):
        latest.setdefault(change.key, change)
    return [ParameterRow(key, str(spec.label), str(spec.unit), values[key], spec.default,
                         latest.get(key)) for key, spec in PARAMETERS.items()]


def parameter_changes(*, key: str) -> QuerySet[ParameterChange]:
    return (ParameterChange.objects.filter(key=key).select_related("changed_by", "proposal")
            .order_by("-changed_at", "-pk"))


def proposal_list(*, status: str = "") -> QuerySet[Proposal]:
    proposals = (Proposal.objects.select_related("proposed_by", "merchant")
                 .annotate(approval_count=Count("approvals")))
    if status:
        proposals = proposals.filter(status=status)
    return proposals.order_by("-created_at", "-pk")


def proposal_get(*, pk: int) -> Proposal:
    return get_object_or_404(Proposal.objects.select_related("proposed_by", "merchant"), pk=pk)


def council_members() -> QuerySet[User]:
    return User.objects.filter(is_council_member=True, is_active=True).order_by("pk")


def merchants_for_proposals() -> QuerySet[Merchant]:
    return Merchant.objects.exclude(status=Merchant.Status.LEFT).order_by("name_en", "pk")


def witness_keys_pending():
    from ledger.models import WitnessKey

    return WitnessKey.objects.filter(status=WitnessKey.Status.PENDING).order_by("pk")


# --- supervision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantOverview:
    """One merchant as supervisors see it: amounts in minor units, liability in CNY."""

    merchant: Merchant
    asset: Asset | None
    issued: int
    retired: int
    outstanding: int
    liability_cny: Decimal
    deposit: int
    points_out: int  # issued in the window
    points_in: int  # came back to the issuer in the window (redeemed, exchanged, expired)
    shared_in: int
    shared_out: int


# Moves between a merchant's own SHARED accounts are not flows in or out of it.
_INTERNAL_SHARED_KINDS = ("deposit_top_up", "deposit_refund")


def supervision_overview(*, days: int = 7) -> list[MerchantOverview]:
    """Every merchant's issuance, outstanding points and their CNY liability, deposit, and
    flows in and out over the last ``days`` days. A few grouped queries, whatever the number
    of merchants."""
    since = timezone.now() - timedelta(days=days)
    merchants = list(Merchant.objects.select_related("district").order_by("pk"))
    assets = {a.issuer_id: a for a in Asset.objects.filter(family=Asset.Family.BRAND)
              .order_by("pk")}
    brand_ids = [a.pk for a in assets.values()]
    issuance = {
        row["asset_id"]: row for row in
        Posting.objects.filter(account__kind=Account.Kind.ISSUANCE, asset_id__in=brand_ids)
        .values("asset_id").annotate(
            issued=Sum("amount", filter=Q(amount__lt=0)),
            retired=Sum("amount", filter=Q(amount__gt=0)),
            out_window=Sum("amount", filter=Q(amount__lt=0, transaction__created_at__gte=since)),
            in_window=Sum("amount", filter=Q(amount__gt=0, transaction__created_at__gte=since)),
        )
    }
    sunk_window = dict(
        Posting.objects.filter(account__kind__in=[Account.Kind.BURN, Account.Kind.EXPIRED],
                               asset_id__in=brand_ids, transaction__created_at__gte=since)
        .values("asset_id").annotate(total=Sum("amount")).values_list("asset_id", "total")
    )
    outstanding = dict(
        Account.objects.filter(asset_id__in=brand_ids, bounded=True)
        .values("asset_id").annotate(total=Sum("balance")).values_list("asset_id", "total")
    )
    deposits = dict(
        Account.objects.filter(asset__code="SHARED", kind=Account.Kind.DEPOSIT,
                               merchant__isnull=False)
        .values_list("merchant_id", "balance")
    )
    shared_flows = {
        row["account__merchant_id"]: row for row in
        Posting.objects.filter(asset__code="SHARED", account__merchant__isnull=False,
                               transaction__created_at__gte=since)
        .exclude(transaction__kind__in=_INTERNAL_SHARED_KINDS)
        .values("account__merchant_id").annotate(
            inflow=Sum("amount", filter=Q(amount__gt=0)),
            outflow=Sum("amount", filter=Q(amount__lt=0)),
        )
    }
    rows = []
    for merchant in merchants:
        asset = assets.get(merchant.pk)
        issued_row = issuance.get(asset.pk, {}) if asset else {}
        out_amount = outstanding.get(asset.pk, 0) if asset else 0
        liability = (Decimal(out_amount) / asset.minor_per_unit / asset.units_per_cny
                     if asset else Decimal(0))
        flows = shared_flows.get(merchant.pk, {})
        rows.append(MerchantOverview(
            merchant=merchant, asset=asset,
            issued=-(issued_row.get("issued") or 0), retired=issued_row.get("retired") or 0,
            outstanding=out_amount or 0, liability_cny=liability.quantize(Decimal("0.01")),
            deposit=deposits.get(merchant.pk, 0),
            points_out=-(issued_row.get("out_window") or 0),
            points_in=(issued_row.get("in_window") or 0)
            + ((sunk_window.get(asset.pk) or 0) if asset else 0),
            shared_in=flows.get("inflow") or 0, shared_out=-(flows.get("outflow") or 0),
        ))
    return rows


def merchant_daily_flows(*, merchant: Merchant, days: int = 30) -> list[dict]:
    """Per day (alliance time): brand points issued and returned, for the merchant's chart."""
    from django.db.models.functions import TruncDate

    asset = Asset.objects.filter(issuer=merchant, family=Asset.Family.BRAND).first()
    if asset is None:
        return []
    since = timezone.now() - timedelta(days=days)
    rows = (Posting.objects.filter(account__kind=Account.Kind.ISSUANCE, asset=asset,
                                   transaction__created_at__gte=since)
            .annotate(day=TruncDate("transaction__created_at"))
            .values("day").annotate(issued=Sum("amount", filter=Q(amount__lt=0)),
                                    returned=Sum("amount", filter=Q(amount__gt=0)))
            .order_by("day"))
    return [{"day": row["day"].isoformat(), "issued": -(row["issued"] or 0),
             "returned": row["returned"] or 0} for row in rows]


def merchant_recent_transactions(*, merchant: Merchant, limit: int = 30) -> list[dict]:
    """The latest ledger transactions touching the merchant's accounts: kinds, amounts and
    pseudonymous account ids, never the shoppers behind them."""
    return list(
        Posting.objects.filter(transaction__postings__account__merchant=merchant)
        .values("transaction_id", "transaction__kind", "transaction__created_at",
                "account__public_id", "account__kind", "asset__code", "amount")
        .order_by("-transaction_id", "leg").distinct()[:limit]
    )


def alert_list(*, open_only: bool = True, kind: str = "") -> QuerySet[Alert]:
    alerts = Alert.objects.select_related("merchant", "acknowledged_by")
    if open_only:
        alerts = alerts.filter(acknowledged_at__isnull=True)
    if kind:
        alerts = alerts.filter(kind=kind)
    return alerts.order_by("-raised_at", "-pk")


def alert_get(*, pk: int) -> Alert:
    return get_object_or_404(Alert, pk=pk)
