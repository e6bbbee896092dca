"""What the views of both APIs share about jobs: the 202 answer and the download of a job's file."""

from __future__ import annotations

import os

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from api.openapi import error
from api.serializers import JobSerializer
from jobs.models import Job
from jobs.selectors import artifact_of


def accepted(job: Job) -> Response:
    """202: the work is queued; the body is the job to follow."""
    return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class FileRenderer(BaseRenderer):
    """Lets a client ask for the file's type (``Accept``); the file itself is sent as it is stored."""

    media_type = "application/octet-stream"
    format = "file"
    charset = None
    render_style = "binary"

    def render(self, data: object, accepted_media_type: str | None = None, renderer_context: dict | None = None):
        return data


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
