"""A job kind for the tests of the job machinery: steps of sleep, with progress, told to fail or not.

The workers the tests start import it (``tests.process_settings``).
"""

from __future__ import annotations

import time

from django.db import OperationalError

from core.errors import Invalid
from core.jobs.models import Job
from core.jobs.services import JobRun, job_task

STEPS = "test.steps"


@job_task(STEPS)
def steps(run: JobRun) -> dict:
    count = run.params.get("steps", 3)
    for step in range(count):
        time.sleep(run.params.get("seconds", 0.05))
        run.progress(100 * (step + 1) / count)
    if run.params.get("refuse"):
        raise Invalid("told to refuse")
    if run.params.get("flaky") and run.job.attempts == 1:
        raise OperationalError("connection lost (on purpose, first attempt only)")
    return {"steps": count, "attempt": run.job.attempts, "kind": Job.objects.get(pk=run.job.pk).kind}
