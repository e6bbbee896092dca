"""Refusals about jobs, each with the HTTP status that says why."""

from __future__ import annotations

from core.errors import Conflict, NotFound


class JobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Job not found")


class JobNotFinished(Conflict):
    def __init__(self) -> None:
        super().__init__("Job not finished yet")


class NoArtifact(NotFound):
    def __init__(self) -> None:
        super().__init__("This job has no file to download")
