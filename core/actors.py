"""Who did it: every state change records the kind and id of its actor."""

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorKind(models.TextChoices):
    SYSTEM = "system", _("System job")
    STAFF = "staff", _("Staff")
    CUSTOMER = "customer", _("Customer")
    POS = "pos", _("POS terminal")
    PLATFORM = "platform", _("Platform")
    PAYMENT = "payment", _("Payment provider")


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str = ""
    name: str = ""

    @classmethod
    def system(cls, job: str) -> "Actor":
        return cls(kind=ActorKind.SYSTEM, id=job, name=job)

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(kind=ActorKind.STAFF, id=str(user.pk), name=user.get_username())

    @classmethod
    def platform(cls, platform: str) -> "Actor":
        return cls(kind=ActorKind.PLATFORM, id=platform, name=platform)
