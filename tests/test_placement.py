"""Where tenants live, and moving them (SPEC 9): GET /admin/tenants/{id}'s placement, GET /admin/nodes,
POST /admin/tenants/{id}/move.

On a single PostgreSQL server placement is null and the nodes and moves answer 409; on a
Citus cluster they show and move schemas between the workers. The tests whose name says
"on this database" check whichever of the two the suite runs on.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from accounts.models import TenantUser
from accounts.services import issue_token
from core.jobs.models import Job
from core.jobs.services import run_now
from core.models import AuditEvent
from tenants import citus, services
from tests.conftest import JsonClient, citus_workers, tenant_nodes

SINGLE_SERVER = "Tenant placement needs a Citus cluster; this database is a single PostgreSQL server"


def run_move(answer) -> Job:
    """The move job a 202 answer queued, run here (as a job worker would run it)."""
    assert answer.status_code == 202, answer.content
    assert answer.json()["kind"] == "tenant.move"
    assert answer.json()["status"] == "queued"
    return run_now(Job.objects.get(pk=answer.json()["id"]))


def on_citus() -> bool:
    return citus.enabled(connection)


def test_placement_of_a_tenant_on_this_database(staff):
    placement = staff.get("/admin/tenants/acme").json()["placement"]
    assert placement == ({"node": tenant_nodes()["acme"]} if on_citus() else None)


def test_nodes_on_this_database(staff):
    response = staff.get("/admin/nodes")
    if not on_citus():
        assert (response.status_code, response.json()) == (409, {"error": SINGLE_SERVER})
        return
    assert response.status_code == 200
    nodes = response.json()["nodes"]
    assert [node["node"] for node in nodes] == sorted(citus_workers())
    placed = list(tenant_nodes().values())
    assert {node["node"]: node["tenants"] for node in nodes} == {node: placed.count(node) for node in citus_workers()}
    assert all(node["bytes"] > 0 for node in nodes if node["tenants"])


@pytest.mark.parametrize(
    ("tenant", "body", "status", "error"),
    [
        ("nobody", {"node": "127.0.0.1:1"}, 404, "Tenant not found"),
        ("acme", {}, 400, "Invalid node: This field is required."),
        ("acme", {"node": 9701}, 400, "Invalid node: Must be a string."),
        ("acme", {"node": "127.0.0.1:9701", "force": True}, 400, None),
    ],
)
def test_move_refuses_bad_requests_before_anything_moves(staff, tenant, body, status, error):
    before = staff.get("/admin/tenants/acme").json()["placement"]
    response = staff.post(f"/admin/tenants/{tenant}/move", body)
    assert response.status_code == status
    if error:
        assert response.json()["error"] == error
    assert "error" in response.json()
    assert staff.get("/admin/tenants/acme").json()["placement"] == before


def test_move_on_this_database_refuses_an_unknown_node(staff):
    response = staff.post("/admin/tenants/acme/move", {"node": "127.0.0.1:1"})
    if not on_citus():
        assert (response.status_code, response.json()) == (409, {"error": SINGLE_SERVER})
        return
    assert response.status_code == 400
    message = f"Unknown node: 127.0.0.1:1; the workers are {', '.join(sorted(citus_workers()))}"
    assert response.json() == {"error": message, "detail": {"node": [message]}}


def test_move_to_the_node_it_is_on_is_a_conflict(on_citus, staff):
    node = tenant_nodes()["acme"]
    response = staff.post("/admin/tenants/acme/move", {"node": node})
    assert (response.status_code, response.json()) == (409, {"error": f"Tenant is already on {node}"})


def test_only_platform_staff_move_tenants(on_citus, alice, anon):
    other = next(node for node in citus_workers() if node != tenant_nodes()["acme"])
    assert alice.post("/admin/tenants/acme/move", {"node": other}).status_code in (401, 403)
    assert anon.post("/admin/tenants/acme/move", {"node": other}).status_code in (401, 403)
    assert tenant_nodes()["acme"] != other


def test_a_tenant_moves_with_its_data_and_the_move_is_audited(on_citus, committed_db, keys):
    staff = JsonClient(token=keys.admin)
    committed_db.append("mover")
    services.provision_tenant(tenant_id="mover", name="Mover")
    with schema_context("mover"):
        for number in range(20):
            TenantUser.objects.create(username=f"user{number}", name=f"User {number}")
    source = tenant_nodes()["mover"]
    target = next(node for node in citus_workers() if node != source)

    job = run_move(staff.post("/admin/tenants/mover/move", {"node": target}))

    seen = staff.get(f"/admin/jobs/{job.pk}").json()
    assert (seen["status"], seen["progress"], seen["tenant"]) == ("done", 100, "mover"), seen
    assert seen["result"] == {"from": source, "to": target}
    detail = staff.get("/admin/tenants/mover").json()
    assert detail["placement"] == {"node": target}
    assert detail["user_count"] == 20
    assert tenant_nodes()["mover"] == target
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT nodename || ':' || nodeport FROM citus_shards WHERE table_name::text LIKE 'mover.%%'"
        )
        assert [row[0] for row in cursor.fetchall()] == [target]
    with schema_context("mover"):
        assert sorted(TenantUser.objects.values_list("username", flat=True)) == sorted(f"user{n}" for n in range(20))
        TenantUser.objects.create(username="after-move", name="After")  # writes go to the new node
        event = AuditEvent.objects.filter(action="tenant.move").get()
    assert (event.actor_kind, event.actor) == ("platform", "admin")
    assert (event.before, event.after) == ({"node": source}, {"node": target})
    assert staff.get("/admin/tenants/mover").json()["user_count"] == 21


def test_a_second_move_of_the_same_tenant_while_one_runs_is_refused(on_citus, staff):
    """A running move holds the tenant's move lock; another connection stands in for it here."""
    other = next(node for node in citus_workers() if node != tenant_nodes()["acme"])
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], dbname=settings["NAME"], user=settings["USER"], autocommit=False
    ) as running:
        running.execute("SELECT pg_advisory_xact_lock(%s, hashtext('acme'))", [services._LOCK_CLASS_MOVE])
        response = staff.post("/admin/tenants/acme/move", {"node": other})
    assert (response.status_code, response.json()) == (409, {"error": "A move of this tenant is already running"})
    assert tenant_nodes()["acme"] != other


