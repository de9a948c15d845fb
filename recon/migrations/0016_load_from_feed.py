"""The Load model moves from the feed (kafkacache) to the record (recon), its table kept.

State only: `kafkacache_load` stays as it is (columns, index, the foreign keys of
findings and runs that point at it); recon's state takes the model over here and
kafkacache 0007 drops it from the feed's state. The content type is renamed rather
than recreated, so its primary key, and with it the model permissions, object
permissions and admin log entries that point at it, stay as they were.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import recon.models


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
        ("recon", "0015_audit_reencrypted"),
        ("kafkacache", "0006_load_unordered"),  # the table's last column
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("guardian", "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Load",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        (
                            "retrieval_key",
                            models.CharField(
                                default=recon.models.new_retrieval_key, editable=False, max_length=64, unique=True
                            ),
                        ),
                        ("source", models.CharField(max_length=128)),
                        ("client_ids", models.JSONField(blank=True, default=list)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "Queued"),
                                    ("running", "Running"),
                                    ("done", "Done"),
                                    ("failed", "Failed"),
                                ],
                                default="queued",
                                max_length=8,
                            ),
                        ),
                        ("total", models.IntegerField(blank=True, null=True)),
                        ("built", models.IntegerField(default=0)),
                        ("published", models.IntegerField(default=0)),
                        ("failed", models.IntegerField(default=0)),
                        ("exceptions", models.IntegerField(default=0)),
                        ("unordered", models.IntegerField(default=0)),
                        ("error", models.TextField(blank=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("heartbeat_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "requested_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "topic",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="loads", to="recon.topic"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "kafkacache_load",
                        "ordering": ["-created_at"],
                        "indexes": [models.Index(fields=["status", "-created_at"], name="load_status_time")],
                    },
                ),
                migrations.AlterField(
                    model_name="finding",
                    name="load",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="recon.load",
                    ),
                ),
                migrations.AlterField(
                    model_name="publishedmessage",
                    name="load",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        to="recon.load",
                    ),
                ),
                migrations.AlterField(
                    model_name="reconrun",
                    name="load",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="recon.load",
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
