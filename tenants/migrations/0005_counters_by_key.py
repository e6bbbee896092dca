from django.db import migrations, models


class Migration(migrations.Migration):
    """Counters by any key (a tenant's plan limit, the sign-in throttle); old counts are of no use."""

    dependencies = [
        ("tenants", "0004_registry_notify"),
    ]

    operations = [
        migrations.DeleteModel(name="RateLimitCounter"),
        migrations.CreateModel(
            name="RateLimitCounter",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=200)),
                ("window_start", models.BigIntegerField(help_text="Unix time of the window's first second")),
                ("expires_at", models.BigIntegerField(db_index=True, help_text="Unix time the window ends")),
                ("hits", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("key", "window_start"), name="one_counter_per_key_and_window")
                ],
            },
        ),
    ]
