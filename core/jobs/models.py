"""The jobs staff and tenant admins see: what was asked, how far it got, and how it ended.

The queue itself is procrastinate's (its tables sit next to this one in the public schema);
a Job row is the project's record of one piece of long work, with its tenant, its progress
and its result, kept after the queue has forgotten the work.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Job(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(max_length=40, help_text="What the job does, e.g. tenant.export")
    # A plain id, not a foreign key: the record of a job outlives a purged tenant.
    tenant_id = models.CharField(max_length=63, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100")
    params = models.JSONField(default=dict, blank=True, help_text="The job's input")
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Runs started so far")
    requested_by = models.CharField(max_length=160, blank=True, default="")
    # The file the job produced, in the "archives" storage.
    artifact = models.CharField(max_length=255, blank=True, default="")
    queue_job_id = models.BigIntegerField(null=True, blank=True, help_text="procrastinate's job id")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "kind", "-created_at"], name="jobs_of_tenant")]
        constraints = [models.CheckConstraint(condition=models.Q(progress__lte=100), name="job_progress_0_100")]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
