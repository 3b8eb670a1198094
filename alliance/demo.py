"""The demo alliance that ``manage.py seed_demo`` creates.

Everything is looked up by a natural key before it is created, so a second run finds it all
and changes nothing. Later features add their demo data here (assets, deposits, API keys).
"""

import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.conf import settings
from django.db import transaction

from ledger.log_errors import LogKeyMissing
from ledger.log_services import log_anchor
from ledger.models import Asset
from ledger.services import asset_create_brand
from merchants.models import ApiKey, DepositWatch, Merchant, StaffMembership, Store

from .models import District, Proposal, User

logger = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed to the person running the demo


@dataclass(frozen=True)
class DemoMerchant:
    slug: str
    name_zh: str
    name_en: str
    category: str
    rebate_rate: Decimal
    asset_code: str
    asset_name_zh: str
    asset_name_en: str
    units_per_cny: int
    stores: tuple[tuple[str, str, str, str], ...] = field(default=())


DISTRICT = {"slug": "jingan", "name_zh": "静安寺商圈", "name_en": "Jing'an Temple District"}

MERCHANTS = (
    DemoMerchant(
        "burger-house", "汉堡屋", "Burger House", "restaurant", Decimal("0.1000"),
        "BURGER", "汉堡积分", "Burger points", 100,
        (("Burger House Nanjing Rd", "南京西路1788号", "31.224100", "121.445900"),
         ("Burger House Yuyuan Rd", "愚园路68号", "31.222800", "121.443100")),
    ),
    DemoMerchant(
        "bean-coffee", "豆子咖啡", "Bean Coffee", "cafe", Decimal("0.0800"),
        "BEAN", "咖啡豆", "Coffee beans", 10,
        (("Bean Coffee Huashan Rd", "华山路2号", "31.221500", "121.446800"),),
    ),
    DemoMerchant(
        "city-parking", "城市停车", "City Parking", "parking", Decimal("0.0500"),
        "PARK", "停车积分", "Parking points", 1,
        (("City Parking Jing'an Kerry", "延安中路1238号", "31.223300", "121.449600"),),
    ),
)

SHOPPERS = (
    ("alice@example.com", "+8613800000001", "Alice 李"),
    ("bob@example.com", "+8613800000002", "Bob 王"),
    ("carol@example.com", "+8613800000003", "Carol 张"),
)


def _user(email: str, phone: str | None = None, name: str = "", **flags) -> User:
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(
            email=email, password=DEMO_PASSWORD, phone=phone, phone_verified=bool(phone),
            display_name=name, **flags,
        )
    EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user


def seed_demo() -> dict:
    """Create (once) the demo alliance and return its logins for printing; then anchor what
    it posted, so the explorer's checkpoints page has a signed checkpoint to show. A second
    run posts nothing, so it anchors nothing either."""
    report = _seed()
    try:
        log_anchor()
    except LogKeyMissing:
        # Only outside development (DEBUG makes the key): the demo stands, unanchored, until
        # the beat schedule or ``anchor_ledger`` runs with a key.
        logger.warning("seed_demo: no log signer key, the ledger is not anchored")
    return report


