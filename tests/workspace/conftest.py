# The workspace tests use the admin tests' brands, stores and one user per role.
from tests.admin.conftest import (  # noqa: F401
    admin_x, admin_y, brand_x, brand_y, clerk_a, login, manager_a, store_a, store_b, store_y, superuser,
)
