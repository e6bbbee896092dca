from django.contrib.auth import get_user_model
from rest_framework.permissions import BasePermission


class IsPlatformStaff(BasePermission):
    message = "Platform staff only"

    def has_permission(self, request, view) -> bool:
        user = request.user
        return isinstance(user, get_user_model()) and user.is_active and user.is_staff
