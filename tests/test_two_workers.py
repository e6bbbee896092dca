"""Suspension, reactivation and plan changes reach every worker process within a second.

Starts gunicorn with two worker processes against the test database, warms both
workers' registry caches, changes the tenant, and after one second expects every
answer, from both workers, to reflect the change. The worker that served a request
is read from gunicorn's access log (its pid).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from accounts import services as account_services
from tenants import services
from tenants.models import Plan, Tenant

PROPAGATION_SECONDS = 1.0


def database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "", safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{quote(db['USER'])}{password}@{host}{port}/{quote(db['NAME'])}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    log = tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "2"]
    command += ["--bind", f"127.0.0.1:{port}", "--access-logfile", str(log), "--access-logformat", "%(p)s %(s)s %(U)s"]
    process = subprocess.Popen(
        command,
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield port, log
    finally:
        process.terminate()
        process.wait(10)


def get(port: int, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/me", headers={"X-Tenant-ID": "relay", "Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            import json

            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def answers_from_both_workers(port: int, token: str, log: Path) -> list[tuple[int, dict]]:
    """Requests, four at a time, until each of the two workers has answered at least three."""
    answers: list[tuple[int, dict]] = []
    offset = log.stat().st_size if log.exists() else 0
    with ThreadPoolExecutor(4) as pool:
        for _ in range(50):
            answers += list(pool.map(lambda _: get(port, token), range(4)))
            time.sleep(0.02)  # let the access log reach the file
            pids = [line.split()[0] for line in log.read_text()[offset:].splitlines() if "/api/me" in line]
            if len(set(pids)) >= 2 and min(pids.count(pid) for pid in set(pids)) >= 3:
                return answers
    raise AssertionError("the requests never reached both workers")


def test_changes_reach_both_workers_within_a_second(committed_db, server):
    port, log = server
    committed_db.append("relay")
    connection.set_schema_to_public()  # whatever the previous test's requests left selected
    tenant = services.provision_tenant(tenant_id="relay", name="Relay")
    with schema_context("relay"):
        token = account_services.issue_token(
            account_services.create_user(tenant, username="ray", name="Ray", role="admin")
        )

    assert {status for status, _ in answers_from_both_workers(port, token, log)} == {200}

    services.set_tenant_active("relay", False)
    time.sleep(PROPAGATION_SECONDS)
    assert {status for status, _ in answers_from_both_workers(port, token, log)} == {403}

    services.set_tenant_active("relay", True)
    time.sleep(PROPAGATION_SECONDS)
    answers = answers_from_both_workers(port, token, log)
    assert {status for status, _ in answers} == {200}
    assert {body["plan"] for _, body in answers} == {"starter"}

    # A bare UPDATE, as from psql: no Django signal, only the database's notification.
    Tenant.objects.filter(pk="relay").update(plan=Plan.objects.get(pk="enterprise"))
    time.sleep(PROPAGATION_SECONDS)
    answers = answers_from_both_workers(port, token, log)
    assert {(body["plan"], body["settings"]["max_users"]) for _, body in answers} == {("enterprise", 100)}
