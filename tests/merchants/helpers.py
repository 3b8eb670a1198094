"""Builders and fixtures shared by the onboarding, governance and merchant tests."""

from decimal import Decimal

import pytest
from allauth.account.models import EmailAddress
from django.core.files.uploadedfile import SimpleUploadedFile

from alliance.models import MerchantApplication, User
from alliance.services import application_save, application_submit
from ledger.models import Account
from ledger.services import account_get_or_create, alliance_asset
from merchants.models import Merchant, StaffMembership
from merchants.services import merchant_onboard
from tests.factories import DistrictFactory, UserFactory

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"0" * 64


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Uploads of a test go to its own directory."""
    settings.PRIVATE_MEDIA_ROOT = str(tmp_path / "private")


def licence_png(name: str = "licence.png", data: bytes = PNG) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="image/png")


def application_fields(**overrides) -> dict:
    fields = {
        "name_zh": "面包房", "name_en": "Bread Shop", "legal_name": "Bread Shop Ltd.",
        "licence_number": "91310000MA1K000001", "contact_name": "Li Lei",
        "contact_phone": "+8613900000001", "contact_email": "owner@bread.example.com",
        "category": "retail", "district": DistrictFactory(), "rebate_rate": Decimal("0.1000"),
        "asset_code": "BREAD", "asset_name_zh": "面包积分", "asset_name_en": "Bread points",
        "units_per_cny": Decimal("10"), "expiry_months": 12,
    }
    fields.update(overrides)
    return fields


STORE = {"name": "Bread Shop Huaihai Rd", "address": "淮海中路1号",
         "latitude": Decimal("31.220000"), "longitude": Decimal("121.470000"),
         "hours": "08:00-20:00"}


def verified_user(email: str | None = None, **kwargs) -> User:
    user = UserFactory(**({"email": email} if email else {}), **kwargs)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def submitted_application(applicant: User | None = None, **overrides) -> MerchantApplication:
    applicant = applicant or verified_user()
    application = application_save(applicant=applicant, fields=application_fields(**overrides),
                                   stores=[STORE], licence_image=licence_png())
    return application_submit(application=application, by=applicant)


def active_merchant(owner: User | None = None, code: str = "TEST", units: int = 100,
                    expiry_months: int | None = 12) -> Merchant:
    """A member as an approved application leaves it: accounts open, an owner."""
    return merchant_onboard(
        owner=owner or verified_user(), name_zh=f"商家{code}", name_en=f"Merchant {code}",
        legal_name=f"{code} Ltd.", licence_number=f"LIC-{code}", category="retail",
        district=DistrictFactory(), rebate_rate=Decimal("0.1000"), stores=[STORE],
        asset_code=code, asset_name_zh=f"{code}积分", asset_name_en=f"{code} points",
        units_per_cny=Decimal(units), expiry_months=expiry_months,
    )


def owner_of(merchant: Merchant) -> User:
    return StaffMembership.objects.get(merchant=merchant, role="owner").user


def shared_balance(merchant: Merchant, kind: str) -> int:
    return account_get_or_create(asset=alliance_asset("SHARED"), kind=kind,
                                 merchant=merchant).balance


WALLET = Account.Kind.WALLET
DEPOSIT = Account.Kind.DEPOSIT


def council(n: int = 3) -> list[User]:
    return [UserFactory(is_council_member=True) for _ in range(n)]
