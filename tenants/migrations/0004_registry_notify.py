"""Notify every worker's registry cache (tenants.cache) when a tenant, domain or plan changes.

A trigger rather than Python signals: it also fires for queryset.update(), bulk
operations, raw SQL and other programs. NOTIFY is delivered at commit, and not at all
on rollback. Statement-level, so a bulk update sends one notification.
"""

from django.db import migrations

TABLES = ("tenants_tenant", "tenants_domain", "tenants_plan")

CREATE_FUNCTION = """
CREATE OR REPLACE FUNCTION tenants_registry_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenant_registry', TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
"""


def create_trigger(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_registry_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION tenants_registry_notify();"
    )


class Migration(migrations.Migration):
    dependencies = [("tenants", "0003_rate_limit_counter")]

    operations = [
        migrations.RunSQL(CREATE_FUNCTION, "DROP FUNCTION IF EXISTS tenants_registry_notify();"),
        *[
            migrations.RunSQL(create_trigger(table), f"DROP TRIGGER IF EXISTS {table}_registry_notify ON {table};")
            for table in TABLES
        ],
    ]
