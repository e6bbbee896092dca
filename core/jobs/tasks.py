"""The queue's own upkeep: jobs whose worker died are retried, or failed once their retries are spent.

A worker sends a heartbeat every ``JOB_STALLED_SECONDS / 4``; procrastinate lists as stalled the
jobs still ``doing`` on a worker silent for longer than ``JOB_STALLED_SECONDS``. A SIGKILL, an
out-of-memory kill or a lost machine leaves exactly that; this periodic task, run by any live
worker, gives such a job back to the queue (or fails it) and says so on its Job.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from procrastinate import JobContext
from procrastinate.contrib.django import app
from procrastinate.jobs import Status

from core.jobs import services

# Twice per stall period (six-field cron: the last field is seconds).
_EVERY = max(1, min(30, settings.JOB_STALLED_SECONDS // 2))


@app.periodic(cron=f"* * * * * */{_EVERY}", periodic_id="recover-stalled-jobs")
@app.task(name="jobs.recover_stalled", queueing_lock="jobs.recover_stalled", pass_context=True)
async def recover_stalled(context: JobContext, timestamp: int) -> int:
    """Retry (or fail) the jobs of workers that stopped sending heartbeats; returns how many."""
    manager = context.app.job_manager
    stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=settings.JOB_STALLED_SECONDS))
    for queued in stalled:
        retrying = queued.attempts < settings.JOB_RETRIES
        job_id = (queued.task_kwargs or {}).get("job_id")
        # Our record first: once the queue has the job back, a worker may start it at once.
        if isinstance(job_id, int):
            await sync_to_async(services.abandoned)(job_id, retrying=retrying)
        if retrying:
            await manager.retry_job(queued)
        else:
            await manager.finish_job(queued, status=Status.FAILED, delete_job=False)
    return len(stalled)
