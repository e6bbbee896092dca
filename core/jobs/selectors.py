"""Reads of jobs."""

from __future__ import annotations

from django.core.files import File
from django.db.models import QuerySet

from core.jobs.errors import JobNotFinished, JobNotFound, NoArtifact
from core.jobs.models import Job
from core.jobs.storage import archives
from core.validation import parse_id


def get_job(raw_id: str, *, tenant_id: str | None = None, kinds: tuple[str, ...] | None = None) -> Job:
    """The job with this URL id, within a tenant's and kinds' jobs when given; JobNotFound otherwise."""
    job_id = parse_id(raw_id)
    jobs = Job.objects.all()
    if tenant_id is not None:
        jobs = jobs.filter(tenant_id=tenant_id)
    if kinds is not None:
        jobs = jobs.filter(kind__in=kinds)
    job = jobs.filter(pk=job_id).first() if job_id is not None else None
    if job is None:
        raise JobNotFound()
    return job


def jobs_of(tenant_id: str, kinds: tuple[str, ...]) -> QuerySet[Job]:
    """A tenant's jobs of these kinds, newest first."""
    return Job.objects.filter(tenant_id=tenant_id, kind__in=kinds).order_by("-created_at", "-id")


def artifact_of(job: Job) -> File:
    """The file a finished job made, opened for reading."""
    if not job.finished:
        raise JobNotFinished()
    if job.status != Job.Status.DONE or not job.artifact or not archives().exists(job.artifact):
        raise NoArtifact()
    return archives().open(job.artifact, "rb")
