"""Sign-up and sign-in as shoppers in China expect: by mobile phone and SMS code, or by email."""

import re
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core import mail
from django.test import Client

from alliance.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-pass-phrase-2026"


def _code_in(message: str) -> str:
    """The code of an SMS, in whichever language it was written (e.g. ``XHHQ-NXGN``)."""
    found = re.search(r"[A-Z0-9]{3,}(?:-[A-Z0-9]{3,})?", message)
    assert found, message
    return found.group(0)


def _sign_up(client: Client, phone: str, email: str = "") -> object:
    return client.post(
        "/accounts/signup/",
        {"phone": phone, "email": email, "password1": PASSWORD, "password2": PASSWORD},
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_a_shopper_signs_up_with_a_phone_number_and_the_sms_code(client: Client, sms_outbox):
    # given a visitor with a mobile number typed the local way
    # when they sign up with it
    response = _sign_up(client, "138 0013 8000")

    # then an SMS with a code goes to the number in E.164, and they are asked for it
    assert response.status_code == 302
    assert response["Location"] == "/accounts/phone/verify/"
    assert [phone for phone, _ in sms_outbox] == ["+8613800138000"]
    user = User.objects.get(phone="+8613800138000")
    assert user.phone_verified is False

    # when they type the code from the SMS
    code = _code_in(sms_outbox[0][1])
    response = client.post("/accounts/phone/verify/", {"code": code})

    # then the number is verified and they are signed in, on their wallet
    user.refresh_from_db()
    assert user.phone_verified is True
    assert response.status_code == 302
    wallet = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert wallet.wsgi_request.user == user
    assert user.member_code in wallet.content.decode()


def test_a_wrong_sms_code_verifies_nothing(client: Client, sms_outbox):
    # given a visitor who signed up with a phone number
    _sign_up(client, "+8613800138001")
    code = _code_in(sms_outbox[0][1])
    wrong = "000000" if code != "000000" else "111111"

    # when they type a wrong code
    response = client.post("/accounts/phone/verify/", {"code": wrong}, HTTP_ACCEPT_LANGUAGE="en")

    # then the form says so and the number stays unverified
    assert response.status_code == 200
    assert User.objects.get(phone="+8613800138001").phone_verified is False


def test_an_invalid_phone_number_is_refused_with_a_clear_error(client: Client, sms_outbox):
    # given a visitor who mistypes their number
    # when they sign up with it
    response = _sign_up(client, "12345")

    # then the form answers in words and nobody is created or texted
    assert response.status_code == 200
    assert "Enter a valid mobile phone number." in response.content.decode()
    assert User.objects.count() == 0
    assert sms_outbox == []


def test_signing_up_with_an_email_sends_its_verification_mail(client: Client, sms_outbox):
    # given a visitor who gives an email address besides the phone, and verifies the phone
    _sign_up(client, "+8613800138002", email="li.na@example.com")
    client.post("/accounts/phone/verify/", {"code": _code_in(sms_outbox[0][1])})

    # then a mail with a confirmation link goes to that address
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["li.na@example.com"]
    link = re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+/)", message.body)
    assert link, message.body

    # when they follow the link and confirm
    client.post(link.group(1))

    # then the address is verified
    user = User.objects.get(phone="+8613800138002")
    assert user.phone_verified is True
    assert user.emailaddress_set.get(email="li.na@example.com").verified is True


def test_a_shopper_signs_in_with_a_code_sent_to_their_phone(client: Client, sms_outbox):
    # given a shopper with a verified phone number
    user = UserFactory(phone="+8613800138003", phone_verified=True)

    # when they ask for a sign-in code (登录码) for their number
    response = client.post("/accounts/login/code/", {"phone": "13800138003"})

    # then the code goes by SMS to that number
    assert response.status_code == 302
    assert [phone for phone, _ in sms_outbox] == ["+8613800138003"]

    # when they type it
    code = _code_in(sms_outbox[0][1])
    response = client.post(response["Location"], {"code": code})

    # then they are signed in as that shopper
    assert response.status_code == 302
    assert client.get("/").wsgi_request.user == user


def test_a_shopper_signs_in_with_phone_number_and_password(client: Client):
    # given a shopper with a phone number and a password
    user = UserFactory(phone="+8613800138004", password=PASSWORD)

    # when they sign in with the number and the password
    response = client.post("/accounts/login/", {"login": "+8613800138004", "password": PASSWORD})

    # then they are in
    assert response.status_code == 302
    assert client.get("/").wsgi_request.user == user


def test_a_shopper_signs_in_with_email_and_password(client: Client):
    # given a shopper with an email address and a password
    user = UserFactory(email="wang.fang@example.com", password=PASSWORD)

    # when they sign in with them
    response = client.post("/accounts/login/", {"login": "wang.fang@example.com",
                                                "password": PASSWORD})

    # then they are in
    assert response.status_code == 302
    assert client.get("/").wsgi_request.user == user


def test_staff_without_a_phone_number_sign_in_with_email_and_password(client: Client):
    # given an alliance staff account that has an email address and no phone number
    staff = UserFactory(email="ops2@alliance.example.com", phone=None, password=PASSWORD,
                        is_alliance_staff=True)

    # when they sign in with email and password
    response = client.post("/accounts/login/", {"login": staff.email, "password": PASSWORD})

    # then they are in, without being asked for a phone number, and reach the console
    assert response.status_code == 302
    assert not response["Location"].startswith("/accounts/")
    assert client.get("/console/").status_code == 200


def test_a_forgotten_password_is_reset_by_mail(client: Client):
    # given a shopper with an email address
    UserFactory(email="zhao.lei@example.com")

    # when they ask for a reset
    client.post("/accounts/password/reset/", {"email": "zhao.lei@example.com"})

    # then a mail with a reset link reaches them
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["zhao.lei@example.com"]
    assert "/accounts/password/reset/key/" in mail.outbox[0].body


def _totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_staff_turn_on_totp_and_then_need_it_to_sign_in(client: Client):
    # given an alliance staff member signed in with their password
    staff = UserFactory(email="ops@alliance.example.com", password=PASSWORD,
                        is_alliance_staff=True)
    client.post("/accounts/login/", {"login": staff.email, "password": PASSWORD})

    # when they open the authenticator set-up page, confirming their password first
    first = client.get("/accounts/2fa/totp/activate/")
    assert first["Location"].startswith("/accounts/reauthenticate/")
    client.post(first["Location"], {"password": PASSWORD})
    page = client.get("/accounts/2fa/totp/activate/", HTTP_ACCEPT_LANGUAGE="en")

    # then it shows the QR code as an image (no inline script) and the secret
    assert page.status_code == 200
    html = page.content.decode()
    assert 'src="data:image/svg+xml;base64,' in html
    secret = re.search(r'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"', html)
    assert secret, html

    # when they confirm with a code from their app
    client.post("/accounts/2fa/totp/activate/", {"code": _totp_code(secret.group(1))})

    # then TOTP is on, and a later password sign-in stops at the code stage
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists()
    fresh = Client()
    response = fresh.post("/accounts/login/", {"login": staff.email, "password": PASSWORD})
    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert not fresh.get("/console/").wsgi_request.user.is_authenticated
