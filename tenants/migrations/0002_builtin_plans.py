from django.db import migrations

from tenants.plans import BUILTIN_PLANS


def create_builtin_plans(apps, schema_editor):
    Plan = apps.get_model("tenants", "Plan")
    for plan_id, values in BUILTIN_PLANS.items():
        Plan.objects.get_or_create(id=plan_id, defaults=values)


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [migrations.RunPython(create_builtin_plans, migrations.RunPython.noop)]
