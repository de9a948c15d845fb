"""The tests' one base for people: a viewer, an operator, an admin and an outsider.

- viewer:   views every topic of `viewed`
- operator: operates every topic of `operated`, only views the rest of `viewed`
- admin:    staff and superuser (every topic without a grant)
- outsider: a user with no topic at all
Each directory's `people` fixture calls people_make with its own topics; the users come
from tests/factories.py.
"""

from collections.abc import Iterable, Mapping

from django.contrib.auth.models import User

from recon.access import topic_grant
from recon.models import Topic
from tests.factories import PASSWORD, UserFactory

ROLES = ("viewer", "operator", "admin", "outsider")


def people_make(
    *,
    viewed: Iterable[Topic] = (),
    operated: Iterable[Topic] = (),
    roles: Iterable[str] = ROLES,
    usernames: Mapping[str, str] | None = None,
    password: str = PASSWORD,
    role_groups: bool = True,
) -> dict[str, User]:
    """The people of `roles`, keyed by role, with their topic grants.

    Usernames are viewer1, operator1, admin1, outsider1 unless `usernames` says otherwise;
    with `role_groups` the viewer, operator and admin are in the group of their role.
    """
    viewed, operated, usernames = list(viewed), list(operated), usernames or {}
    out: dict[str, User] = {}
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        out[role] = UserFactory(
            username=usernames.get(role, f"{role}1"),
            password=password,
            role=role if role_groups and role != "outsider" else None,
            is_staff=role == "admin",
            is_superuser=role == "admin",
        )
    if "viewer" in out:
        for topic in viewed:
            topic_grant(out["viewer"], topic, "viewer")
    if "operator" in out:
        for topic in operated:
            topic_grant(out["operator"], topic, "operator")
        for topic in viewed:
            if topic not in operated:
                topic_grant(out["operator"], topic, "viewer")
    return out
