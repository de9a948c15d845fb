"""Every grant and revoke of an object permission goes to the audit trail.

django-guardian keeps object permissions in UserObjectPermission and
GroupObjectPermission rows: whoever adds or removes one (the admin's
object-permission pages, `recon.access.topic_grant`, a shell) leaves a row, so a
receiver on those rows sees every change however it was made. The acting person is
the request's user (config.middleware.request_current, set by its CurrentRequest);
a change outside a request (a command, a shell) is recorded with no user.
guardian's bulk helpers (bulk_create) send no signal: the project does not use them.
"""

from django.db.models.signals import post_delete, post_save
from guardian.models import GroupObjectPermission, UserObjectPermission

from config.middleware import request_current
from recon.models import Topic
from recon.services.actions import operator_action_record


def _record(row, *, action: str) -> None:
    grantee = f"user:{row.user.username}" if hasattr(row, "user") else f"group:{row.group.name}"
    model = row.content_type.model_class()
    topic = Topic.objects.filter(pk=row.object_pk).first() if model is Topic else None
    request = request_current()
    operator_action_record(
        user=getattr(request, "user", None),
        action=action,
        topic=topic,
        target=f"{row.content_type.app_label}.{row.content_type.model}:{row.object_pk}",
        detail={"grantee": grantee, "permission": row.permission.codename},
    )


def _saved(sender, instance, created: bool, **kwargs) -> None:
    if created:
        _record(instance, action="grant")


def _deleted(sender, instance, **kwargs) -> None:
    _record(instance, action="revoke")


def grants_audit_connect() -> None:
    for model in (UserObjectPermission, GroupObjectPermission):
        post_save.connect(_saved, sender=model, dispatch_uid=f"grants-audit-save-{model.__name__}")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"grants-audit-delete-{model.__name__}")
