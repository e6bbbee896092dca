"""Writes to the tenant registry: provisioning, changes by the platform, suspension, reactivation.

The platform API, the Django admin, the management commands and the tests call these
functions, so every path applies the same rules in the same transaction and leaves the
same audit event in the tenant's schema.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import IntegrityError, connection, transaction
from django.db.utils import ProgrammingError
from django.utils import timezone
from django_tenants.utils import schema_context
from psycopg import sql

from core import audit
from core.audit import SYSTEM, Actor
from core.jobs import services as job_services
from core.jobs.models import Job
from core.jobs.storage import archives
from tenants import citus, plans
from tenants.archive import TenantArchive, inspect_archive, load_archive
from tenants.errors import (
    AlreadyOnNode,
    GracePeriodOver,
    InvalidTenantId,
    MoveRunning,
    NotDistributed,
    NotOnCitus,
    TenantAlreadyExists,
    TenantDeleted,
    TenantNotDeleted,
    TenantNotFound,
    UnknownNode,
    UnknownPlan,
)
from tenants.ids import validate_tenant_id
from tenants.migrator import advisory_xact_lock, migrate_with_executor
from tenants.models import Domain, Plan, Tenant, TenantTombstone
from tenants.provisioning import create_schema
from tenants.selectors import get_tenant, lock_tenant, platform_events

TENANT_EXPORT = "tenant.export"
TENANT_IMPORT = "tenant.import"
TENANT_MOVE = "tenant.move"


def primary_domain_for(tenant_id: str) -> str:
    return f"{tenant_id}.{settings.TENANT_BASE_DOMAIN}"


def _plan(plan_id: str) -> Plan:
    plan = Plan.objects.filter(pk=plan_id).first()
    if plan is None:
        raise UnknownPlan(plan_id)
    return plan


def audited_view(tenant: Tenant) -> dict:
    """What the audit trail keeps of a tenant: its profile and the platform's overrides."""
    return {
        "id": tenant.id,
        "name": tenant.name,
        "plan": tenant.plan_id,
        "active": tenant.active,
        "state": tenant.state,
        "created_at": int(tenant.created_at.timestamp()),
        "overrides": plans.overrides_of(tenant),
    }


def _record(tenant: Tenant, action: str, actor: Actor, before: dict | None, after: dict | None) -> None:
    audit.record_in_schema(tenant.schema_name, action, actor, f"tenant:{tenant.id}", before, after)


def _lock_live_tenant(tenant_id: str) -> Tenant:
    """The tenant, locked, unless it is deleted: a deleted tenant changes only by restore or purge."""
    tenant = lock_tenant(tenant_id)
    if tenant.deleted_at is not None:
        raise TenantDeleted()
    return tenant


def _checked_id(tenant_id: str) -> str:
    try:
        validate_tenant_id(tenant_id)
    except ValidationError as exc:
        raise InvalidTenantId(exc.messages[0]) from exc
    return tenant_id


