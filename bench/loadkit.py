"""What the load and fault scripts share: a scratch database, a gunicorn server of the app, an HTTP client.

Everything runs on this machine: the server listens on 127.0.0.1 only, and each
script creates its own database (and drops it), so it never touches the data of
`make run` or of the tests.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PASSWORD = "demo-pass-2024"


@dataclass(frozen=True)
class Server:
    """Where a PostgreSQL server is: a Unix socket directory or a TCP host, and who to log in as."""

    host: str
    port: str = ""
    user: str = "postgres"
    password: str = ""

    def conninfo(self, dbname: str) -> dict[str, str]:
        info = {"host": self.host, "user": self.user, "dbname": dbname, "connect_timeout": "2"}
        if self.port:
            info["port"] = self.port
        if self.password:
            info["password"] = self.password
        return info

    def url(self, dbname: str) -> str:
        """A DATABASE_URL for the app; a socket directory goes in the host part, percent-encoded."""
        credentials = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        port = f":{self.port}" if self.port else ""
        return f"postgres://{credentials}@{quote(self.host, safe='')}{port}/{dbname}"


def configured_server() -> Server:
    """DATABASE_URL's server when it is set, else the checkout's embedded one (started if needed)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        import dj_database_url

        parsed = dj_database_url.parse(url)
        return Server(
            host=parsed["HOST"] or "localhost",
            port=str(parsed["PORT"] or ""),
            user=parsed["USER"] or "postgres",
            password=parsed["PASSWORD"] or "",
        )
    sys.path.insert(0, str(REPO))
    from config.embedded_postgres import ensure_running

    settings = ensure_running()
    return Server(host=settings["HOST"], port=settings["PORT"], user=settings["USER"])


def recreate_database(server: Server, name: str) -> None:
    """A fresh database; on a Citus coordinator, on every node with Citus in it."""
    import psycopg

    sys.path.insert(0, str(REPO))
    from tenants import citus

    with psycopg.connect(**server.conninfo("postgres"), autocommit=True) as conn:
        citus.recreate_database(conn, name)


def drop_database(server: Server, name: str) -> None:
    import psycopg

    sys.path.insert(0, str(REPO))
    from tenants import citus

    with psycopg.connect(**server.conninfo("postgres"), autocommit=True) as conn:
        citus.drop_database(conn, name)


def app_env(database_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "DEMO_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
    # One log line per request would cost more than some requests.
    env.setdefault("LOG_LEVEL", "WARNING")
    env.pop("DEBUG", None)
    return env


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL, timeout=300
    )


def prepare_database(env: dict[str, str]) -> None:
    """Migrate the scratch database and load the demo tenants and users."""
    manage(env, "migrate_schemas", "-v", "0")
    manage(env, "seed_demo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict[str, str], port: int, log_path: Path, workers: int = 2, threads: int = 4):
    """The app under gunicorn on 127.0.0.1, in its own process group so it can be stopped whole."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - handed to the child, closed with it
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            f"--workers={workers}",
            "--worker-class=gthread",
            f"--threads={threads}",
            # Clients keep their connection between requests; a short keep-alive would close it under them.
            "--keep-alive=30",
            "--timeout=60",
            "--graceful-timeout=5",
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process_group(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_until_serving(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _ = Client(port).call("GET", "/admin/tenants")
            if status in (200, 401, 403):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Answer:
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)
    body: object
    seconds: float
    error: str = ""


@dataclass
class Client:
    """One keep-alive HTTP connection to 127.0.0.1:port; the Host header chooses platform or tenant."""

    port: int
    timeout: float = 30.0
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def call(
        self, method: str, path: str, body: object = None, host: str = "", headers: dict[str, str] | None = None
    ) -> tuple[int, object]:
        answer = self.send(method, path, body, host, headers)
        if answer.status == 0:
            raise ConnectionError(answer.error)
        return answer.status, answer.body

    def send(
        self, method: str, path: str, body: object = None, host: str = "", headers: dict[str, str] | None = None
    ) -> Answer:
        all_headers = {"Host": host or f"127.0.0.1:{self.port}", "Accept": "application/json", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._conn.request(method, path, body=payload, headers=all_headers)
            response = self._conn.getresponse()
            raw = response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            return Answer(0, None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - started
        try:
            parsed: object = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw[:200].decode(errors="replace")
        return Answer(status, parsed, elapsed)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def staff_token(client: Client) -> str:
    status, body = client.call("POST", "/admin/auth/token", {"username": "admin", "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"staff login failed: {status} {body}")
    return body["token"]


def tenant_token(client: Client, tenant: str, username: str) -> str:
    status, body = client.call(
        "POST", "/api/auth/token", {"username": username, "password": PASSWORD}, headers={"X-Tenant-ID": tenant}
    )
    if status != 200:
        raise RuntimeError(f"login of {username} on {tenant} failed: {status} {body}")
    return body["token"]


def half_made_tenants(conninfo: dict[str, str]) -> list[str]:
    """Tenants missing their schema or their primary domain, and tenant-like schemas without a tenant row."""
    import psycopg

    with psycopg.connect(**conninfo) as conn:
        rows = conn.execute(
            """
            SELECT 'tenant without schema: ' || t.id FROM public.tenants_tenant t
             WHERE NOT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = t.schema_name)
            UNION ALL
            SELECT 'tenant without domain: ' || t.id FROM public.tenants_tenant t
             WHERE NOT EXISTS (SELECT 1 FROM public.tenants_domain d WHERE d.tenant_id = t.id AND d.is_primary)
            UNION ALL
            SELECT 'schema without tenant: ' || n.nspname FROM pg_namespace n
             WHERE n.nspname NOT IN ('public', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
               AND NOT EXISTS (SELECT 1 FROM public.tenants_tenant t WHERE t.schema_name = n.nspname)
               -- an extension's own schemas (Citus has two)
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                                AND d.objid = n.oid AND d.deptype = 'e')
            """
        ).fetchall()
    return [row[0] for row in rows]