def new_tenant_and_another_node(committed_db: list[str], tenant_id: str) -> str:
    """A new tenant ``tenant_id``; the worker it is not on."""
    committed_db.append(tenant_id)
    services.provision_tenant(tenant_id=tenant_id, name=tenant_id.title())
    return next(node for node in citus_workers() if node != tenant_nodes()[tenant_id])


def test_a_second_move_of_the_same_tenant_while_one_is_queued_is_refused(on_citus, committed_db, keys):
    staff = JsonClient(token=keys.admin)
    target = new_tenant_and_another_node(committed_db, "twice")
    first = staff.post("/admin/tenants/twice/move", {"node": target})
    assert first.status_code == 202

    second = staff.post("/admin/tenants/twice/move", {"node": target})

    assert (second.status_code, second.json()) == (409, {"error": "A move of this tenant is already running"})
    assert Job.objects.filter(kind="tenant.move", tenant_id="twice").count() == 1
    assert run_move(first).status == "done"
    # Once it has ended, the tenant may move again (back where it was).
    source = next(node for node in citus_workers() if node != target)
    assert run_move(staff.post("/admin/tenants/twice/move", {"node": source})).status == "done"
    assert tenant_nodes()["twice"] == source


def test_a_move_queued_for_a_tenant_already_moved_there_fails_with_the_reason(on_citus, committed_db, keys):
    """Between the request and the run, an operator moved the tenant by other means."""
    staff = JsonClient(token=keys.admin)
    target = new_tenant_and_another_node(committed_db, "raced")
    answer = staff.post("/admin/tenants/raced/move", {"node": target})
    services.move_tenant("raced", target)

    job = run_move(answer)

    assert (job.status, job.error) == ("failed", f"Tenant is already on {target}")


def test_a_tenant_moved_under_concurrent_writes_loses_none_and_answers_no_error(on_citus, committed_db, keys):
    """Writers keep creating users in the tenant while it moves: every acknowledged write is there
    afterwards, no request fails, and at least 200 writes were acknowledged while a move ran (the
    tenant moves back and forth until they were, so that the count does not hang on the machine's
    speed). How long writes paused is measured by the benchmark."""
    committed_db.append("busy")
    services.provision_tenant(tenant_id="busy", name="Busy", plan="enterprise")
    services.update_tenant("busy", {"max_users": 1_000_000, "rate_limit_per_minute": 0})
    with schema_context("busy"):
        token = issue_token(TenantUser.objects.create(username="boss", name="Boss", role="admin"), "tests")
        # Some data to copy, so that a move is not over in an instant.
        TenantUser.objects.bulk_create(TenantUser(username=f"old{n}", name=f"Old {n}") for n in range(5000))
    nodes = citus_workers()

    stop = threading.Event()
    answers: list[tuple[float, float, int, str]] = []  # started, answered, status, username
    lock = threading.Lock()

    def write(worker: int) -> None:
        client = JsonClient(token=token, tenant="busy")
        try:
            for number in range(1_000_000):
                if stop.is_set():
                    return
                username = f"w{worker}-{number}"
                started = time.monotonic()
                status = client.post("/api/users", {"username": username, "name": username}).status_code
                with lock:
                    answers.append((started, time.monotonic(), status, username))
        finally:
            connections.close_all()

    moves: list[tuple[float, float, Job, str]] = []  # started, ended, job, target
    writers = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    for writer in writers:
        writer.start()
    try:
        while len(answers) < 20:  # the writers are under way before the move starts
            time.sleep(0.01)
        while len(moves) < 12:
            target = next(node for node in nodes if node != tenant_nodes()["busy"])
            answer = JsonClient(token=keys.admin).post("/admin/tenants/busy/move", {"node": target})
            started = time.monotonic()
            job = run_move(answer)
            moves.append((started, time.monotonic(), job, target))
            if job.status != "done":
                break
            with lock:
                during = [a for a in answers if any(s <= a[1] <= e for s, e, *_ in moves)]
            if len(during) >= 200:
                break
        time.sleep(0.3)  # and keep writing on the new node for a moment
    finally:
        stop.set()
        for writer in writers:
            writer.join()

    assert [(job.status, job.error) for _, _, job, _ in moves] == [("done", "")] * len(moves)
    assert tenant_nodes()["busy"] == moves[-1][3]
    assert {status for _, _, status, _ in answers} == {201}
    during = [a for a in answers if any(s <= a[1] <= e for s, e, *_ in moves)]
    assert len(during) >= 200, f"{len(during)} writes acknowledged during {len(moves)} moves"
    with schema_context("busy"):
        stored = set(TenantUser.objects.filter(username__startswith="w").values_list("username", flat=True))
    assert stored == {username for *_, username in answers}