def _create_schema_named(schema: str) -> None:
    """An empty schema; TenantAlreadyExists if one of that name exists without a registry row."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)).as_string(cursor.connection))
    except ProgrammingError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == "42P06":
            raise TenantAlreadyExists() from exc
        raise


def provision_tenant(
    *,
    tenant_id: str,
    name: str,
    plan: str = plans.DEFAULT_PLAN,
    created_at: datetime.datetime | None = None,
    populate: Callable[[Tenant], None] | None = None,
    actor: Actor = SYSTEM,
) -> Tenant:
    """Register a tenant, create its schema and its primary domain, as one unit.

    ``populate(tenant)`` runs last, in the new tenant's schema and in the same unit (the
    first admin of ``accounts.services.provision_tenant_with_admin``); if it raises,
    nothing of the tenant is left.

    PostgreSQL's DDL is transactional, so a failure at any step rolls back the row, the
    domain and the schema together. Two simultaneous creates of the same id meet at the
    primary key: the second waits for the first and then fails with TenantAlreadyExists.
    """
    _checked_id(tenant_id)
    # The registry lives in the public schema; a caller may have left the connection on a tenant's.
    connection.set_schema_to_public()
    with transaction.atomic():
        plan_row = _plan(plan)
        if Tenant.objects.filter(pk=tenant_id).exists():
            raise TenantAlreadyExists()
        tenant = Tenant(id=tenant_id, name=name, plan=plan_row)
        if created_at is not None:
            tenant.created_at = created_at
        try:
            with transaction.atomic():
                tenant.save(force_insert=True)
                Domain.objects.create(domain=primary_domain_for(tenant_id), tenant=tenant, is_primary=True)
        except (IntegrityError, ValidationError) as exc:
            # IntegrityError: the primary key, when the other create commits after our insert.
            # ValidationError: django-tenants' own schema-name check in save(), when it commits
            # between our exists() and that check (seen under load in the parallel-create test).
            raise TenantAlreadyExists() from exc
        try:
            with transaction.atomic():
                create_schema(tenant)
            _record(tenant, "tenant.create", actor, None, audited_view(tenant))
            if populate is not None:
                with schema_context(tenant.schema_name):
                    populate(tenant)
        except ProgrammingError as exc:
            # A schema of that name exists without a registry row (made by hand).
            if getattr(exc.__cause__, "sqlstate", None) == "42P06":
                raise TenantAlreadyExists() from exc
            raise
        finally:
            connection.set_schema_to_public()
    return tenant


def update_tenant(tenant_id: str, changes: dict, actor: Actor = SYSTEM) -> Tenant:
    """Change a tenant's name, plan, creation time or plan overrides (platform only).

    ``changes`` may hold ``name``, ``plan`` (a plan id), ``created_at`` and the keys of
    ``plans.OVERRIDE_FIELDS`` (None returns a value to the plan's).
    """
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = _lock_live_tenant(tenant_id)
        before = audited_view(tenant)
        if "plan" in changes:
            tenant.plan = _plan(changes["plan"])
        for field in ("name", "created_at"):
            if field in changes:
                setattr(tenant, field, changes[field])
        for key, field in plans.OVERRIDE_FIELDS.items():
            if key in changes:
                setattr(tenant, field, changes[key])
        tenant.save()
        _record(tenant, "tenant.update", actor, before, audited_view(tenant))
    return tenant


def set_tenant_active(tenant_id: str, active: bool, actor: Actor = SYSTEM) -> Tenant:
    """Suspend (``active=False``) or reactivate a tenant."""
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = _lock_live_tenant(tenant_id)
        before = {"active": tenant.active}
        if tenant.active != active:
            tenant.active = active
            tenant.save(update_fields=["active"])
        _record(tenant, "tenant.activate" if active else "tenant.suspend", actor, before, {"active": tenant.active})
    return tenant


def delete_tenant(tenant_id: str, actor: Actor = SYSTEM) -> Tenant:
    """Take a tenant out of service at once and keep its data for TENANT_DELETE_GRACE_DAYS.

    Its id stays taken and its schema, domains and audit trail stay as they are; tenant routes
    answer "Unknown tenant" on every worker as soon as this commits (the registry's NOTIFY
    trigger clears every worker's cache). Deleting a deleted tenant changes nothing.
    """
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = lock_tenant(tenant_id)
        if tenant.deleted_at is not None:
            return tenant
        before = audited_view(tenant)
        tenant.deleted_at = timezone.now()
        tenant.purge_after = tenant.deleted_at + datetime.timedelta(days=settings.TENANT_DELETE_GRACE_DAYS)
        tenant.save(update_fields=["deleted_at", "purge_after"])
        after = {**audited_view(tenant), "purge_after": int(tenant.purge_after.timestamp())}
        _record(tenant, "tenant.delete", actor, before, after)
    return tenant


def restore_tenant(tenant_id: str, actor: Actor = SYSTEM) -> Tenant:
    """Bring a deleted tenant back, within its grace period, in the state it had (active or suspended)."""
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = lock_tenant(tenant_id)
        if tenant.deleted_at is None:
            raise TenantNotDeleted()
        if tenant.purge_after <= timezone.now():
            raise GracePeriodOver()
        before = audited_view(tenant)
        tenant.deleted_at = tenant.purge_after = None
        tenant.save(update_fields=["deleted_at", "purge_after"])
        _record(tenant, "tenant.restore", actor, before, audited_view(tenant))
    return tenant


def _drop_schema(schema: str) -> None:
    with connection.cursor() as cursor:
        # Rows written earlier in this transaction may have deferred foreign-key checks pending,
        # and PostgreSQL drops no table with pending trigger events: run the checks first.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)).as_string(cursor.connection))
        # Django's foreign keys are deferred until commit; so again are they for the rest of the transaction.
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def purge_due_tenants(actor: Actor = SYSTEM) -> list[str]:
    """Purge every deleted tenant whose grace period is over; returns their ids.

    Each tenant goes in its own transaction: its schema is dropped, its registry row, domains
    and rate counters deleted (the id is free again), the files its jobs made deleted once
    that commits, and a tombstone keeps the platform's audit trail of it, the purge included.
    A tenant restored meanwhile is left alone.
    """
    connection.set_schema_to_public()
    due = list(
        Tenant.objects.filter(deleted_at__isnull=False, purge_after__lte=timezone.now())
        .order_by("purge_after")
        .values_list("id", flat=True)
    )
    purged = []
    for tenant_id in due:
        with transaction.atomic():
            tenant = lock_tenant(tenant_id)
            now = timezone.now()
            if tenant.deleted_at is None or tenant.purge_after > now:
                continue
            purge_event = {
                "created_at": now.timestamp(),
                "actor": {"kind": actor.kind, "name": actor.name},
                "action": "tenant.purge",
                "target": f"tenant:{tenant.id}",
                "before": audited_view(tenant),
                "after": None,
            }
            TenantTombstone.objects.create(
                tenant_id=tenant.id,
                name=tenant.name,
                plan_id=tenant.plan_id,
                created_at=tenant.created_at,
                deleted_at=tenant.deleted_at,
                purged_at=now,
                audit_trail=[*platform_events(tenant), purge_event],
            )
            _drop_schema(tenant.schema_name)
            Tenant.objects.filter(pk=tenant.id).delete()
            job_services.forget_files_of(tenant.id)
        purged.append(tenant_id)
    return purged


def request_export(tenant_id: str, actor: Actor = SYSTEM) -> Job:
    """Queue a full export of the tenant (deleted ones too: an operator may hand their data over)."""
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = lock_tenant(tenant_id)
        job = job_services.enqueue(TENANT_EXPORT, tenant_id=tenant.id, requested_by=actor.label)
        _record(tenant, "tenant.export", actor, None, {"job": job.pk})
    return job


def request_import(
    archive_path: str | Path, *, tenant_id: str | None = None, name: str | None = None, actor: Actor = SYSTEM
) -> Job:
    """Check an uploaded archive through and through, keep it, and queue its import as a new tenant.

    Refuses (ArchiveInvalid, 400) a corrupt, truncated, tampered or foreign archive, and an id
    that is invalid or taken (409), before anything is kept or queued.
    """
    archive = inspect_archive(archive_path)
    new_id = _checked_id(tenant_id or archive.tenant_id)
    connection.set_schema_to_public()
    if Tenant.objects.filter(pk=new_id).exists():
        raise TenantAlreadyExists()
    with open(archive_path, "rb") as source:
        stored = archives().save(f"imports/{uuid.uuid4().hex}.tar.gz", File(source))
    params = {
        "upload": stored,
        "id": new_id,
        "name": name,
        "source": archive.tenant_id,
        "sha256": archive.sha256,
        "actor": {"kind": actor.kind, "name": actor.name},
    }
    try:
        return job_services.enqueue(TENANT_IMPORT, tenant_id=new_id, params=params, requested_by=actor.label)
    except BaseException:
        archives().delete(stored)
        raise


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z){_LABEL}(?:\.{_LABEL})+\Z")


def _carried_domains(domains: list[dict]) -> list[str]:
    """The archive's other host names that a tenant imported under its own id keeps: well-formed, free,
    and not one of the platform's own hosts."""
    kept = []
    for domain in domains:
        host = domain["domain"]
        if domain["is_primary"] or not _HOST_NAME.match(host) or host in settings.PUBLIC_HOSTS:
            continue
        if not Domain.objects.filter(domain=host).exists():
            kept.append(host)
    return kept


def _plan_from(document: dict) -> Plan:
    """The plan of that id here; one made from the archive's definition if this server lacks it."""
    plan = Plan.objects.filter(pk=document["id"]).first()
    fields = ("id", "name", "max_users", "features", "rate_limit_per_minute")
    return plan or Plan.objects.create(**{field: document[field] for field in fields})


def import_tenant(
    source: IO[bytes],
    size: int,
    *,
    tenant_id: str,
    name: str | None = None,
    actor: Actor = SYSTEM,
    progress: Callable[[float], None] = lambda percent: None,
    on_imported: Callable[[Tenant, TenantArchive], None] | None = None,
) -> tuple[Tenant, TenantArchive]:
    """Create the tenant ``tenant_id`` from an archive, in one transaction: all of it or nothing.

    Its registry row (name, plan and its overrides, state, creation time) comes from the archive;
    its primary domain is ``<tenant_id>.<TENANT_BASE_DOMAIN>``; imported under its own id, it
    keeps the archive's other domains that are well-formed host names, not the platform's, and
    free. Its schema is migrated to the archive's state, filled, and migrated to this code's state.
    The import is audited in the new tenant's trail, and ``on_imported(tenant, archive)`` runs
    last, in the same transaction (the job records its end).
    """
    _checked_id(tenant_id)
    connection.set_schema_to_public()
    created: list[Tenant] = []

    def register(archive: TenantArchive) -> None:
        source_row = archive.registry["tenant"]
        tenant = Tenant(
            id=tenant_id,
            name=name or source_row["name"],
            plan=_plan_from(archive.registry["plan"]),
            active=source_row["active"],
            created_at=datetime.datetime.fromisoformat(source_row["created_at"]),
        )
        for field in plans.OVERRIDE_FIELDS.values():
            setattr(tenant, field, source_row.get(field))
        try:
            with transaction.atomic():
                tenant.save(force_insert=True)
                Domain.objects.create(domain=primary_domain_for(tenant_id), tenant=tenant, is_primary=True)
        except IntegrityError as exc:
            raise TenantAlreadyExists() from exc
        if tenant_id == archive.tenant_id:
            for host in _carried_domains(archive.registry["domains"]):
                Domain.objects.create(domain=host, tenant=tenant, is_primary=False)
        _create_schema_named(tenant.schema_name)
        created.append(tenant)

    with transaction.atomic():
        if Tenant.objects.filter(pk=tenant_id).exists():
            raise TenantAlreadyExists()
        try:
            archive = load_archive(source, tenant_id, ready=register, progress=lambda p: progress(p * 0.9), size=size)
            tenant = created[0]
            progress(92)
            migrate_with_executor(tenant.schema_name)
            after = {
                **audited_view(tenant),
                "source": archive.tenant_id,
                "archive_sha256": archive.sha256,
                "rows": archive.row_counts,
            }
            _record(tenant, "tenant.import", actor, None, after)
            if on_imported is not None:
                on_imported(tenant, archive)
        finally:
            connection.set_schema_to_public()
    return tenant, archive


# Advisory lock class of moves, apart from the pool's (0x5EED, 0x5EEE) and the migrator's (0x5EEF):
# a migration of the schema must not read as "a move of this tenant is already running".
_LOCK_CLASS_MOVE = 0x5EF0


def _move_plan(cursor, tenant: Tenant, node: str) -> tuple[str, str]:
    """(the node the tenant is on, the address of ``node``'s worker); refuses a move that cannot be made."""
    workers = citus.worker_nodes(cursor)
    if node not in workers:
        raise UnknownNode(node, list(workers))
    source = citus.schema_nodes(cursor, [tenant.schema_name]).get(tenant.schema_name)
    if source is None:
        raise NotDistributed()
    if source == node:
        raise AlreadyOnNode(node)
    return source, workers[node]


def _cluster_tenant(tenant_id: str) -> Tenant:
    connection.set_schema_to_public()
    tenant = get_tenant(tenant_id)
    if tenant is None:
        raise TenantNotFound()
    if not citus.enabled(connection):
        raise NotOnCitus()
    return tenant


def request_move(tenant_id: str, node: str, actor: Actor = SYSTEM) -> Job:
    """Queue a move of the tenant to another Citus worker (``move_tenant``, run by a job worker).

    Refuses at once what the move itself would refuse (an unknown node, the node the tenant
    is on, a single server), and a second move of a tenant whose move is queued or running:
    requests for one tenant queue on its registry row, so two cannot both pass that check.
    """
    tenant = _cluster_tenant(tenant_id)
    with transaction.atomic():
        lock_tenant(tenant.id)
        with connection.cursor() as cursor:
            _move_plan(cursor, tenant, node)
        if not advisory_xact_lock(_LOCK_CLASS_MOVE, tenant.schema_name, wait=False):
            raise MoveRunning()  # a move made outside the jobs holds the tenant's move lock
        if Job.objects.filter(kind=TENANT_MOVE, tenant_id=tenant.id, status__in=Job.ACTIVE).exists():
            raise MoveRunning()
        params = {"node": node, "actor": {"kind": actor.kind, "name": actor.name}}
        return job_services.enqueue(TENANT_MOVE, tenant_id=tenant.id, params=params, requested_by=actor.label)


def move_tenant(tenant_id: str, node: str, actor: Actor = SYSTEM) -> tuple[str, str]:
    """Move a tenant's schema to another Citus worker while the tenant stays in use; (from, to).

    Citus copies the schema with logical replication and pauses the tenant's writes only
    for the final catch-up (``force_logical``). The move is a transaction of its own, which
    also holds a lock on the tenant's name, so a second move of the same tenant is refused
    at once rather than queued. The audit event (written in the tenant's schema, on its new
    node) follows in a transaction of its own once the move has committed: the move's
    transaction holds no writes of ours.
    """
    tenant = _cluster_tenant(tenant_id)
    with transaction.atomic(), connection.cursor() as cursor:
        if not advisory_xact_lock(_LOCK_CLASS_MOVE, tenant.schema_name, wait=False):
            raise MoveRunning()
        source, worker = _move_plan(cursor, tenant, node)
        citus.move_schema(cursor, tenant.schema_name, worker)
    with transaction.atomic():
        _record(tenant, "tenant.move", actor, {"node": source}, {"node": node})
    return source, node
