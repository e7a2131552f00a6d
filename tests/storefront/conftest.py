# The customer API's tests use the order tests' shop, customer and token client.
from tests.orders.conftest import api, client_for, customer, shop  # noqa: F401
