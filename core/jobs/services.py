"""Starting jobs and running them: the one path every background job takes.

``enqueue`` records a Job and puts it on procrastinate's queue in the caller's transaction, so
a job exists exactly when the change that asked for it commits. ``job_task(kind)`` makes a
handler a procrastinate task; the worker runs it through ``execute``, which moves the Job
from ``queued`` to ``running`` to ``done`` or ``failed``, keeps its attempts, its result or its
error, and lets procrastinate retry what may pass (a lost database connection, a killed
worker: see ``core.jobs.tasks.recover_stalled``). A handler reports progress through its
``JobRun`` and may record its own end inside its own transaction (``JobRun.complete``), so that
a retry after a crash between the work's commit and the Job's never does the work twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import IO, Any

import psycopg
from django.conf import settings
from django.core.files import File
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from procrastinate import RetryStrategy
from procrastinate.contrib.django import app

from core.errors import ServiceError
from core.jobs.models import Job
from core.jobs.storage import archives

logger = logging.getLogger("saas.jobs")

# Failures that a later run may not meet again; anything else is a refusal or a bug, and fails the job.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, psycopg.OperationalError)
RETRY = RetryStrategy(max_attempts=settings.JOB_RETRIES, wait=2, retry_exceptions=TRANSIENT_ERRORS)

Handler = Callable[["JobRun"], dict]
EndHook = Callable[[Job], None]
HANDLERS: dict[str, Handler] = {}
# Called once a job of that kind has ended for good (done, or failed with no retry to come).
END_HOOKS: dict[str, EndHook] = {}


def enqueue(kind: str, *, tenant_id: str | None = None, params: dict | None = None, requested_by: str = "") -> Job:
    """Record a job and queue it, in the caller's transaction."""
    with transaction.atomic():
        job = Job.objects.create(kind=kind, tenant_id=tenant_id, params=params or {}, requested_by=requested_by)
        job.queue_job_id = app.configure_task(name=kind).defer(job_id=job.pk)
        job.save(update_fields=["queue_job_id"])
    return job


class JobRun:
    """One run of a job, as its handler sees it: the job, its progress, its file, its end."""

    # Progress is written at most this often, so that a tight loop does not become a write loop.
    PROGRESS_INTERVAL = 0.2

    def __init__(self, job: Job) -> None:
        self.job = job
        self._side: psycopg.Connection | None = None
        self._shown = job.progress
        self._shown_at = 0.0

    @property
    def params(self) -> dict:
        return self.job.params

    def progress(self, percent: float) -> None:
        """Report how far the work is (0 to 100; 100 is only shown once the job is done).

        Written on a connection of its own, in autocommit: the handler's work may be one long
        transaction (an export reads a single snapshot), and progress must show meanwhile.
        """
        value = max(0, min(99, int(percent)))
        now = time.monotonic()
        if value <= self._shown or now - self._shown_at < self.PROGRESS_INTERVAL:
            return
        self._shown, self._shown_at = value, now
        try:
            self._side_connection().execute(
                "UPDATE jobs_job SET progress = %s WHERE id = %s AND status = 'running'", [value, self.job.pk]
            )
        except psycopg.Error:  # progress is a courtesy: the work goes on without it
            logger.warning("job %s: progress not recorded", self.job.pk, exc_info=True)
            self._close_side()

    def save_artifact(self, filename: str, content: IO[bytes]) -> str:
        """Store the file the job made (replacing one from an earlier attempt); returns its storage name."""
        name = f"jobs/{self.job.pk}/{filename}"
        storage = archives()
        if storage.exists(name):
            storage.delete(name)
        stored = storage.save(name, File(content))
        Job.objects.filter(pk=self.job.pk).update(artifact=stored)
        self.job.artifact = stored
        return stored

    def complete(self, result: dict) -> None:
        """Record the job as done; call it inside the transaction of the work when that must be atomic."""
        _record_end(self.job, Job.Status.DONE, result=result)

    def _side_connection(self) -> psycopg.Connection:
        if self._side is None:
            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._side = psycopg.connect(**params, autocommit=True)
        return self._side

    def _close_side(self) -> None:
        if self._side is not None:
            self._side.close()
            self._side = None


def _record_end(job: Job, status: str, *, result: dict | None = None, error: str = "") -> None:
    now = timezone.now()
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=status,
        progress=100 if status == Job.Status.DONE else job.progress,
        result=result,
        error=error,
        finished_at=now,
    )
    job.status, job.result, job.error, job.finished_at = status, result, error, now


