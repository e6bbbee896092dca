"""Provisioning from the schema pool, and migrations across tenants (issue 5, points 3 and 4).

Real commits throughout (``committed_db``): pool schemas and tenant schemas are made and
dropped for real, as in production.
"""

from __future__ import annotations

import threading

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.db.migrations.loader import MigrationLoader

from tenants import migrator, services
from tenants.migrator import marked_up_to_date, migrate_schemas, migrations_fingerprint
from tenants.provisioning import claim_pooled_schema, fill_pool, pool_schemas
from tests.catalog import describe, rows_outside_migrations
from tests.conftest import schema_exists


@pytest.fixture(autouse=True)
def _public(committed_db):
    connection.set_schema_to_public()  # whatever the previous test's requests left selected


def execute(statement: str, params: list | None = None) -> None:
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_a_pooled_schema_is_identical_to_a_migrated_schema_and_empty(committed_db, reference_schema):
    fill_pool(3)
    committed_db.append("pooled")
    with transaction.atomic():
        assert claim_pooled_schema("pooled")
    assert describe("pooled") == describe(reference_schema)
    # Not one row anywhere (sequences included, compared above): no session, user, token or event.
    assert rows_outside_migrations("pooled") == dict.fromkeys(rows_outside_migrations(reference_schema), 0)
    assert "accounts_tenantuser" in rows_outside_migrations("pooled")


def test_the_users_table_has_no_pattern_index(committed_db, reference_schema):
    """Only the primary key and username's unique index: the page of users plans over two indexes, not three."""
    from importlib import import_module

    from accounts.models import TenantUser

    dropped = import_module("accounts.migrations.0007_drop_username_pattern_index").PATTERN_INDEX
    with connection.schema_editor(atomic=False) as editor:
        assert dropped == editor._create_index_name(TenantUser._meta.db_table, ["username"], suffix="_like")
    fill_pool(3)
    committed_db.append("indexed")
    services.provision_tenant(tenant_id="indexed", name="Indexed")
    for schema in (reference_schema, "indexed"):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = 'accounts_tenantuser'", [schema]
            )
            assert sorted(row[0] for row in cursor.fetchall()) == [
                "accounts_tenantuser_pkey",
                "accounts_tenantuser_username_key",
            ], schema


def test_provisioning_takes_its_schema_from_the_pool(committed_db):
    fill_pool(3)
    before = set(pool_schemas())
    committed_db.append("from-pool")
    services.provision_tenant(tenant_id="from-pool", name="From Pool")
    taken = before - set(pool_schemas())
    assert len(taken) == 1
    assert not schema_exists(taken.pop())
    assert "accounts_tenantuser" in rows_outside_migrations("from-pool")


def test_stale_and_half_built_schemas_are_never_claimed_and_are_dropped(committed_db):
    for name in pool_schemas():
        execute(f'DROP SCHEMA "{name}" CASCADE')
    stale = "_pool_000000000000_stale"
    half_built = f"_build_{migrations_fingerprint()}_crashed"
    for name in (stale, half_built):
        execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        execute(f'CREATE SCHEMA "{name}"')
        execute(f'CREATE TABLE "{name}".marker (id int)')
    committed_db.append("fresh")
    services.provision_tenant(tenant_id="fresh", name="Fresh")  # nothing current in the pool: migrated
    assert schema_exists(stale) and schema_exists(half_built)
    assert "marker" not in rows_outside_migrations("fresh")
    assert "accounts_tenantuser" in rows_outside_migrations("fresh")
    fill_pool(2)
    assert not schema_exists(stale) and not schema_exists(half_built)
    assert len(pool_schemas()) == 2


