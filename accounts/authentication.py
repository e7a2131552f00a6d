"""Customer token authentication: ``Authorization: Bearer <token>``."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import Brand, Customer, CustomerToken, MemberTier
from accounts.services import token_hash
from core.groupcommit import GroupCommit, Submitted
from core.rowread import Join, JoinedRead

# ``CustomerToken.objects.select_related("customer__tier", "customer__brand")
# .filter(key_hash=..., revoked_at=None)`` as plain SQL built once: every customer request runs
# it, and building the ORM query cost more than running it (bench/order_create.py).
_TOKEN_JOINS = (Join(Customer, CustomerToken, "customer"), Join(Brand, Customer, "brand"),
                Join(MemberTier, Customer, "tier", outer=True))
_TOKEN_READ = JoinedRead(CustomerToken, _TOKEN_JOINS, where=("key_hash", "revoked_at IS NULL"))
# The same for the tokens of several requests at once (_TOKEN_READS).
_TOKENS_READ = JoinedRead(CustomerToken, _TOKEN_JOINS, where=("key_hash IN", "revoked_at IS NULL"))
_KEY_HASH_AT = [f.attname for f in CustomerToken._meta.concrete_fields].index("key_hash")


@dataclass(eq=False, kw_only=True)
class _TokenLookup(Submitted):
    key_hash: str  # result: (the token or None,)


def _tokens_read(batch: list[_TokenLookup]) -> None:
    """The tokens of requests arriving together in this process, in one read; each request
    gets instances of its own (never shared between requests)."""
    rows = {row[_KEY_HASH_AT]: row for row in _TOKENS_READ.rows(sorted({item.key_hash for item in batch}))}
    for item in batch:
        row = rows.get(item.key_hash)
        item.result = (None if row is None else _TOKENS_READ.instance(row),)


_TOKEN_READS = GroupCommit(_tokens_read, size=lambda: int(settings.REQUEST_GROUP_MAX))


def _token_read(key_hash: str) -> CustomerToken | None:
    """The live token with this hash, with its customer, brand and tier. Outside a transaction
    on PostgreSQL, read together with the tokens of the requests arriving at the same time."""
    if connection.vendor == "postgresql" and not connection.in_atomic_block and int(settings.REQUEST_GROUP_MAX) > 1:
        return _TOKEN_READS.submit(_TokenLookup(key_hash=key_hash))[0]
    return _TOKEN_READ.first(key_hash)


class CustomerPrincipal:
    """request.user for a customer: not a Django user, never staff."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, customer) -> None:
        self.customer = customer
        self.pk = customer.pk

    def __str__(self) -> str:
        return f"customer:{self.customer.pk}"


class CustomerAuth:
    """request.auth: carries the idempotency scope of core.idempotency."""

    def __init__(self, token: CustomerToken) -> None:
        self.token = token
        self.idempotency_scope = f"customer:{token.customer_id}"


class CustomerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid token header.")
        try:
            raw = parts[1].decode()
        except UnicodeError:
            raise AuthenticationFailed("Invalid token header.") from None
        token = _token_read(token_hash(raw))
        if token is None:
            raise AuthenticationFailed("Invalid or revoked token.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
            CustomerToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return CustomerPrincipal(token.customer), CustomerAuth(token)

    def authenticate_header(self, request):
        return "Bearer"


class CustomerTokenScheme(OpenApiAuthenticationExtension):
    """The customer token in the OpenAPI schema: Swagger UI's "Authorize" sends
    ``Authorization: Bearer <token>``."""

    target_class = CustomerTokenAuthentication
    name = "customerToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A customer token from POST /api/v1/auth/token, sent as "
                               "`Authorization: Bearer <token>`."}