@transaction.atomic
def _seed() -> dict:
    district, _ = District.objects.get_or_create(slug=DISTRICT["slug"], defaults=DISTRICT)
    report: dict = {"merchants": [], "shoppers": [], "staff": [], "council": []}

    for spec in MERCHANTS:
        merchant, _ = Merchant.objects.get_or_create(
            slug=spec.slug,
            defaults={
                "name_zh": spec.name_zh, "name_en": spec.name_en, "category": spec.category,
                "district": district, "rebate_rate": spec.rebate_rate,
                "legal_name": f"{spec.name_en} Ltd.",
            },
        )
        for name, address, lat, lng in spec.stores:
            Store.objects.get_or_create(
                merchant=merchant, name=name,
                defaults={"address": address, "latitude": Decimal(lat), "longitude": Decimal(lng)},
            )
        staff = []
        for role in (StaffMembership.Role.OWNER, StaffMembership.Role.CASHIER):
            email = f"{role}@{spec.slug}.example.com"
            user = _user(email, name=f"{spec.name_en} {role}")
            StaffMembership.objects.get_or_create(merchant=merchant, user=user,
                                                  defaults={"role": role})
            staff.append({"email": email, "password": DEMO_PASSWORD, "role": role})
        report["merchants"].append({
            "name": spec.name_en, "slug": spec.slug, "asset": spec.asset_code,
            "rebate_rate": str(spec.rebate_rate), "units_per_cny": spec.units_per_cny,
            "staff": staff,
        })
        _brand_points(merchant, spec)

    for email, phone, name in SHOPPERS:
        user = _user(email, phone, name)
        report["shoppers"].append({"email": email, "phone": phone, "password": DEMO_PASSWORD,
                                   "member_code": user.member_code})

    staff_user = _user("staff@alliance.example.com", name="Alliance staff",
                       is_alliance_staff=True)
    report["staff"].append({"email": staff_user.email, "password": DEMO_PASSWORD})
    supervisor = _user("supervisor@alliance.example.com", name="Supervisor", is_supervisor=True)
    report["supervisor"] = {"email": supervisor.email, "password": DEMO_PASSWORD}
    for n in (1, 2, 3):
        member = _user(f"council{n}@alliance.example.com", name=f"Council member {n}",
                       is_council_member=True)
        report["council"].append({"email": member.email, "password": DEMO_PASSWORD})
    admin = _user("admin@alliance.example.com", name="Administrator", is_staff=True,
                  is_superuser=True)
    report["admin"] = {"email": admin.email, "password": DEMO_PASSWORD}

    council = list(User.objects.filter(email__in=[c["email"] for c in report["council"]])
                   .order_by("email"))
    for entry in report["merchants"]:
        merchant = Merchant.objects.get(slug=entry["slug"])
        entry.update(_shared_and_deposit(merchant, council))
        entry["api_key"] = _api_key(merchant)
        _earning(merchant)
    report["alliance_tasks"] = _alliance_tasks()
    return report


# --- membership: brand points, SHARED, the deposit and an API key (issue 5) -------------------

DEMO_ALLOCATION_SHARED = Decimal("5000")
DEMO_DEPOSIT_SHARED = Decimal("2000")
DEMO_EXPIRY_MONTHS = 12


def _brand_points(merchant: Merchant, spec: DemoMerchant) -> None:
    """The merchant's point type and ledger accounts, as an approved application leaves them."""
    from merchants.services import merchant_accounts_open

    asset = Asset.objects.filter(code=spec.asset_code).first()
    if asset is None:
        asset = asset_create_brand(
            merchant=merchant, code=spec.asset_code, name_zh=spec.asset_name_zh,
            name_en=spec.asset_name_en, units_per_cny=spec.units_per_cny,
            expiry_months=DEMO_EXPIRY_MONTHS,
        )
    merchant_accounts_open(merchant=merchant, asset=asset)
    DepositWatch.objects.get_or_create(merchant=merchant)


def _shared_and_deposit(merchant: Merchant, council: list[User]) -> dict:
    """SHARED reach the merchant as they would in production: a council proposal approved by
    two of the three members allocates them; then the owner tops up the deposit."""
    from alliance.services import proposal_approve, proposal_create
    from ledger.services import alliance_asset
    from merchants.services import deposit_status, deposit_top_up

    shared = alliance_asset("SHARED")
    allocated = Proposal.objects.filter(kind=Proposal.Kind.ALLOCATE_SHARED, merchant=merchant,
                                        status=Proposal.Status.EXECUTED).exists()
    if not allocated:
        proposal = proposal_create(
            kind=Proposal.Kind.ALLOCATE_SHARED, proposed_by=council[0],
            data={"merchant": merchant.pk, "amount": str(DEMO_ALLOCATION_SHARED)},
            reason="Demo: the founding members' first allocation",
        )
        for member in council[: proposal.threshold]:
            proposal_approve(proposal=proposal, member=member)
    # Keyed, so a second run replays this top-up instead of moving SHARED again.
    deposit_top_up(merchant=merchant, amount=shared.to_minor(DEMO_DEPOSIT_SHARED),
                   idempotency_key="demo-deposit")
    status = deposit_status(merchant)
    return {"deposit_shared": str(shared.to_major(status.balance)),
            "wallet_shared": str(shared.to_major(status.wallet))}


