"""django-allauth hooks: phone numbers live on the user, SMS goes through ``alliance.sms``."""

import phonenumbers
from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.conf import settings
from django.utils.translation import gettext as _

from .models import User
from .sms import send_sms


def normalize_phone(raw: str) -> str:
    """Return the E.164 form of a phone number, reading local numbers in the default region."""
    try:
        parsed = phonenumbers.parse(raw, settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise forms.ValidationError(_("Enter a valid mobile phone number.")) from exc
    if not phonenumbers.is_valid_number(parsed):
        raise forms.ValidationError(_("Enter a valid mobile phone number."))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class AccountAdapter(DefaultAccountAdapter):
    def clean_phone(self, phone: str) -> str:
        return normalize_phone(phone)

    def send_verification_code_sms(self, user, phone: str, code: str, **kwargs) -> None:
        send_sms(phone, _("Your Alliance Points code is %(code)s. It expires in 15 minutes.")
                 % {"code": code})

    def set_phone(self, user: User, phone: str, verified: bool) -> None:
        user.phone = phone
        user.phone_verified = verified
        user.save(update_fields=["phone", "phone_verified"])

    def get_phone(self, user: User) -> tuple[str, bool] | None:
        return (user.phone, user.phone_verified) if user.phone else None

    def set_phone_verified(self, user: User, phone: str) -> None:
        User.objects.filter(pk=user.pk, phone=phone).update(phone_verified=True)
        user.phone_verified = True

    def get_user_by_phone(self, phone: str) -> User | None:
        return User.objects.filter(phone=phone).order_by("pk").first()
