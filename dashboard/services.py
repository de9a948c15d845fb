from django.contrib.auth.models import Group, User
from django.db import transaction

from dashboard.roles import ADMIN


@transaction.atomic
def user_ensure(*, username: str, password: str, role: str) -> User:
    """Create or reset a user in exactly one role group (admins are also staff)."""
    user, _ = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = role == ADMIN
    user.is_superuser = role == ADMIN
    user.save()
    user.groups.set([Group.objects.get(name=role)])
    return user
