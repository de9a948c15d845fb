"""The bulk load's content type is the record's: kafkacache.load becomes recon.load.

Renamed rather than recreated, so its primary key, and with it the model permissions,
object permissions and admin log entries that point at it, stay as they were. (The
table, kafkacache_load, is untouched.)
"""

from django.db import migrations


def _content_type_move(apps, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    moving = ContentType.objects.filter(app_label=source, model="load").first()
    if moving is None:
        return  # a new database: content types are made after the migrations ran
    # One made for the code's model by a migrate that ran over an older database (a
    # rollback, then forward again): only its default permissions point at it.
    ContentType.objects.filter(app_label=target, model="load").delete()
    moving.app_label = target
    moving.save(update_fields=["app_label"])


def forwards(apps, schema_editor):
    _content_type_move(apps, source="kafkacache", target="recon")


def backwards(apps, schema_editor):
    _content_type_move(apps, source="recon", target="kafkacache")


class Migration(migrations.Migration):
    dependencies = [
        ("recon", "0001_squashed_0015_audit_reencrypted"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("guardian", "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
