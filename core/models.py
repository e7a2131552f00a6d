from django.db import models
from django.utils import timezone
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


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    DEAD = "dead", _("Dead letter")


class OutboxMessage(models.Model):
    """A message to another system, written in the same transaction as the change
    it reports (the transactional outbox) and delivered at least once by
    core.outbox.outbox_relay, in order per ``key``.

    ``brand_id`` is an opaque reference (core cannot point a foreign key at
    accounts); it scopes the dead-letter view to a brand's admins.
    """

    topic = models.CharField(_("topic"), max_length=64)
    key = models.CharField(_("ordering key"), max_length=64, help_text=_("Messages of one key are delivered in order."))
    payload = models.JSONField(_("payload"), default=dict)
    brand_id = models.BigIntegerField(_("brand id"), null=True, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)

    tenant_brand_lookup = "brand_id"

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["id"]
        indexes = [
            # The relay's claim: due pending messages in order, and "no older pending
            # message of this key". Partial, so delivered rows do not grow them.
            models.Index(fields=["next_attempt_at", "id"], name="outbox_pending_due_idx",
                         condition=models.Q(status="pending")),
            models.Index(fields=["key", "id"], name="outbox_pending_key_idx", condition=models.Q(status="pending")),
            models.Index(fields=["key"], name="outbox_key_idx"),  # the admin's search by exact key
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.key} #{self.pk} ({self.status})"
