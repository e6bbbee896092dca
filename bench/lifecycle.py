"""Export and import of a tenant with 10,000 users: how long they take and how large the archive is.

    python bench/lifecycle.py [--users 10000] [--runs 3]

Works in its own database, bench_lifecycle (re-created; on DATABASE_URL's server, else on the
embedded one), and a temporary ARCHIVE_ROOT. It migrates and seeds the database, then creates the
tenant ``bigco`` with ``--users`` users (each with its own password hash, an audit event for its
creation, and an API token for one user in ten), and runs the jobs as a worker runs them
(``jobs.services.run_now``, the same code path, in this process):

- the platform's full export (``tenant.export``): wall-clock time and archive size;
- the import of that archive as a new tenant: the upload's check (``request_import``, which reads
  the whole archive) and the import job, each timed;
- the workspace's own export for its admins (``workspace.export``): time and zip size.

Each is run ``--runs`` times; the table shows the median and the fastest run. Results also go to
bench/results/lifecycle.json. Password hashes are PBKDF2-SHA256 strings with a random salt and one
iteration: as long and as random as real ones (so the archive compresses as a real one would), without
spending 0.3 s of hashing per user.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.kit import RESULTS, app_env, configured_database_server, prepare_database, print_rows, recreate_database

DATABASE = "bench_lifecycle"


def setup_django(database_url: str, archive_root: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["ARCHIVE_ROOT"] = archive_root
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def make_tenant(users: int) -> None:
    from django.contrib.auth.hashers import PBKDF2PasswordHasher
    from django_tenants.utils import schema_context

    from accounts.models import AuthToken, TenantUser
    from core.models import AuditEvent, digest
    from tenants import services

    tenant = services.provision_tenant(tenant_id="bigco", name="Big Co", plan="enterprise")
    services.update_tenant("bigco", {"max_users": users + 10})
    hasher = PBKDF2PasswordHasher()
    with schema_context("bigco"):
        created = TenantUser.objects.bulk_create(
            (
                TenantUser(
                    username=f"user{n:05}",
                    name=f"User Number {n}",
                    role="admin" if n % 100 == 0 else "member",
                    email=f"user{n}@bigco.example",
                    password=hasher.encode(f"password-{n}", hasher.salt(), iterations=1),
                )
                for n in range(users)
            ),
            batch_size=2000,
        )
        AuditEvent.objects.bulk_create(
            (
                AuditEvent(
                    actor_kind="tenant",
                    actor="user00000",
                    action="user.create",
                    target=f"user:{user.pk}",
                    after={"id": user.pk, "name": user.name, "role": user.role, "username": user.username},
                )
                for user in created
            ),
            batch_size=2000,
        )
        AuthToken.objects.bulk_create(
            (
                AuthToken(
                    user=user, key_digest=digest(f"key-{user.pk}-{os.urandom(8).hex()}"), prefix="bench", name="ci"
                )
                for user in created[::10]
            ),
            batch_size=2000,
        )
    assert tenant.id == "bigco"


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()

    server = configured_database_server()
    recreate_database(server, DATABASE)
    url = server.url(DATABASE)
    print(f"migrating and seeding {DATABASE} ...", flush=True)
    prepare_database(app_env(url))
    with tempfile.TemporaryDirectory(prefix="bench-archives-") as archive_root:
        setup_django(url, archive_root)
        started = time.perf_counter()
        make_tenant(options.users)
        print(f"tenant bigco with {options.users} users made in {time.perf_counter() - started:.1f} s", flush=True)
        figures = measure(options.runs)

    figures.update(users=options.users, runs=options.runs, python=platform.python_version(), cpus=os.cpu_count())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lifecycle.json").write_text(json.dumps(figures, indent=2) + "\n")
    print_rows(
        [
            ("users", f"{options.users:,}"),
            ("rows in the archive", f"{figures['archive_rows']:,}"),
            ("export_s (median / fastest)", f"{figures['export_s']:.2f} / {figures['export_s_min']:.2f}"),
            ("archive_bytes", f"{figures['archive_bytes']:,} ({figures['archive_bytes'] / 2**20:.2f} MiB)"),
            ("unpacked_bytes", f"{figures['unpacked_bytes']:,}"),
            ("import_check_s (upload check)", f"{figures['import_check_s']:.2f} / {figures['import_check_s_min']:.2f}"),
            ("import_s (the job)", f"{figures['import_s']:.2f} / {figures['import_s_min']:.2f}"),
            ("workspace_export_s", f"{figures['workspace_export_s']:.2f} / {figures['workspace_export_s_min']:.2f}"),
            ("workspace_export_bytes", f"{figures['workspace_export_bytes']:,}"),
        ]
    )


def measure(runs: int) -> dict:
    from django.db import connection
    from django_tenants.utils import schema_context

    from accounts.services import request_workspace_export
    from core.jobs.services import run_now
    from core.jobs.storage import archives
    from tenants import services
    from tenants.archive import read_archive
    from tenants.models import Tenant

    export_s, check_s, import_s, workspace_s = [], [], [], []
    result: dict = {}
    for run in range(runs):
        job = services.request_export("bigco")
        seconds, job = timed(lambda job=job: run_now(job))
        assert job.status == "done", job.error
        export_s.append(seconds)
        result = job.result
        path = archives().path(job.artifact)

        seconds, queued = timed(lambda path=path, run=run: services.request_import(path, tenant_id=f"bigco-copy-{run}"))
        check_s.append(seconds)
        seconds, imported = timed(lambda queued=queued: run_now(queued))
        assert imported.status == "done", imported.error
        import_s.append(seconds)

        connection.set_schema_to_public()
        with schema_context("bigco"):  # as in the tenant's own request
            workspace = request_workspace_export(Tenant.objects.get(pk="bigco"))
        seconds, workspace = timed(lambda workspace=workspace: run_now(workspace))
        assert workspace.status == "done", workspace.error
        workspace_s.append(seconds)
        print(
            f"run {run + 1}: export {export_s[-1]:.2f} s, import {check_s[-1]:.2f} + {import_s[-1]:.2f} s", flush=True
        )

    manifest_rows = sum(result["rows"].values())
    with archives().open(job.artifact, "rb") as handle:
        unpacked = sum(table.bytes for table in read_archive(handle).tables)
    return {
        "export_s": statistics.median(export_s),
        "export_s_min": min(export_s),
        "archive_bytes": result["bytes"],
        "archive_rows": manifest_rows,
        "unpacked_bytes": unpacked,
        "import_check_s": statistics.median(check_s),
        "import_check_s_min": min(check_s),
        "import_s": statistics.median(import_s),
        "import_s_min": min(import_s),
        "workspace_export_s": statistics.median(workspace_s),
        "workspace_export_s_min": min(workspace_s),
        "workspace_export_bytes": workspace.result["bytes"],
        "rows_by_table": result["rows"],
    }


if __name__ == "__main__":
    main()
