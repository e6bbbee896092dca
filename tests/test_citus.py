"""Schema-based sharding on a Citus cluster (``make citus-up``, then DATABASE_URL at the coordinator).

The first two tests hold on any PostgreSQL: they keep tenant schemas within Citus' rules
(nothing references a table outside the schema; ids are bigint). The others need Citus
and are skipped elsewhere: every tenant schema is a distributed schema living on one
worker, new tenants are spread over the workers, a tenant's request runs on its worker
alone, and a migration run on the coordinator reaches the shards on the workers.
With REQUIRE_CITUS_TESTS=1 (CI's Citus run) a skip is a failure.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext

import accounts.migrations
from tenants import citus, services
from tenants.migrator import _disk_migrations, migrate_schemas
from tenants.models import Tenant
from tenants.provisioning import fill_pool, pool_schemas
from tests.conftest import citus_workers, tenant_nodes


def query(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def refill_pool(size: int) -> None:
    """A pool of ``size`` new schemas: built one after the other, Citus places them on the workers in turn."""
    for name in pool_schemas():
        query(f'DROP SCHEMA "{name}" CASCADE')
    fill_pool(size)


# -- Citus' rules for distributed schemas, checked on any PostgreSQL -----------------------


@pytest.mark.django_db
def test_no_foreign_key_crosses_a_tenant_schemas_boundary():
    rows = query(
        "SELECT k.conname, fn.nspname, tn.nspname FROM pg_constraint k "
        "JOIN pg_class f ON f.oid = k.conrelid JOIN pg_namespace fn ON fn.oid = f.relnamespace "
        "JOIN pg_class t ON t.oid = k.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace "
        "WHERE k.contype = 'f' AND (fn.nspname = 'acme' OR tn.nspname = 'acme')"
    )
    assert rows, "accounts' tables reference each other inside the schema"
    assert [row for row in rows if row[1] != row[2]] == []


@pytest.mark.django_db
def test_ids_in_tenant_schemas_are_bigint():
    rows = query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'acme' AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')"
    )
    assert {row[0] for row in rows} >= {"accounts_tenantuser", "accounts_authtoken", "accounts_auditevent"}
    assert [row for row in rows if row[2] != "bigint"] == []


# -- On Citus --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_tenant_and_pool_schema_is_distributed_and_the_registry_stays_on_the_coordinator(on_citus):
    fill_pool(2)
    distributed = {row[0] for row in query("SELECT schema_name::text FROM citus_schemas")}
    tenants = set(Tenant.objects.values_list("schema_name", flat=True))
    assert {"acme", "globex"} <= tenants
    assert tenants <= distributed
    assert set(pool_schemas()) <= distributed
    # Citus knows no table of public: the registry is made of plain tables on the coordinator.
    public_in_citus = query(
        "SELECT c.relname FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    )
    assert public_in_citus == []
    # Each schema's tables live together on one worker; the demo tenants on different ones.
    nodes = tenant_nodes()
    assert set(nodes) == tenants and set(nodes.values()) <= set(citus_workers())
    assert {nodes["acme"], nodes["globex"]} == set(citus_workers())


def test_new_tenants_go_to_the_worker_holding_fewest_tenants(on_citus, committed_db):
    refill_pool(8)
    with connection.cursor() as cursor:
        assert set(citus.schema_nodes(cursor, pool_schemas()).values()) == set(citus_workers())
    for number in range(6):
        placed = Counter(tenant_nodes().values())
        load = {node: placed[node] for node in citus_workers()}
        tenant_id = f"spread-{number}"
        committed_db.append(tenant_id)
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
        assert load[tenant_nodes()[tenant_id]] == min(load.values()), load
    assert set(tenant_nodes()[f"spread-{number}"] for number in range(6)) == set(citus_workers())


TASK = re.compile(r"Task Count: (\d+)")
NODE = re.compile(r"Node: host=(\S+) port=(\d+)")


def nodes_of_request(client_call) -> list[tuple[str, int, set[str]]]:
    """Run a request; EXPLAIN each statement it sent: (statement, Citus tasks, nodes) of the distributed ones."""
    with CaptureQueriesContext(connection) as captured:
        response = client_call()
    assert response.status_code < 300, response.content
    routed = []
    connection.set_schema("acme")
    for entry in captured.captured_queries:
        statement = entry["sql"]
        if not statement.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            continue
        plan = "\n".join(row[0] for row in query("EXPLAIN " + statement))
        tasks = TASK.search(plan)
        if tasks:
            routed.append((statement, int(tasks.group(1)), {f"{h}:{p}" for h, p in NODE.findall(plan)}))
    connection.set_schema_to_public()
    return routed


@pytest.mark.parametrize("method", ["list users", "create a user"])
def test_a_tenants_request_runs_on_its_worker_alone(on_citus, alice, method):
    node = tenant_nodes()["acme"]
    if method == "list users":
        routed = nodes_of_request(lambda: alice.get("/api/users"))
    else:
        routed = nodes_of_request(lambda: alice.post("/api/users", {"name": "Routed", "password": "routed-pass-1"}))
    assert routed, "the request read its tenant's tables"
    for statement, tasks, nodes in routed:
        assert (tasks, nodes) == (1, {node}), statement


MIGRATION = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "{after}")]
    operations = [
        migrations.AddField("tenantuser", "nickname", models.CharField(max_length=40, default="", blank=True)),
        migrations.AddField("tenantuser", "rank", models.PositiveSmallIntegerField(default=0)),
    ]
"""


