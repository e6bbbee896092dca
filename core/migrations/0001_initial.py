# The audit trail moved here from ``accounts`` (issue 9): its table, created by
# accounts 0003, stays as it is; only Django's record of which app owns it changes.

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("accounts", "0003_audit_events")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ("actor_kind", models.CharField(max_length=10)),
                        ("actor", models.CharField(max_length=150)),
                        ("action", models.CharField(max_length=40)),
                        ("target", models.CharField(max_length=100)),
                        ("before", models.JSONField(null=True)),
                        ("after", models.JSONField(null=True)),
                    ],
                    options={"db_table": "accounts_auditevent", "ordering": ["-id"]},
                )
            ]
        )
    ]
