"""Tenant API keys, and the trigger that tells every worker's key cache (accounts.keys) of a change.

The trigger fires when a key is deleted (revoked) or its digest, scopes or expiry change,
not when ``last_used_at`` is written. NOTIFY is delivered at commit; the payload is the
schema, whose cached keys every worker then forgets. The function lives in each tenant's
schema, next to its table, so a pool schema renamed to a tenant's id keeps working.
"""

import django.utils.timezone
from django.db import migrations, models

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION accounts_apikey_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('api_keys', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;
"""
CREATE_TRIGGER = (
    "CREATE TRIGGER accounts_apikey_notify "
    "AFTER DELETE OR TRUNCATE OR UPDATE OF key_digest, key_id, scopes, expires_at ON accounts_apikey "
    "FOR EACH STATEMENT EXECUTE FUNCTION accounts_apikey_notify();"
)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_audit_event_moves_to_core"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiKey",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key_digest", models.CharField(editable=False, max_length=64, unique=True)),
                ("name", models.CharField(blank=True, default="", max_length=100)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now, editable=False)),
                ("key_id", models.CharField(editable=False, max_length=12, unique=True)),
                ("prefix", models.CharField(editable=False, help_text="The public start of the key", max_length=100)),
                ("scopes", models.JSONField(default=list)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.RunSQL(CREATE_FUNCTION, "DROP FUNCTION IF EXISTS accounts_apikey_notify();"),
        migrations.RunSQL(CREATE_TRIGGER, "DROP TRIGGER IF EXISTS accounts_apikey_notify ON accounts_apikey;"),
    ]