@pytest.fixture
def added_field(tmp_path, monkeypatch, settings):
    """The project's migrations plus one AddField of accounts, from a scratch copy (never the repository)."""
    package = tmp_path / "accounts_migrations_plus"
    shutil.copytree(Path(accounts.migrations.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    _, latest = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("accounts")[0]
    (package / "0099_tenantuser_nickname_rank.py").write_text(MIGRATION.format(after=latest))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings.MIGRATION_MODULES = {"accounts": "accounts_migrations_plus"}
    _disk_migrations.cache_clear()
    yield
    _disk_migrations.cache_clear()


def shard_columns(schema: str, table: str) -> dict[str, set[str]]:
    """Columns of the table's shard, read on the worker that holds it."""
    placements = query(
        "SELECT shardid, nodename, nodeport FROM citus_shards WHERE table_name = %s::regclass",
        [f'"{schema}".{table}'],
    )
    assert len(placements) == 1
    shard_id, host, port = placements[0]
    settings = connection.settings_dict
    with psycopg.connect(
        host=host, port=port, dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None
    ) as conn:
        conn.execute("SET citus.override_table_visibility = off")  # Citus hides shards from clients by default
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            [schema, f"{table}_{shard_id}"],
        ).fetchall()
    return {f"{host}:{port}": {row[0] for row in rows}}


def test_added_fields_reach_the_shards_on_both_workers(on_citus, committed_db, request):
    refill_pool(2)
    ids = ["addfield-a", "addfield-b"]
    committed_db.extend(ids)
    for tenant_id in ids:
        services.provision_tenant(tenant_id=tenant_id, name=tenant_id)
    assert {tenant_nodes()[tenant_id] for tenant_id in ids} == set(citus_workers())

    def columns_on_workers() -> dict[str, set[str]]:
        found = {}
        for tenant_id in ids:
            found.update(shard_columns(tenant_id, "accounts_tenantuser"))
        assert set(found) == set(citus_workers())
        return found

    assert all("username" in cols and "nickname" not in cols for cols in columns_on_workers().values())
    request.getfixturevalue("added_field")
    report = migrate_schemas(ids)  # the first by Django's executor, the second by replaying its SQL
    assert sorted(report.migrated) == ids and report.failed == {}
    assert all({"nickname", "rank"} <= cols for cols in columns_on_workers().values())
    # A positive integer's CHECK, which Citus accepts in ADD COLUMN only when named, has the
    # name PostgreSQL gives it on a single server.
    for tenant_id in ids:
        checks = query(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c'",
            [f'"{tenant_id}".accounts_tenantuser'],
        )
        assert ("accounts_tenantuser_rank_check",) in checks
