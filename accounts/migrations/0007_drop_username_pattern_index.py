"""Drop the pattern-matching (``varchar_pattern_ops``) index Django adds beside username's unique index.

Nothing searches usernames by prefix, so the index only cost: a write on every user saved,
and, on every request to a schema its database connection has not served yet, one more
relation whose catalogue entries PostgreSQL loads while planning the page of users (it
opens every index of a table it plans). With 10,000 tenants nearly every request meets
such a schema; this index was about a third of that cold cost.

Plain SQL, so that ``migrate_tenants`` records it once and replays it in every schema. The
name is the one Django derives from table and column (``tests/test_pool_and_migrations.py``
checks it). Django keeps no record of this index in its migration state, so nothing later
expects it; an ``AlterField`` of username would drop and re-create it, and would need this again.
"""

from django.db import migrations

PATTERN_INDEX = "accounts_tenantuser_username_a7e0983f_like"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_refresh_tokens"),
    ]

    operations = [
        migrations.RunSQL(
            f'DROP INDEX IF EXISTS "{PATTERN_INDEX}"',
            f'CREATE INDEX "{PATTERN_INDEX}" ON "accounts_tenantuser" ("username" varchar_pattern_ops)',
            elidable=False,
        ),
    ]
