"""Background jobs inside a tenant: the workspace's own export, for its admins."""

from __future__ import annotations

import tempfile

from django.utils import timezone
from django_tenants.utils import schema_context

from accounts.exports import write_workspace_export
from accounts.services import WORKSPACE_EXPORT
from core.jobs.services import JobRun, job_task
from tenants.errors import TenantNotFound
from tenants.models import Tenant


@job_task(WORKSPACE_EXPORT)
def export_workspace(run: JobRun) -> dict:
    tenant = Tenant.objects.select_related("plan").filter(pk=run.job.tenant_id).first()
    if tenant is None:
        raise TenantNotFound()
    with tempfile.TemporaryFile() as out:
        with schema_context(tenant.schema_name):
            counts = write_workspace_export(tenant, out, run.job.requested_by, run.progress)
        size = out.tell()
        out.seek(0)
        run.save_artifact(f"{tenant.id}-workspace-{timezone.now():%Y%m%dT%H%M%SZ}.zip", out)
    return {"bytes": size, **counts}
