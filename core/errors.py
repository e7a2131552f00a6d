"""Domain errors: every failure a caller may act on has a stable machine code.

The API exception handler (core.api.exception_handler) turns them into the one
error shape of CONTRACTS.md; services raise them and never build responses.
"""

from typing import Any

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    code = "error"
    status_code = 400
    default_message = _("The request could not be processed.")

    def __init__(self, message: Any = None, *, code: str | None = None, detail: dict | None = None) -> None:
        self.message = message if message is not None else self.default_message
        if code is not None:
            self.code = code
        self.detail = detail or {}
        super().__init__(str(self.message))


class InvalidInput(DomainError):
    code = "invalid_input"
    status_code = 400
    default_message = _("The input is not valid.")


class NotFound(DomainError):
    code = "not_found"
    status_code = 404
    default_message = _("Not found.")


class PermissionDenied(DomainError):
    code = "permission_denied"
    status_code = 403
    default_message = _("You are not allowed to do this.")


class Conflict(DomainError):
    code = "conflict"
    status_code = 409
    default_message = _("The change conflicts with the current state.")


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"
    default_message = _("This action is not allowed in the current status.")


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    status_code = 422
    default_message = _("This Idempotency-Key was already used with a different request body.")


class IdempotencyKeyInProgress(DomainError):
    status_code = 409
    code = "idempotency_key_in_progress"
    default_message = _("A request with this Idempotency-Key is still being processed; retry later.")


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    status_code = 400
    default_message = _("The Idempotency-Key header must be 1 to 64 printable characters.")
