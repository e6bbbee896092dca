"""The registry's background jobs: full exports and imports of tenants, moves between nodes, the hourly purge."""

from __future__ import annotations

import tempfile

from django.utils import timezone
from procrastinate.contrib.django import app

from core.audit import Actor
from core.jobs.models import Job
from core.jobs.services import JobRun, job_task
from core.jobs.storage import archives
from tenants import services
from tenants.archive import TenantArchive, write_archive
from tenants.errors import AlreadyOnNode, TenantNotFound
from tenants.models import Tenant


@app.periodic(cron="17 * * * *", periodic_id="purge-tenants")
@app.task(name="tenants.purge_due", queueing_lock="tenants.purge_due")
def purge_due(timestamp: int) -> list[str]:
    """Hourly: drop the schemas of tenants deleted longer ago than TENANT_DELETE_GRACE_DAYS."""
    return services.purge_due_tenants()


def _stamp() -> str:
    return timezone.now().strftime("%Y%m%dT%H%M%SZ")


@job_task(services.TENANT_EXPORT)
def export_tenant(run: JobRun) -> dict:
    """The tenant's full archive (tenants.archive), kept as the job's file."""
    tenant = Tenant.objects.select_related("plan").filter(pk=run.job.tenant_id).first()
    if tenant is None:
        raise TenantNotFound()
    with tempfile.TemporaryFile() as out:
        archive = write_archive(tenant, out, run.progress)
        out.seek(0)
        run.save_artifact(f"{tenant.id}-{_stamp()}.tar.gz", out)
    return {"bytes": archive.size, "sha256": archive.sha256, "rows": archive.row_counts}


def _delete_upload(job: Job) -> None:
    archives().delete(job.params["upload"])


@job_task(services.TENANT_IMPORT, on_end=_delete_upload)
def import_tenant(run: JobRun) -> dict:
    """A new tenant from an uploaded archive; the job's end is recorded in the import's own transaction."""
    params = run.params
    storage = archives()

    def done(tenant: Tenant, archive: TenantArchive) -> None:
        run.complete({"tenant": tenant.id, "source": archive.tenant_id, "rows": archive.row_counts})

    with storage.open(params["upload"], "rb") as source:
        services.import_tenant(
            source,
            storage.size(params["upload"]),
            tenant_id=params["id"],
            name=params.get("name"),
            actor=Actor(**params["actor"]),
            progress=run.progress,
            on_imported=done,
        )
    return run.job.result


@job_task(services.TENANT_MOVE)
def move_tenant(run: JobRun) -> dict:
    """The tenant's schema to another Citus worker (``services.move_tenant``); its result names both nodes."""
    node = run.params["node"]
    run.progress(1)
    try:
        source, target = services.move_tenant(run.job.tenant_id, node, actor=Actor(**run.params["actor"]))
    except AlreadyOnNode:
        if run.job.attempts <= 1:
            raise
        # A retry after the move committed (the worker stopped before recording the job's end).
        return {"from": None, "to": node}
    return {"from": source, "to": target}
