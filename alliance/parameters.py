"""The alliance's governed parameters (SPEC §4, §4.7): their defaults, their rules, their values.

Read a value anywhere with ``parameter_get(key)``; it is always a ``Decimal`` in the unit the
table below names (SHARED amounts in major units: convert with ``asset.to_minor``). A key
that was never changed reads its default. Values change only through ``parameter_set``, which
governance calls when a council proposal executes; every change is kept with who, when and
which proposal (``ParameterChange``).
"""

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .errors import DomainError
from .models import AllianceParameter, ParameterChange


@dataclass(frozen=True)
class Parameter:
    key: str
    default: Decimal
    label: str | Promise
    unit: str | Promise
    minimum: Decimal
    maximum: Decimal | None = None
    # Digits after the point a value may carry: 0 for counts, 2 for SHARED amounts.
    places: int = 6


PARAMETERS: dict[str, Parameter] = {
    p.key: p
    for p in (
        Parameter("airdrop_daily_shared", Decimal("498"), _("Daily airdrop"),
                  _("SHARED per day"), Decimal("0"), Decimal("1000000000"), places=2),
        Parameter("reference_price", Decimal("1.00"), _("Reference price"),
                  _("CNY per SHARED"), Decimal("0.0001"), Decimal("1000000"), places=4),
        Parameter("min_deposit_shared", Decimal("500"), _("Minimum deposit"),
                  _("SHARED"), Decimal("0"), Decimal("1000000000"), places=2),
        Parameter("deposit_warning_ratio", Decimal("0.20"), _("Deposit warning margin"),
                  _("share above the minimum"), Decimal("0"), Decimal("10"), places=4),
        Parameter("max_deduction_ratio", Decimal("0.50"), _("Maximum cash deduction"),
                  _("share of an order"), Decimal("0"), Decimal("1"), places=4),
        Parameter("inflation_rate", Decimal("0.02"), _("Yearly ALLY inflation"),
                  _("share of supply per year"), Decimal("0"), Decimal("1"), places=4),
        Parameter("signup_bonus_sv", Decimal("0"), _("Sign-up bonus"),
                  _("SV"), Decimal("0"), Decimal("1000000"), places=2),
        Parameter("council_threshold", Decimal("2"), _("Council approvals needed"),
                  _("approvals (M of N)"), Decimal("1"), Decimal("100"), places=0),
        Parameter("issuance_alert_factor", Decimal("3"), _("Issuance alert factor"),
                  _("times the trailing daily average"), Decimal("1"), Decimal("1000"),
                  places=2),
    )
}


class InvalidParameter(DomainError):
    code = "invalid_parameter"
    default_message = _("This is not a valid value for the parameter.")


def parameter_spec(key: str) -> Parameter:
    try:
        return PARAMETERS[key]
    except KeyError:
        raise InvalidParameter(_("There is no parameter %(key)s.") % {"key": key},
                               details={"key": key}) from None


def parameter_validate(key: str, value: object) -> Decimal:
    """``value`` (a Decimal, an int or a string as typed) as the parameter's Decimal, or
    ``InvalidParameter`` naming the rule it breaks. Floats are refused: they are not exact."""
    spec = parameter_spec(key)
    if isinstance(value, float | bool):
        raise InvalidParameter(details={"key": key, "value": "not a decimal"})
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidParameter(_("Enter a number."), details={"key": key}) from None
    if not number.is_finite():
        raise InvalidParameter(_("Enter a number."), details={"key": key})
    if number < spec.minimum or (spec.maximum is not None and number > spec.maximum):
        raise InvalidParameter(
            _("Must be between %(minimum)s and %(maximum)s.")
            % {"minimum": spec.minimum, "maximum": spec.maximum},
            details={"key": key, "minimum": str(spec.minimum), "maximum": str(spec.maximum)},
        )
    if number != number.quantize(Decimal(1).scaleb(-spec.places)):
        raise InvalidParameter(
            _("At most %(places)d decimal places.") % {"places": spec.places},
            details={"key": key, "places": spec.places},
        )
    return number


def parameter_get(key: str) -> Decimal:
    """The value in force of ``key`` (its default until a proposal changed it)."""
    spec = parameter_spec(key)
    value = AllianceParameter.objects.filter(key=key).values_list("value", flat=True).first()
    return spec.default if value is None else _in_places(value, spec)


def _in_places(value: Decimal, spec: Parameter) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-spec.places))


def parameters_current() -> dict[str, Decimal]:
    """Every parameter's value in force, in one query."""
    return parameters_from(dict(AllianceParameter.objects.values_list("key", "value")))


def parameters_from(stored: dict[str, Decimal]) -> dict[str, Decimal]:
    """Every parameter's value in force, given the stored ones (key to value) as read by a
    caller that reads them with other things in one query."""
    return {
        key: _in_places(stored[key], spec) if key in stored else spec.default
        for key, spec in PARAMETERS.items()
    }


@transaction.atomic
def parameter_set(*, key: str, value: object, changed_by=None, proposal=None,
                  note: str = "") -> ParameterChange:
    """Put ``value`` in force for ``key`` and keep the change. Called by governance when a
    proposal executes (``proposal``), and by the demo seed; nothing else changes parameters."""
    number = parameter_validate(key, value)
    row = AllianceParameter.objects.select_for_update().filter(key=key).first()
    old = row.value if row is not None else PARAMETERS[key].default
    now = timezone.now()
    if row is None:
        AllianceParameter.objects.create(key=key, value=number, updated_at=now)
    else:
        row.value = number
        row.updated_at = now
        row.save(update_fields=["value", "updated_at"])
    extra = {"proposal": proposal} if proposal is not None else {}
    return ParameterChange.objects.create(
        key=key, old_value=old, new_value=number, changed_by=changed_by, changed_at=now,
        note=note, **extra,
    )


def parameter_history(key: str | None = None):
    """Changes of one parameter (or all), newest first, with who made them."""
    changes = ParameterChange.objects.select_related("changed_by").order_by("-changed_at", "-pk")
    if key is not None:
        parameter_spec(key)
        changes = changes.filter(key=key)
    return changes
