"""Background jobs on procrastinate: queued with the change that asks for them, run by a real worker
process, with progress, a result or an error, retries of what may pass, and no job left ``running``
when its worker is killed.
"""

from __future__ import annotations

import io

import pytest
from django.db import connection, transaction

import tenants.services
from core.jobs import services
from core.jobs.models import Job
from tests import job_tasks
from tests.conftest import JsonClient, wait_for


def job_state(job_id: int) -> Job:
    return Job.objects.get(pk=job_id)


def finished(job_id: int) -> Job | None:
    job = job_state(job_id)
    return job if job.status in ("done", "failed") else None


@pytest.fixture
def job_ids(committed_db) -> list[int]:
    """Jobs the test commits; deleted afterwards."""
    created: list[int] = []
    yield created
    Job.objects.filter(pk__in=created).delete()


def enqueue(job_ids: list[int], **params: object) -> Job:
    job = services.enqueue(job_tasks.STEPS, tenant_id="acme", params=params, requested_by="platform:tests")
    job_ids.append(job.pk)
    return job


def test_a_worker_runs_a_job_to_done_with_progress(workers, job_ids, keys):
    job = enqueue(job_ids, steps=20, seconds=0.1)
    assert job_state(job.pk).status == "queued"
    workers()
    seen = wait_for(lambda: (j := job_state(job.pk)).status == "running" and 0 < j.progress < 100 and j, 30, "progress")
    assert seen.started_at is not None and seen.finished_at is None
    done = wait_for(lambda: finished(job.pk), 30, "the job to end")
    assert (done.status, done.progress, done.attempts, done.error) == ("done", 100, 1, "")
    assert done.result == {"steps": 20, "attempt": 1, "kind": "test.steps"}

    answer = JsonClient(token=keys.admin).get(f"/admin/jobs/{job.pk}")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"id", "kind", "tenant", "status", "progress", "created_at", "finished_at", "result", "error"}
    assert body["id"] == str(job.pk) and body["kind"] == "test.steps" and body["tenant"] == "acme"
    assert (body["status"], body["progress"], body["error"]) == ("done", 100, None)
    assert body["finished_at"] >= body["created_at"] > 0


def test_a_refused_job_fails_with_its_reason_and_is_not_retried(workers, job_ids):
    job = enqueue(job_ids, steps=1, refuse=True)
    workers()
    failed = wait_for(lambda: finished(job.pk), 30, "the job to end")
    assert (failed.status, failed.error, failed.attempts, failed.result) == ("failed", "told to refuse", 1, None)
    assert failed.finished_at is not None


def test_a_transient_failure_is_retried_to_done(workers, job_ids):
    job = enqueue(job_ids, steps=1, flaky=True)
    workers()
    done = wait_for(lambda: finished(job.pk), 30, "the job to end")
    assert (done.status, done.attempts, done.result["attempt"]) == ("done", 2, 2)


def test_a_job_whose_worker_is_killed_is_never_left_running(workers, job_ids):
    """SIGKILL mid-job: the job stays 'running' only until another worker sees the silence, then runs again."""
    job = enqueue(job_ids, steps=40, seconds=0.1)
    first = workers()
    wait_for(lambda: job_state(job.pk).progress >= 10, 30, "the job to make progress")
    first.kill()
    stuck = job_state(job.pk)
    assert stuck.status == "running" and stuck.progress < 100

    workers()  # the survivor: notices the dead worker's silence, gives the job back, runs it
    done = wait_for(lambda: finished(job.pk), 60, "the killed job to end")
    assert done.status == "done", done.error
    assert done.attempts == 2 and done.result["attempt"] == 2


def test_retries_are_bounded_when_workers_keep_dying(workers, job_ids):
    job = enqueue(job_ids, steps=40, seconds=0.1)
    for _ in range(2):  # JOB_RETRIES=1 below: the first run and one retry, both killed
        worker = workers(JOB_RETRIES="1")
        attempts = job_state(job.pk).attempts
        wait_for(lambda a=attempts: (j := job_state(job.pk)).attempts > a and j.progress >= 5, 60, "a run")
        worker.kill()
    workers(JOB_RETRIES="1")
    failed = wait_for(lambda: finished(job.pk), 60, "the job to be failed")
    assert failed.status == "failed" and "stopped" in failed.error and failed.attempts == 2


def test_a_job_is_queued_only_if_the_change_that_asked_for_it_commits(committed_db):
    before = Job.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_jobs")
        queued_before = cursor.fetchone()[0]
    with pytest.raises(RuntimeError), transaction.atomic():
        services.enqueue(job_tasks.STEPS, params={})
        raise RuntimeError("the change fails")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM procrastinate_jobs")
        assert cursor.fetchone()[0] == queued_before
    assert Job.objects.count() == before


@pytest.mark.django_db
def test_unknown_jobs_and_non_staff(staff, alice):
    assert staff.get("/admin/jobs/999999999").json() == {"error": "Job not found"}
    assert staff.get("/admin/jobs/abc").status_code == 404
    assert JsonClient(token="nope").get("/admin/jobs/1").status_code == 401


EVENTS = 200_000


@pytest.fixture
def bulky(committed_db, job_ids) -> str:
    """A committed tenant with a long audit trail, so that its export takes a few seconds."""
    committed_db.append("bulky")
    committed_db.append("bulky-copy")
    connection.set_schema_to_public()
    tenants.services.provision_tenant(tenant_id="bulky", name="Bulky")
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO "bulky".accounts_auditevent (created_at, actor_kind, actor, action, target, after) '
            "SELECT now(), 'system', 'system', 'test.fill', 'row:' || n, jsonb_build_object('n', n) "
            "FROM generate_series(1, %s) AS n",
            [EVENTS],
        )
    return "bulky"


def test_a_worker_killed_mid_export_and_the_import_of_its_archive(workers, job_ids, bulky, keys):
    job = tenants.services.request_export(bulky)
    job_ids.append(job.pk)
    first = workers()
    # Under way: its rows are being dumped (progress 2 to 90; the archive is written after 90).
    # Not a narrower window: on a Citus coordinator the first batch of the big table arrives
    # late and the rest at once, so a fast machine can go from 3 to 87 between two polls.
    wait_for(lambda: 2 <= job_state(job.pk).progress < 90, 60, "the export to be under way")
    first.kill()
    assert job_state(job.pk).status == "running"

    workers()
    done = wait_for(lambda: finished(job.pk), 90, "the export to end")
    assert done.status == "done" and done.attempts == 2, done.error
    assert done.result["rows"]["accounts_auditevent"] == EVENTS + 2  # and tenant.create, tenant.export

    # The archive goes back in as another tenant, through the API and the same worker.
    staff = JsonClient(token=keys.admin)
    download = staff.get(f"/admin/jobs/{job.pk}")
    data = b"".join(staff.get(download.json()["result"]["download"]).streaming_content)
    upload = io.BytesIO(data)
    upload.name = "bulky.tar.gz"
    queued = staff.post(
        "/admin/tenants/import", {"archive": upload, "id": "bulky-copy"}, content_type="multipart/form-data"
    )
    assert queued.status_code == 202
    job_ids.append(int(queued.json()["id"]))
    imported = wait_for(lambda: finished(int(queued.json()["id"])), 90, "the import to end")
    assert imported.status == "done", imported.error
    assert staff.get("/admin/tenants/bulky-copy").json()["state"] == "active"
    with connection.cursor() as cursor:
        cursor.execute('SELECT count(*) FROM "bulky-copy".accounts_auditevent')
        assert cursor.fetchone()[0] == EVENTS + 3  # and tenant.import
