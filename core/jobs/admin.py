"""Jobs in the Django admin: every job with a live progress bar and, once done, a download link."""

from __future__ import annotations

from django.contrib import admin
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.safestring import SafeString

from core.errors import ServiceError
from core.jobs.models import Job
from core.jobs.selectors import artifact_of


def job_progress(job: Job) -> SafeString:
    """A progress bar that follows the job (jobs/progress.js), its state, and its download link once done."""
    done = job.status == Job.Status.DONE and job.artifact
    # The template escapes every value; what it renders is safe to put in a page as it is.
    return render_to_string(
        "jobs/job_progress.html",
        {
            "job": job,
            "poll_url": reverse("admin:jobs_job_status", args=[job.pk]),
            "download_url": reverse("admin:jobs_job_download", args=[job.pk]) if done else "",
        },
    )


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "tenant_id", "progress_bar", "requested_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    search_fields = ["tenant_id", "kind", "requested_by"]
    fields = [
        "kind",
        "tenant_id",
        "progress_bar",
        "attempts",
        "requested_by",
        "params",
        "result",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields

    class Media:
        js = ["jobs/progress.js"]

    @admin.display(description="progress")
    def progress_bar(self, job: Job) -> SafeString:
        return job_progress(job)

    # Jobs are made by the services that queue them and changed only by the workers that run them.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return False

    def get_urls(self) -> list:
        own = [
            path("<int:job_id>/status/", self.admin_site.admin_view(self.status_view), name="jobs_job_status"),
            path("<int:job_id>/download/", self.admin_site.admin_view(self.download_view), name="jobs_job_download"),
        ]
        return own + super().get_urls()

    def _job(self, request: HttpRequest, job_id: int) -> Job:
        job = Job.objects.filter(pk=job_id).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404("No such job")
        return job

    def status_view(self, request: HttpRequest, job_id: int) -> JsonResponse:
        job = self._job(request, job_id)
        result = dict(job.result or {})
        if job.status == Job.Status.DONE and job.artifact:
            result["download"] = reverse("admin:jobs_job_download", args=[job.pk])
        return JsonResponse({"status": job.status, "progress": job.progress, "error": job.error, "result": result})

    def download_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        job = self._job(request, job_id)
        try:
            handle = artifact_of(job)
        except ServiceError as exc:
            raise Http404(str(exc)) from exc
        return FileResponse(handle, as_attachment=True, filename=job.artifact.rsplit("/", 1)[-1])
