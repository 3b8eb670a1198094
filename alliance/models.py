"""People and the alliance itself: users with their roles, districts, worker heartbeats."""

import secrets

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Crockford's base32 without I, L, O, U: member codes are read aloud at tills.
MEMBER_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
MEMBER_CODE_LENGTH = 10


def new_member_code() -> str:
    return "".join(secrets.choice(MEMBER_CODE_ALPHABET) for _ in range(MEMBER_CODE_LENGTH))


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str | None, password: str | None, **extra) -> "User":
        email = self.normalize_email(email) if email else None
        user = self.model(email=email, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(
        self, email: str | None = None, password: str | None = None, **extra
    ) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> "User":
        extra.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """Anyone with a login. Every user is a shopper (消费者); the flags and merchant staff
    memberships add the other roles (see ``alliance.permissions``)."""

    email = models.EmailField(_("email address"), unique=True, null=True, blank=True)
    phone = models.CharField(
        _("mobile phone"), max_length=20, unique=True, null=True, blank=True,
        help_text=_("E.164, e.g. +8613800138000"),
    )
    phone_verified = models.BooleanField(_("phone verified"), default=False)
    display_name = models.CharField(_("display name"), max_length=80, blank=True)
    member_code = models.CharField(
        _("member code"), max_length=16, unique=True, default=new_member_code, editable=False
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(
        _("Django admin access"), default=False,
        help_text=_("Reaches /admin/ only together with superuser status."),
    )
    is_alliance_staff = models.BooleanField(_("alliance staff"), default=False)
    is_supervisor = models.BooleanField(_("supervisor"), default=False)
    is_council_member = models.BooleanField(_("council member"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(email__isnull=False) | models.Q(phone__isnull=False),
                name="user_has_email_or_phone",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email or self.phone or self.member_code

    def get_full_name(self) -> str:
        return str(self)

    def get_short_name(self) -> str:
        return str(self)


class District(models.Model):
    """A shopping district (商圈) whose merchants form the alliance's neighbourhoods."""

    name_zh = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100)
    slug = models.SlugField(unique=True)

    class Meta:
        verbose_name = _("district")
        verbose_name_plural = _("districts")

    def __str__(self) -> str:
        return self.name_en


class WorkerHeartbeat(models.Model):
    """The last time a Celery worker ran the heartbeat task; ``/healthz`` reports it."""

    worker = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.worker} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"


class AllianceParameter(models.Model):
    """A governed alliance parameter (联盟参数) and its value in force.

    One row per key, written only by ``alliance.parameters.parameter_set`` (a governance
    proposal's execution, or the demo seed); a key without a row is at its default. Every
    change is kept in ``ParameterChange``."""

    key = models.CharField(_("parameter"), max_length=40, unique=True)
    value = models.DecimalField(_("value"), max_digits=20, decimal_places=6)
    updated_at = models.DateTimeField(_("changed at"), default=timezone.now)

    class Meta:
        verbose_name = _("alliance parameter")
        verbose_name_plural = _("alliance parameters")
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key} = {self.value.normalize()}"


class ParameterChange(models.Model):
    """One change of an alliance parameter: what it was, what it became, who and when.
    Append-only; the governance proposal that made it, when there was one."""

    key = models.CharField(_("parameter"), max_length=40, db_index=True)
    old_value = models.DecimalField(_("old value"), max_digits=20, decimal_places=6)
    new_value = models.DecimalField(_("new value"), max_digits=20, decimal_places=6)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+", verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("parameter change")
        verbose_name_plural = _("parameter changes")
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.key}: {self.old_value.normalize()} → {self.new_value.normalize()}"
