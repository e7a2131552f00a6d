"""Admin for POS terminals and the walk-in sales they report.

Brand admins and store managers manage the terminals of the stores where they hold that
role (a manager who is a clerk elsewhere manages only their own store's terminals).
A new terminal's token (and a rotated one) is shown ONCE, in a message after
saving; only its SHA-256 is stored. Terminals are revoked, never deleted, so
the audit trail keeps naming them. The store feed (orders.StoreFeedEvent) is
listed here read-only: it is what the POS of each store has (not) acknowledged.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_base import ALL_ROLES, BRAND_ADMIN, MANAGERS, ReadOnlyTenantAdmin, TenantAdmin
from orders.models import StoreFeedEvent
from pos.models import PosTerminal, WalkInSale
from pos.services import pos_terminal_create, pos_terminal_revoke, pos_terminal_rotate

TERMINAL_PERMISSIONS = {"view": MANAGERS, "add": MANAGERS, "change": MANAGERS, "delete": set(), "revoke": MANAGERS,
                        "rotate": MANAGERS}


@admin.register(PosTerminal)
class PosTerminalAdmin(TenantAdmin):
    role_permissions = TERMINAL_PERMISSIONS
    list_display = ["name", "store", "role", "prefix", "last_seen_at", "revoked_at", "created_at"]
    list_filter = ["role", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "store__name"]
    list_select_related = ["store"]
    readonly_fields = ["prefix", "created_at", "rotated_at", "last_seen_at", "revoked_at"]
    fields = ["store", "name", "role", *readonly_fields]
    actions = ["revoke_terminals", "rotate_tokens"]

    def get_readonly_fields(self, request, obj=None):
        # A terminal stays in its store: a new store means a new terminal (and token).
        return [*self.readonly_fields, "store"] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "role"])
            return
        issued = pos_terminal_create(store=obj.store, name=obj.name, role=obj.role)
        saved = issued.terminal
        obj.pk, obj.key_hash, obj.prefix, obj.created_at = saved.pk, saved.key_hash, saved.prefix, saved.created_at
        obj._state.adding = False
        self.message_user(
            request,
            _("Terminal “%(name)s” created. Its token is shown only this once; enter it in the POS now: %(token)s")
            % {"name": saved.name, "token": issued.token},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected terminals (their tokens stop working)"), permissions=["revoke"])
    def revoke_terminals(self, request, queryset):
        count = 0
        for terminal in queryset.filter(revoked_at__isnull=True):
            pos_terminal_revoke(terminal_id=terminal.pk)
            count += 1
        self.message_user(request, ngettext("%(count)d terminal revoked.", "%(count)d terminals revoked.", count)
                          % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Rotate the tokens of the selected terminals (old tokens stop working)"),
                  permissions=["rotate"])
    def rotate_tokens(self, request, queryset):
        for terminal in queryset.filter(revoked_at__isnull=True):
            issued = pos_terminal_rotate(terminal_id=terminal.pk)
            self.message_user(
                request,
                _("New token for “%(name)s”, shown only this once: %(token)s")
                % {"name": terminal.name, "token": issued.token},
                messages.WARNING,
            )


@admin.register(WalkInSale)
class WalkInSaleAdmin(TenantAdmin):
    role_permissions = {"view": ALL_ROLES, "add": set(), "change": set(), "delete": set()}
    list_display = ["receipt_no", "store", "terminal", "created_at"]
    search_fields = ["receipt_no"]
    list_select_related = ["store", "terminal"]
    readonly_fields = ["store", "terminal", "receipt_no", "lines", "shortfall", "created_at"]


@admin.register(StoreFeedEvent)
class StoreFeedEventAdmin(ReadOnlyTenantAdmin):
    # What the POS terminals were sent: an internal record, for brand admins tracing a terminal.
    role_permissions = {"view": {BRAND_ADMIN}, "add": set(), "change": set(), "delete": set()}
    list_display = ["id", "store", "type", "order", "created_at", "acked_at", "acked_by"]
    list_filter = ["type", ("acked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["store", "order"]
    search_fields = ["=order__order_no"]
