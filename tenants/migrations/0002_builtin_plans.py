from django.db import migrations

# Frozen: the plans as they were when this migration was written. Later changes to plans
# are new migrations (or rows the platform edits), never edits of this one.
BUILTIN_PLANS = {
    "starter": {"name": "Starter", "max_users": 10, "features": ["api"], "rate_limit_per_minute": 60},
    "enterprise": {
        "name": "Enterprise",
        "max_users": 100,
        "features": ["analytics", "api", "export"],
        "rate_limit_per_minute": 600,
    },
}


def create_builtin_plans(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for plan_id, values in BUILTIN_PLANS.items():
        Plan.objects.get_or_create(id=plan_id, defaults=values)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_builtin_plans, migrations.RunPython.noop)]
