"""Two brands: X with stores A and B, Y with store Y; one user per role."""

import pytest

from accounts.models import StaffRole
from tests.factories import BrandFactory, StoreFactory, UserFactory, staff_user


@pytest.fixture
def brand_x(db):
    return BrandFactory(code="brand-x", name="Brand X")


@pytest.fixture
def brand_y(db):
    return BrandFactory(code="brand-y", name="Brand Y")


@pytest.fixture
def store_a(brand_x):
    return StoreFactory(brand=brand_x, code="a", name="Store A")


@pytest.fixture
def store_b(brand_x):
    return StoreFactory(brand=brand_x, code="b", name="Store B")


@pytest.fixture
def store_y(brand_y):
    return StoreFactory(brand=brand_y, code="y", name="Store Y")


@pytest.fixture
def admin_x(brand_x):
    return staff_user(role=StaffRole.BRAND_ADMIN, brand=brand_x, username="admin_x")


@pytest.fixture
def admin_y(brand_y):
    return staff_user(role=StaffRole.BRAND_ADMIN, brand=brand_y, username="admin_y")


@pytest.fixture
def manager_a(store_a):
    return staff_user(role=StaffRole.STORE_MANAGER, store=store_a, username="manager_a")


@pytest.fixture
def clerk_a(store_a):
    return staff_user(role=StaffRole.CLERK, store=store_a, username="clerk_a")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def login(client):
    def _login(user):
        client.force_login(user)
        return client
    return _login


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The size of the admin rights matrix (tests/admin/test_rights_matrix.py), when it ran."""
    import sys

    matrix = sys.modules.get("tests.admin.test_rights_matrix")
    if matrix is not None and matrix.CELLS:
        terminalreporter.write_line(f"admin rights matrix: {sum(matrix.CELLS)} cells over {len(matrix.CELLS)} models")