def demo_api_key(slug: str) -> str:
    """The demo merchant's API key, derived from SECRET_KEY so every run prints the same one
    (only its hash is stored, as for any key)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"demo-api-key:{slug}".encode(),
                      hashlib.sha256).hexdigest()
    return f"apk_{digest[:10]}_{digest[10:58]}"


def _api_key(merchant: Merchant) -> str:
    from merchants.services import api_key_create

    raw = demo_api_key(merchant.slug)
    if not ApiKey.objects.filter(prefix=raw[4:14]).exists():
        api_key_create(merchant=merchant, name="Demo till", raw_key=raw,
                       scopes=list(ApiKey.Scope.values))
    return raw


# --- earning: a rule, tiers and tasks (issue 6) -----------------------------------------------

DEMO_TASK_BUDGET_SHARED = 100_000  # minor units: 1,000.00 SHARED minted for alliance tasks
DEMO_TIERS = (
    ("silver", "银卡", "Silver", Decimal("500")),
    ("gold", "金卡", "Gold", Decimal("2000")),
)


def _earning(merchant: Merchant) -> None:
    """Version 1 of an earning rule (double points at lunch on weekdays, gold members 1.5x),
    two tiers and a daily check-in; created once, left alone on later runs."""
    from points.models import EarningRule, MemberTier, Task
    from points.services import earning_rule_publish, member_tier_set
    from points.tasks_services import task_save

    if not MemberTier.objects.filter(merchant=merchant).exists():
        for code, name_zh, name_en, threshold in DEMO_TIERS:
            member_tier_set(merchant=merchant, code=code, name_zh=name_zh, name_en=name_en,
                            threshold=threshold)
    if not EarningRule.objects.filter(merchant=merchant).exists():
        earning_rule_publish(merchant=merchant, base_rate=Decimal("1"), multipliers={
            "time_windows": [{"weekdays": [0, 1, 2, 3, 4], "start": "11:30", "end": "13:30",
                              "multiplier": "2"}],
            "tiers": {"gold": "1.5"}})
    if not Task.objects.filter(merchant=merchant).exists():
        task_save(merchant=merchant, fields={
            "kind": Task.Kind.CHECK_IN, "name_zh": "每日签到", "name_en": "Daily check-in",
            "reward": 10, "daily_limit": 1})
        task_save(merchant=merchant, fields={
            "kind": Task.Kind.FIRST_PURCHASE, "name_zh": "首次消费", "name_en": "First purchase",
            "reward": 200, "daily_limit": None})


def _alliance_tasks() -> list[str]:
    """The alliance's task budget (SHARED minted into it once) and two alliance tasks."""
    from points.models import Task
    from points.tasks_services import task_budget_fund, task_save

    task_budget_fund(amount=DEMO_TASK_BUDGET_SHARED, idempotency_key="demo-task-budget")
    if not Task.objects.filter(merchant__isnull=True).exists():
        task_save(merchant=None, fields={
            "kind": Task.Kind.CHECK_IN, "name_zh": "联盟每日签到",
            "name_en": "Alliance daily check-in", "reward": 10, "daily_limit": 1})
        task_save(merchant=None, fields={
            "kind": Task.Kind.BROWSE, "name_zh": "浏览联盟浏览器 30 秒",
            "name_en": "Browse the explorer for 30 seconds", "target": "/explorer/",
            "browse_seconds": 30, "reward": 20, "daily_limit": 1, "budget": 1000})
    return list(Task.objects.filter(merchant__isnull=True).order_by("pk")
                .values_list("name_en", flat=True))
