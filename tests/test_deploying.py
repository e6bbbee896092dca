"""The README's "Deploying" section, run as written: the Procfile's processes with production settings.

Each line of the Procfile is started through the shell, as a process manager would, with
``PRODUCTION=1`` and the environment the README lists: ``release`` migrates and collects
the static files, ``web`` serves behind a proxy it trusts (TRUSTED_PROXIES) with HTTPS
enforced, and ``worker`` runs the jobs the web process queues.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from core.jobs.models import Job
from tests.conftest import JsonClient, database_url, free_port

PROCFILE = Path(settings.BASE_DIR) / "Procfile"
BASE_DOMAIN = "saas.example"


def procfile() -> dict[str, str]:
    lines = [line.split(":", 1) for line in PROCFILE.read_text().splitlines() if line.strip()]
    return {name.strip(): command.strip() for name, command in lines}


@pytest.fixture(scope="module")
def production_env(tmp_path_factory) -> dict[str, str]:
    """The variables the README's "Deploying" section sets, with this test session's database."""
    folder = tmp_path_factory.mktemp("deploy")
    key_file = folder / "jwt-signing-key.pem"
    key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    venv_bin = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        # The test session's apps (its example tenant app), so its database is up to date for them.
        "DJANGO_SETTINGS_MODULE": "tests.process_settings",
        "PRODUCTION": "1",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "DATABASE_URL": database_url(),
        "TENANT_BASE_DOMAIN": BASE_DOMAIN,
        "TRUSTED_PROXIES": "127.0.0.1/32",
        "JWT_PRIVATE_KEY_FILE": str(key_file),
        "ARCHIVE_ROOT": str(settings.ARCHIVE_ROOT),
        "WEB_CONCURRENCY": "2",
        "BIND": "127.0.0.1",
        "PORT": str(free_port()),
    }


@contextmanager
def started(command: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"the web process ended: {process.stderr.read().decode()[-2000:]}")
        try:
            fetch(port, "/", {"Host": BASE_DOMAIN})
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the web process never answered")


def test_the_procfile_names_a_release_a_web_and_a_worker_process():
    assert set(procfile()) == {"release", "web", "worker"}


def test_release_migrates_and_collects_the_static_files(production_env, committed_db):
    finished = subprocess.run(
        ["sh", "-c", procfile()["release"]],
        cwd=settings.BASE_DIR,
        env=production_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert (Path(settings.STATIC_ROOT) / "admin" / "css" / "base.css").exists()


def test_the_first_staff_user_is_made_with_createsuperuser(production_env, committed_db):
    username = f"ops-{secrets.token_hex(4)}"
    env = {**production_env, "DJANGO_SUPERUSER_PASSWORD": "a-long-staff-password"}
    command = ["python", "manage.py", "createsuperuser", "--noinput", "--username", username, "--email", "ops@x.test"]
    finished = subprocess.run(command, cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr[-2000:]
    staff = get_user_model().objects.get(username=username)
    try:
        assert staff.is_staff and staff.is_superuser
        signed_in = JsonClient().post("/admin/auth/token", {"username": username, "password": "a-long-staff-password"})
        assert signed_in.status_code == 200
    finally:
        staff.delete()


def test_web_serves_https_only_behind_its_trusted_proxy(production_env, committed_db, keys):
    port = int(production_env["PORT"])
    with started(procfile()["web"], production_env) as web:
        wait_for_port(port, web)
        # Plain HTTP is sent to HTTPS.
        status, headers, _ = fetch(port, "/admin/tenants", {"Host": BASE_DOMAIN})
        assert (status, headers["Location"]) == (301, f"https://{BASE_DOMAIN}/admin/tenants")

        # Through the proxy, which terminated TLS: served, with HSTS for the tenants' subdomains too.
        proxied = {"Host": BASE_DOMAIN, "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        status, headers, body = fetch(port, "/admin/tenants", {**proxied, "Authorization": f"Token {keys.admin}"})
        assert status == 200, body[:500]
        assert "acme" in {tenant["id"] for tenant in json.loads(body)["tenants"]}
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"

        as_tenant = {**proxied, "X-Tenant-ID": "acme", "Authorization": f"Token {keys.alice}"}
        status, _, body = fetch(port, "/api/me", as_tenant)
        assert (status, json.loads(body)["id"]) == (200, "acme")

        # A host outside the platform's domain is refused, as JSON on an API route.
        status, _, body = fetch(port, "/api/me", {**as_tenant, "Host": "evil.example"})
        assert status == 400 and "error" in json.loads(body)


def test_worker_runs_the_jobs_the_web_process_queues(production_env, committed_db, keys):
    port = int(production_env["PORT"])
    connection.set_schema_to_public()
    with started(procfile()["web"], production_env) as web, started(procfile()["worker"], production_env):
        wait_for_port(port, web)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/tenants/acme/exports",
            data=b"{}",
            method="POST",
            headers={
                "Host": BASE_DOMAIN,
                "X-Forwarded-Proto": "https",
                "Content-Type": "application/json",
                "Authorization": f"Token {keys.admin}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            job_id = json.loads(response.read())["id"]
        for _ in range(600):
            job = Job.objects.get(pk=job_id)
            if job.finished:
                break
            time.sleep(0.1)
    assert (job.status, job.error) == ("done", "")
    assert job.result["rows"]
