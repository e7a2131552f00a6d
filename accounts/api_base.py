"""Base API view for back-office staff: every queryset goes through the scope."""

from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission

from accounts.selectors import roles_for_user, scope_for_user
from core.api import BaseAPIView
from core.tenancy import TenantScope, scope_queryset


class IsStaffMember(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active and roles_for_user(user=user))


class StaffAPIView(BaseAPIView):
    authentication_classes = [SessionAuthentication]
    permission_classes = [IsStaffMember]

    @property
    def scope(self) -> TenantScope:
        return scope_for_user(user=self.request.user)

    @property
    def roles(self) -> frozenset[str]:
        return roles_for_user(user=self.request.user)

    def scoped(self, queryset):
        return scope_queryset(queryset, self.scope)