def test_a_large_stale_pool_is_dropped_a_batch_per_transaction(committed_db, monkeypatch):
    """After a deploy with a new migration the whole pool is stale: one transaction that
    dropped it all would run out of the server's lock table (seen with 1,000 pool schemas)."""
    from tenants import provisioning

    for name in pool_schemas():
        execute(f'DROP SCHEMA "{name}" CASCADE')
    stale = [f"_pool_000000000000_stale{i:02d}" for i in range(7)]
    for name in stale:
        execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        execute(f'CREATE SCHEMA "{name}"')
        execute(f'CREATE TABLE "{name}".marker (id int)')
    monkeypatch.setattr(provisioning, "_FILL_BATCH", 3)
    drops_by_transaction: dict[int, int] = {}
    drop = provisioning._drop_schema

    def counted_drop(name: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            txid = cursor.fetchone()[0]
        drops_by_transaction[txid] = drops_by_transaction.get(txid, 0) + 1
        drop(name)

    monkeypatch.setattr(provisioning, "_drop_schema", counted_drop)
    fill_pool(2)
    assert not any(schema_exists(name) for name in stale)
    assert len(pool_schemas()) == 2
    assert sum(drops_by_transaction.values()) == len(stale)
    assert max(drops_by_transaction.values()) == 3  # 3 + 3 + 1, never all 7 at once


def test_a_failed_provisioning_gives_its_schema_back(committed_db, monkeypatch):
    fill_pool(2)
    before = set(pool_schemas())

    def fail_after_claim(tenant):
        assert claim_pooled_schema(tenant.schema_name)
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "create_schema", fail_after_claim)
    committed_db.append("unlucky")
    with pytest.raises(RuntimeError):
        services.provision_tenant(tenant_id="unlucky", name="Unlucky")
    assert set(pool_schemas()) == before
    assert not schema_exists("unlucky")


def test_parallel_creates_take_distinct_pool_schemas(committed_db):
    fill_pool(6)
    before = set(pool_schemas())
    ids = [f"parallel-{n}" for n in range(6)]
    committed_db.extend(ids)
    barrier = threading.Barrier(len(ids))
    errors: list[BaseException] = []

    def create(tenant_id: str) -> None:
        try:
            barrier.wait()
            services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=create, args=(tenant_id,)) for tenant_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all("accounts_tenantuser" in rows_outside_migrations(tenant_id) for tenant_id in ids)
    assert len(before - set(pool_schemas())) == len(ids)


def unapply_accounts(schema: str) -> None:
    """Put a schema back to before the accounts app: its tables gone, its migrations unrecorded.

    The same for every app whose migrations build on accounts' (core's audit trail, the example app).
    """
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    labels = sorted({app for app, _ in graph.backwards_plan(("accounts", "0001_initial"))})
    names = [model._meta.db_table for label in labels for model in django_apps.get_app_config(label).get_models()]
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)", [schema, names])
        tables = ", ".join(f'"{schema}"."{row[0]}"' for row in cursor.fetchall())
    assert tables
    execute(f"DROP TABLE {tables} CASCADE")
    execute(f'DELETE FROM "{schema}".django_migrations WHERE app = ANY(%s)', [labels])
    # A change by hand clears the schema's up-to-date mark, as the migrator's docstring asks.
    execute(f'COMMENT ON SCHEMA "{schema}" IS NULL')


def test_migrate_tenants_applies_one_plan_to_many_schemas_identically(committed_db, reference_schema):
    fill_pool(3)
    ids = ["mig-a", "mig-b", "mig-c"]
    committed_db.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
        unapply_accounts(tenant_id)
    report = migrate_schemas(["acme", *ids])
    assert report.up_to_date == ["acme"]
    assert sorted(report.migrated) == ids
    assert report.failed == {}
    for tenant_id in ids:
        assert describe(tenant_id) == describe(reference_schema)
    again = migrate_schemas(["acme", *ids])
    assert sorted(again.up_to_date) == ["acme", *ids] and again.migrated == []


