"""factory_boy factories for the suite."""

from decimal import Decimal

import factory

from alliance.models import District, User
from merchants.models import Merchant, StaffMembership, Store


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    phone = factory.Sequence(lambda n: f"+86138{n:08d}")
    phone_verified = True
    password = factory.django.Password("pass-word-123")


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"district-{n}")
    name_zh = factory.Sequence(lambda n: f"商圈{n}")
    name_en = factory.Sequence(lambda n: f"District {n}")


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    slug = factory.Sequence(lambda n: f"merchant-{n}")
    name_zh = factory.Sequence(lambda n: f"商家{n}")
    name_en = factory.Sequence(lambda n: f"Merchant {n}")
    district = factory.SubFactory(DistrictFactory)
    rebate_rate = Decimal("0.1000")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    merchant = factory.SubFactory(MerchantFactory)
    name = factory.Sequence(lambda n: f"Store {n}")
    address = "1 Demo Road"
    latitude = Decimal("31.230400")
    longitude = Decimal("121.473700")


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StaffMembership

    merchant = factory.SubFactory(MerchantFactory)
    user = factory.SubFactory(UserFactory)
    role = StaffMembership.Role.OWNER