def _start(job_id: int) -> Job | None:
    """Mark the job running; None if it ended already (a retry after its end was recorded) or is gone."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.finished:
            return None
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.progress = 0
        job.started_at = timezone.now()
        job.save(update_fields=["status", "attempts", "progress", "started_at"])
    return job


def error_message(exc: BaseException) -> str:
    """What a job's reader is told: a refusal's own message, never the internals of a bug."""
    if isinstance(exc, ServiceError):
        return str(exc)
    if isinstance(exc, TRANSIENT_ERRORS):
        return "The database could not be reached"
    return f"Unexpected error ({type(exc).__name__}); the worker's log has the details"


def _ended(job: Job) -> None:
    hook = END_HOOKS.get(job.kind)
    if hook is None:
        return
    try:
        hook(job)
    except Exception:  # the job's own outcome stands; the clean-up is logged
        logger.exception("job %s (%s): clean-up after the end failed", job.pk, job.kind)


def execute(job_id: int, handler: Handler, *, may_retry: Callable[[BaseException], bool]) -> None:
    """Run one attempt of a job and record how it went. Re-raises a failure, for the queue to see."""
    job = _start(job_id)
    if job is None:
        return
    run = JobRun(job)
    try:
        result = handler(run)
    except BaseException as exc:
        message = error_message(exc)
        if not isinstance(exc, ServiceError):
            logger.error("job %s (%s) failed: %s", job.pk, job.kind, exc, exc_info=exc)
        # As at the end of a request: a connection a failure broke is closed, not reused (unless
        # the caller holds a transaction on it: run_now inside a test's).
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        if may_retry(exc):
            Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
                status=Job.Status.QUEUED, error=f"{message} (attempt {job.attempts}; retrying)"
            )
        else:
            _record_end(job, Job.Status.FAILED, error=message)
            _ended(job)
        raise
    finally:
        run._close_side()
    if job.status == Job.Status.RUNNING:
        _record_end(job, Job.Status.DONE, result=result)
    _ended(job)


def abandoned(job_id: int, *, retrying: bool) -> None:
    """The worker running this job stopped without a word (killed, or its machine lost)."""
    if retrying:
        Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            status=Job.Status.QUEUED, error="The worker running this job stopped; retrying"
        )
    else:
        failed = Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(
            status=Job.Status.FAILED,
            error="The worker running this job stopped, and its retries are spent",
            finished_at=timezone.now(),
        )
        job = Job.objects.filter(pk=job_id).first()
        if failed and job is not None:
            _ended(job)


def forget_files_of(tenant_id: str) -> None:
    """Delete the files a tenant's jobs made, once the caller's transaction commits (a purge)."""
    jobs = Job.objects.filter(tenant_id=tenant_id).exclude(artifact="")
    names = list(jobs.values_list("artifact", flat=True))
    jobs.update(artifact="")

    def delete() -> None:
        for name in names:
            archives().delete(name)

    transaction.on_commit(delete)


def job_task(kind: str, *, on_end: EndHook | None = None) -> Callable[[Handler], Handler]:
    """Make ``handler(run) -> result`` the job ``kind``: a procrastinate task, retried on transient failures.

    ``on_end(job)`` runs once the job has ended for good, done or failed (to delete its input).
    """

    def register(handler: Handler) -> Handler:
        def run(context: Any, job_id: int) -> None:
            def may_retry(exc: BaseException) -> bool:
                return RETRY.get_retry_decision(exception=exc, job=context.job) is not None

            execute(job_id, handler, may_retry=may_retry)

        run.__name__ = run.__qualname__ = kind.replace(".", "_")
        app.task(name=kind, pass_context=True, retry=RETRY)(run)
        HANDLERS[kind] = handler
        if on_end is not None:
            END_HOOKS[kind] = on_end
        return handler

    return register


def run_now(job: Job) -> Job:
    """Run a queued job here and now, on this process's connection (commands and tests), without retries.

    A failure is not raised: it is on the returned job, as for a job a worker ran.
    """
    try:
        execute(job.pk, HANDLERS[job.kind], may_retry=lambda exc: False)
    except Exception:
        logger.info("job %s failed in run_now", job.pk)
    job.refresh_from_db()
    return job