def test_a_failing_tenant_is_reported_and_a_rerun_completes(committed_db, reference_schema):
    fill_pool(3)
    ids = ["fail-a", "fail-b", "fail-c"]
    committed_db.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
        unapply_accounts(tenant_id)
    # fail-b holds a table in the way of its migration.
    execute('CREATE TABLE "fail-b".accounts_tenantuser (blocker int)')
    with pytest.raises(CommandError, match="fail-b"):
        call_command("migrate_tenants", "--no-pool", verbosity=0)
    assert describe("fail-a") == describe(reference_schema)
    assert describe("fail-c") == describe(reference_schema)
    # fail-b is exactly as it was: nothing half-applied, nothing recorded.
    assert "accounts_authtoken" not in rows_outside_migrations("fail-b")
    assert not [row for row in describe("fail-b")["migrations"] if row[0] == "accounts"]
    execute('DROP TABLE "fail-b".accounts_tenantuser')
    call_command("migrate_tenants", "--no-pool", verbosity=0)
    assert describe("fail-b") == describe(reference_schema)


@pytest.mark.django_db
def test_migrate_tenants_reports_everything_up_to_date(capsys):
    call_command("migrate_tenants", "--no-pool", "--skip-public")
    out = capsys.readouterr().out
    assert "0 migrated, 0 failed" in out


def run_at_once(work, count: int = 2) -> list:
    """``work()`` in ``count`` threads released together, each on its own connection; their results."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def test_two_migrations_at_once_migrate_each_schema_once(committed_db, reference_schema):
    """Each schema's transaction locks it and reads its state again: the second run finds it done."""
    fill_pool(4)
    ids = [f"twice-{n}" for n in range(4)]
    committed_db.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
        unapply_accounts(tenant_id)
    reports = run_at_once(lambda: migrate_schemas(ids))
    assert [report.failed for report in reports] == [{}, {}]
    assert sorted(schema for report in reports for schema in report.migrated) == ids
    for tenant_id in ids:
        assert describe(tenant_id) == describe(reference_schema)


def test_two_fills_at_once_never_overfill(committed_db):
    target = len(pool_schemas()) + 4
    added = run_at_once(lambda: fill_pool(target))
    assert sum(added) == 4
    assert len(pool_schemas()) == target


def test_up_to_date_schemas_are_marked_and_the_next_run_reads_none_of_them(committed_db, monkeypatch):
    fill_pool(2)
    ids = ["marked-a", "marked-b"]
    committed_db.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
    execute('COMMENT ON SCHEMA "marked-b" IS NULL')  # as a schema made before the marks were
    assert marked_up_to_date(ids) == {"marked-a"}  # the pool schema was marked when it was built

    first = migrate_schemas(ids)  # reads marked-b, finds it up to date, marks it

    assert (sorted(first.up_to_date), first.migrated) == (ids, [])
    assert marked_up_to_date(ids) == set(ids)
    read: list[list[str]] = []
    real = migrator.applied_by_schema
    monkeypatch.setattr(migrator, "applied_by_schema", lambda schemas: read.append(list(schemas)) or real(schemas))
    second = migrate_schemas(ids)
    assert (sorted(second.up_to_date), second.migrated, read) == (ids, [], [[]])


def test_a_migrated_schema_is_marked_and_recheck_reads_past_a_wrong_mark(committed_db, reference_schema):
    fill_pool(1)
    committed_db.append("remarked")
    services.provision_tenant(tenant_id="remarked", name="remarked")
    unapply_accounts("remarked")
    assert marked_up_to_date(["remarked"]) == set()
    assert migrate_schemas(["remarked"]).migrated == ["remarked"]
    assert marked_up_to_date(["remarked"]) == {"remarked"}

    # A change by hand that leaves the mark in place: only --recheck sees it.
    unapply_accounts("remarked")
    execute(f"COMMENT ON SCHEMA remarked IS 'migrations {migrations_fingerprint()}'")
    call_command("migrate_tenants", "--no-pool", "--skip-public", verbosity=0)
    assert describe("remarked") != describe(reference_schema)
    call_command("migrate_tenants", "--no-pool", "--skip-public", "--recheck", verbosity=0)
    assert describe("remarked") == describe(reference_schema)
