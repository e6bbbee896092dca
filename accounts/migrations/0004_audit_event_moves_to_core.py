# The audit trail moved to ``core`` (issue 9); the table stays, see core 0001.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_audit_events"), ("core", "0001_initial")]

    operations = [migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEvent")])]
