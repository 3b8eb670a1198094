"""django-allauth hooks: phone numbers live on the user, SMS goes through ``alliance.sms``.

Phone numbers are stored in E.164 (``+8613800138000``) but people type them the local way
(``138 0013 8000``); every place allauth reads a number goes through ``normalize_phone`` so
sign-up, sign-in by password and sign-in by code all find the same user.
"""

from typing import Any

import phonenumbers
from allauth.account import stages
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.fields import PhoneField
from django import forms
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import User
from .signals import phone_verified
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


class PhoneVerificationStage(stages.PhoneVerificationStage):
    """allauth's phone stage, letting users without a phone number through.

    Sign-up requires a phone, so allauth aborts the sign-in of any user who has none; but staff
    and council accounts are email-only by design (created by seed_demo, the admin or an
    invitation). A number on file that is not verified yet is still verified by SMS.
    """

    def handle(self):
        if self.login.user is not None and self.login.user.phone is None:
            return None, True
        return super().handle()


class AccountAdapter(DefaultAccountAdapter):
    def get_login_stages(self) -> list[str]:
        ours = f"{__name__}.PhoneVerificationStage"
        return [
            ours if path == "allauth.account.stages.PhoneVerificationStage" else path
            for path in super().get_login_stages()
        ]

    def save_user(self, request, user: User, form, commit: bool = True) -> User:
        # The row needs an email or a phone from its first save (user_has_email_or_phone);
        # allauth sets the phone only after that save.
        phone = form.cleaned_data.get("phone")
        if phone:
            user.phone = phone
        return super().save_user(request, user, form, commit=commit)

    def populate_username(self, request, user: User) -> None:
        # save_user calls this just before a new user's first save. No email address given
        # is NULL, not "": the column is unique, and the next shopper signing up without an
        # address must not collide with this one.
        super().populate_username(request, user)
        if not user.email:
            user.email = None

    def phone_form_field(self, **kwargs: Any) -> PhoneField:
        # allauth's field insists on a leading "+"; ours accepts the local form and leaves
        # validation to clean_phone, which knows the default region.
        kwargs.setdefault("validators", [])
        kwargs.setdefault(
            "widget",
            forms.TextInput(
                attrs={
                    "placeholder": gettext_lazy("Mobile number, e.g. 138 0013 8000"),
                    "autocomplete": "tel",
                    "type": "tel",
                    "inputmode": "tel",
                }
            ),
        )
        kwargs.setdefault("label", gettext_lazy("Mobile phone"))
        return PhoneField(**kwargs)

    def clean_phone(self, phone: str) -> str:
        phone = normalize_phone(phone)
        if self._signing_up():
            # Velocity limit on sign-ups (points.abuse counts them per address and device).
            from points.abuse import signup_allowed

            if not signup_allowed(self.request):
                raise forms.ValidationError(
                    _("Too many accounts were opened from this network or device. "
                      "Please try again later."), code="rate_limited")
        return phone

    def _signing_up(self) -> bool:
        request = self.request
        match = getattr(request, "resolver_match", None)
        return (request is not None and request.method == "POST" and match is not None
                and match.url_name == "account_signup")

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
        # Also the end of a change of number: the verified number becomes the user's.
        User.objects.filter(pk=user.pk).update(phone=phone, phone_verified=True)
        user.phone, user.phone_verified = phone, True
        phone_verified.send(sender=User, user=user, phone=phone)

    def get_user_by_phone(self, phone: str) -> User | None:
        # Sign-in by password hands over the number as typed, not cleaned.
        try:
            phone = normalize_phone(phone)
        except forms.ValidationError:
            return None
        return User.objects.filter(phone=phone).order_by("pk").first()
