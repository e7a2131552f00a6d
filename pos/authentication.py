"""POS terminal authentication: ``Authorization: Token <terminal token>``."""

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from accounts.models import Store
from core.rowread import Join, JoinedRead
from pos.models import PosTerminal
from pos.services import terminal_token_hash

LAST_SEEN_EVERY = timedelta(minutes=1)


# ``PosTerminal.objects.select_related("store").filter(key_hash=..., revoked_at=None)`` as plain
# SQL: every POS request runs it, and building the ORM query cost more than running it
# (bench/pos_feed.py).
_TERMINAL_READ = JoinedRead(PosTerminal, (Join(Store, PosTerminal, "store"),), where=("key_hash", "revoked_at IS NULL"))


def terminal_for_token(raw: str) -> PosTerminal | None:
    """The active terminal whose token is ``raw`` (its store loaded), or None."""
    return _TERMINAL_READ.first(terminal_token_hash(raw))


class TerminalPrincipal:
    """request.user for a POS terminal: not a Django user, never staff."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, terminal: PosTerminal) -> None:
        self.terminal = terminal
        self.pk = f"pos:{terminal.pk}"  # throttling keys must not collide with user ids

    def __str__(self) -> str:
        return f"pos:{self.terminal.pk}"


class TerminalAuth:
    """request.auth: carries the idempotency scope of core.idempotency. The
    scope is the terminal, so keys survive a token rotation."""

    def __init__(self, terminal: PosTerminal) -> None:
        self.terminal = terminal
        self.idempotency_scope = f"pos:{terminal.pk}"


class TerminalTokenAuthentication(BaseAuthentication):
    keyword = b"token"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(_("Invalid token header."))
        try:
            raw = parts[1].decode()
        except UnicodeError:
            raise AuthenticationFailed(_("Invalid token header.")) from None
        terminal = terminal_for_token(raw)
        if terminal is None:
            raise AuthenticationFailed(_("Invalid or revoked token."))
        now = timezone.now()
        if terminal.last_seen_at is None or now - terminal.last_seen_at > LAST_SEEN_EVERY:
            PosTerminal.objects.filter(pk=terminal.pk).update(last_seen_at=now)
            terminal.last_seen_at = now
        return TerminalPrincipal(terminal), TerminalAuth(terminal)

    def authenticate_header(self, request):
        return "Token"


class TerminalTokenScheme(OpenApiAuthenticationExtension):
    """The terminal token in the OpenAPI schema. OpenAPI's ``http`` schemes know no
    ``Token`` prefix, so it is an API key in the Authorization header: in Swagger UI's
    "Authorize", type ``Token <terminal token>``."""

    target_class = TerminalTokenAuthentication
    name = "posTerminalToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "A POS terminal token, sent as `Authorization: Token <terminal token>` "
                               "(in Swagger UI's Authorize, type the word Token, a space, then the token)."}
