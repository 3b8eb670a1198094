"""The sign-up bonus (SV, once per verified phone number) and the abuse defences on sign-up:
a velocity limit per address and device (a form error) and flags for supervisors."""

import re
from decimal import Decimal

import pytest
from django.test import Client

from alliance.models import Alert, User
from alliance.parameters import parameter_set
from tests.factories import UserFactory
from tests.points.task_helpers import balance

pytestmark = pytest.mark.django_db
PASSWORD = "a-long-pass-phrase-2026"


def sms_code(outbox) -> str:
    return re.search(r"[A-Z0-9]{3,}(?:-[A-Z0-9]{3,})?", outbox[-1][1]).group(0)


def sign_up(client: Client, phone: str):
    return client.post("/accounts/signup/", {"phone": phone, "email": "",
                                             "password1": PASSWORD, "password2": PASSWORD},
                       HTTP_ACCEPT_LANGUAGE="en")


@pytest.fixture
def bonus():
    parameter_set(key="signup_bonus_sv", value=Decimal("5"))


def test_bonus_is_paid_when_the_phone_is_verified(bonus, sms_outbox):
    # given a visitor who signs up with a phone number
    client = Client()
    sign_up(client, "13800138100")
    user = User.objects.get(phone="+8613800138100")
    # no bonus before the number is verified
    assert balance("SV", user=user) == 0

    # when they type the SMS code
    client.post("/accounts/phone/verify/", {"code": sms_code(sms_outbox)})

    # then 5.00 SV are paid, once, however often they sign in afterwards
    assert balance("SV", user=user) == 500
    client.logout()
    client.force_login(User.objects.get(pk=user.pk),
                       backend="django.contrib.auth.backends.ModelBackend")
    client.post("/accounts/login/", {"login": "+8613800138100", "password": PASSWORD})
    assert balance("SV", user=user) == 500


def test_bonus_is_paid_once_per_number_across_accounts(bonus, sms_outbox):
    # given an account that received the bonus for a number, then gave the number up
    first = Client()
    sign_up(first, "13800138101")
    first.post("/accounts/phone/verify/", {"code": sms_code(sms_outbox)})
    holder = User.objects.get(phone="+8613800138101")
    assert balance("SV", user=holder) == 500
    User.objects.filter(pk=holder.pk).update(phone="+8613800138199")

    # when a second account takes that number and verifies it
    second_user = UserFactory(phone="+8613800138102", phone_verified=False,
                              password=PASSWORD)
    second = Client()
    second.force_login(second_user, backend="django.contrib.auth.backends.ModelBackend")
    response = second.post("/accounts/phone/change/", {"phone": "13800138101"})
    assert response.status_code == 302, response.content.decode()[:2000]
    second.post("/accounts/phone/verify/", {"code": sms_code(sms_outbox)})

    # then the number is theirs and verified, and no second bonus is paid for it
    second_user.refresh_from_db()
    assert (second_user.phone, second_user.phone_verified) == ("+8613800138101", True)
    assert balance("SV", user=second_user) == 0
    assert balance("SV", user=holder) == 500


def test_no_bonus_while_the_parameter_is_zero(sms_outbox):
    client = Client()
    sign_up(client, "13800138103")
    client.post("/accounts/phone/verify/", {"code": sms_code(sms_outbox)})
    assert balance("SV", user=User.objects.get(phone="+8613800138103")) == 0


def test_sign_up_velocity_limit_is_a_form_error_and_flags(settings, sms_outbox):
    # given at most 3 sign-ups an hour from one address, flagged from the 3rd
    settings.ABUSE_LIMITS = {"signup_ip": (3, 3600), "signup_ip_flag": (2, 3600),
                             "signup_device": (100, 3600), "signup_device_flag": (100, 3600)}

    # when five people sign up from the same address
    responses = [sign_up(Client(REMOTE_ADDR="203.0.113.50"), f"1380013820{i}")
                 for i in range(5)]

    # then three accounts are opened; the others get a form error and no account
    assert [r.status_code for r in responses] == [302, 302, 302, 200, 200]
    assert "Too many accounts were opened from this network" in responses[3].content.decode()
    assert User.objects.count() == 3
    # and supervisors were alerted about the address
    alert = Alert.objects.get(kind=Alert.Kind.ABUSE)
    assert alert.details["pattern"] == "signup_ip_flag"
    assert alert.details["ip"] == "203.0.113.50"
    # another address may still sign up
    assert sign_up(Client(REMOTE_ADDR="203.0.113.51"), "13800138299").status_code == 302


def test_sign_ups_from_one_device_are_flagged(settings):
    settings.ABUSE_LIMITS = {"signup_device_flag": (1, 3600)}
    for i in range(2):
        sign_up(Client(REMOTE_ADDR=f"198.51.100.{i}", HTTP_X_DEVICE_ID="emulator-7"),
                f"1380013830{i}")
    alert = Alert.objects.get(kind=Alert.Kind.ABUSE)
    assert alert.details["pattern"] == "signup_device_flag"
    assert alert.details["device"] == "emulator-7"
