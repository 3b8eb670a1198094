"""Fixtures of the alliance tests: a signed-in client for each role of the permission table."""

from collections.abc import Callable

import pytest
from django.test import Client

from alliance.models import User
from alliance.permissions import Role
from merchants.models import StaffMembership
from tests.factories import StaffMembershipFactory, UserFactory

_MERCHANT_ROLES = {
    Role.CASHIER: StaffMembership.Role.CASHIER,
    Role.MANAGER: StaffMembership.Role.MANAGER,
    Role.OWNER: StaffMembership.Role.OWNER,
}
_USER_FLAGS = {
    Role.SHOPPER: {},
    Role.ALLIANCE_STAFF: {"is_alliance_staff": True},
    Role.SUPERVISOR: {"is_supervisor": True},
    Role.COUNCIL: {"is_council_member": True},
    Role.SUPERUSER: {"is_superuser": True, "is_staff": True},
}


def user_with_role(role: Role) -> User | None:
    """A fresh user holding exactly ``role`` (plus shopper, which every user is); None for
    the anonymous visitor."""
    if role == Role.ANONYMOUS:
        return None
    if role in _MERCHANT_ROLES:
        return StaffMembershipFactory(role=_MERCHANT_ROLES[role]).user
    return UserFactory(**_USER_FLAGS[role])


@pytest.fixture
def client_as(client: Client) -> Callable[[Role], Client]:
    """``client_as(Role.OWNER)``: the test client signed in as a new user with that role."""

    def sign_in(role: Role) -> Client:
        user = user_with_role(role)
        if user is not None:
            client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
        return client

    return sign_in
