"""Monthly request quotas: the plans' (starter 10,000, enterprise unlimited), the platform's override, the counters."""

import django.db.models.deletion
from django.db import migrations, models

# Frozen, like 0002's plans.
QUOTAS = {"starter": 10_000, "enterprise": None}


def set_quotas(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for plan_id, quota in QUOTAS.items():
        Plan.objects.filter(pk=plan_id).update(requests_per_month=quota)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0005_counters_by_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="requests_per_month",
            field=models.PositiveBigIntegerField(
                blank=True, help_text="API requests per calendar month (UTC); empty: unlimited", null=True
            ),
        ),
        migrations.AddField(
            model_name="tenant",
            name="requests_per_month_override",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.CreateModel(
            name="UsageCounter",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("period", models.CharField(help_text="YYYY-MM", max_length=7)),
                ("requests", models.BigIntegerField(default=0)),
                (
                    "tenant",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("tenant", "period"), name="one_usage_counter_per_month")
                ],
            },
        ),
        migrations.RunPython(set_quotas, migrations.RunPython.noop),
    ]
