from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyRecord(models.Model):
    """The first completed response to a (credential, Idempotency-Key) pair.

    The row is inserted at the start of the request, inside the same database
    transaction as the request's own writes, so a concurrent duplicate blocks on
    the unique index until the first one commits and then replays its answer.
    """

    credential = models.CharField(_("credential"), max_length=100)
    key = models.CharField(_("key"), max_length=64)
    fingerprint = models.CharField(_("request fingerprint"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True)
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    body = models.BinaryField(_("body"), default=b"")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["credential", "key"], name="idempotency_unique_credential_key"),
        ]

    def __str__(self) -> str:
        return f"{self.credential}:{self.key}"
