"""Alliance parameters: defaults, validation, and the kept history of every change."""

from decimal import Decimal

import pytest

from alliance.parameters import (
    PARAMETERS,
    InvalidParameter,
    parameter_get,
    parameter_history,
    parameter_set,
    parameters_current,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_every_parameter_reads_its_default_until_changed():
    # given an alliance where no parameter was ever changed
    # then each reads the default the specification gives
    assert parameter_get("airdrop_daily_shared") == Decimal("498")
    assert parameter_get("reference_price") == Decimal("1.00")
    assert parameter_get("min_deposit_shared") == Decimal("500")
    assert parameter_get("deposit_warning_ratio") == Decimal("0.20")
    assert parameter_get("max_deduction_ratio") == Decimal("0.50")
    assert parameter_get("inflation_rate") == Decimal("0.02")
    assert parameter_get("signup_bonus_sv") == Decimal("0")
    assert parameter_get("council_threshold") == 2
    assert all(isinstance(value, Decimal) for value in parameters_current().values())


def test_a_change_is_in_force_and_kept_with_who_and_when():
    # given a council member
    member = UserFactory(is_council_member=True)

    # when the minimum deposit is changed twice
    parameter_set(key="min_deposit_shared", value="600", changed_by=member)
    parameter_set(key="min_deposit_shared", value=Decimal("650.50"), changed_by=member)

    # then the last value is in force and both changes are kept, newest first
    assert parameter_get("min_deposit_shared") == Decimal("650.50")
    assert parameters_current()["min_deposit_shared"] == Decimal("650.50")
    history = list(parameter_history("min_deposit_shared"))
    assert [(c.old_value, c.new_value) for c in history] == [
        (Decimal("600"), Decimal("650.50")), (Decimal("500"), Decimal("600")),
    ]
    assert {c.changed_by for c in history} == {member}
    assert history[0].changed_at >= history[1].changed_at


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("council_threshold", "1.5"),  # a count is whole
        ("council_threshold", "0"),  # below the minimum
        ("max_deduction_ratio", "1.2"),  # above the maximum
        ("min_deposit_shared", "-1"),
        ("min_deposit_shared", "10.001"),  # SHARED has two decimal places
        ("reference_price", "abc"),
        ("reference_price", "NaN"),
        ("reference_price", 1.5),  # a float is not exact
        ("no_such_parameter", "1"),
    ],
)
def test_an_invalid_value_is_refused_and_changes_nothing(key, value):
    # when a bad value is set
    with pytest.raises(InvalidParameter):
        parameter_set(key=key, value=value)

    # then every parameter is still at its default and no change was recorded
    assert parameters_current() == {k: spec.default for k, spec in PARAMETERS.items()}
    assert not parameter_history().exists()
