"""What the views of both APIs share about jobs: the 202 answer and the download of a job's file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response

from api.openapi import error
from api.serializers import JobSerializer
from core.jobs.models import Job
from core.jobs.selectors import artifact_of

STAFF_DOWNLOAD = "/admin/jobs/{id}/download"
TENANT_DOWNLOAD = "/api/exports/{id}/download"


def job_data(job: Job, request: Request, download_url: str) -> dict:
    return JobSerializer(job, context={"request": request, "download_url": download_url}).data


def jobs_data(jobs: list[Job], request: Request, download_url: str) -> list[dict]:
    return JobSerializer(jobs, many=True, context={"request": request, "download_url": download_url}).data


def accepted(job: Job, request: Request, download_url: str) -> Response:
    """202: the work is queued; the body is the job to follow."""
    return Response(job_data(job, request, download_url), status=status.HTTP_202_ACCEPTED)


@contextmanager
def uploaded_file_path(upload: UploadedFile) -> Iterator[str]:
    """A path to the uploaded file on disk: Django's own temporary file, or one written here."""
    if isinstance(upload, TemporaryUploadedFile):
        yield upload.temporary_file_path()
        return
    with tempfile.NamedTemporaryFile(suffix=".upload") as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield copy.name


class FileNegotiation(DefaultContentNegotiation):
    """Downloads answer with the file whatever ``Accept`` says, and errors with JSON (the first renderer)."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        return renderers[0], renderers[0].media_type


def download(job: Job, content_type: str) -> FileResponse:
    """The file a done job made, as an attachment named after it."""
    handle = artifact_of(job)
    return FileResponse(handle, as_attachment=True, filename=os.path.basename(job.artifact), content_type=content_type)


def download_responses(content_type: str, what: str) -> dict:
    return {
        (200, content_type): OpenApiResponse(OpenApiTypes.BINARY, description=what),
        404: error("No such job, or it failed and made no file."),
        409: error("The job has not finished yet."),
    }
