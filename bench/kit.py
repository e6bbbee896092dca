"""What the benchmark scripts share: the database server, the app under gunicorn, an HTTP client, percentiles.

Used by run.py (tenancy benchmark), load.py (load test) and faults.py (database faults).
Everything runs on this machine: the app listens on 127.0.0.1 only, and each script works
in a database of its own, re-created when it starts, so it never touches the data of
`make run` or of the tests.

Percentiles (p50, p95, p99) are linear interpolation between the two nearest ranks, as
numpy computes them by default: p50 is the median (``statistics.median``), and a p99 lies
between the two largest of 100 values rather than being one of them.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PASSWORD = "demo-pass-2024"


# -- the database server ----------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseServer:
    """Where a PostgreSQL server is: a Unix socket directory or a TCP host, and who to log in as."""

    host: str
    port: str = ""
    user: str = "postgres"
    password: str = ""
    options: str = ""  # the query string of DATABASE_URL (sslmode=...), handed on to the app as given

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
        query = f"?{self.options}" if self.options else ""
        return f"postgres://{credentials}@{quote(self.host, safe='')}{port}/{dbname}{query}"


def configured_database_server() -> DatabaseServer:
    """DATABASE_URL's server when it is set, else the checkout's embedded one (started if needed)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        import dj_database_url

        parsed = dj_database_url.parse(url)
        return DatabaseServer(
            host=parsed["HOST"] or "localhost",
            port=str(parsed["PORT"] or ""),
            user=parsed["USER"] or "postgres",
            password=parsed["PASSWORD"] or "",
            options=urlsplit(url).query,
        )
    sys.path.insert(0, str(REPO))
    from config.embedded_postgres import ensure_running

    settings = ensure_running()
    return DatabaseServer(host=settings["HOST"], port=settings["PORT"], user=settings["USER"])


@contextlib.contextmanager
def _maintenance_database(server: DatabaseServer):
    """A connection (autocommit) to the server's maintenance database, with the app's code importable."""
    import psycopg

    sys.path.insert(0, str(REPO))
    with psycopg.connect(**server.conninfo("postgres"), autocommit=True) as conn:
        yield conn


def recreate_database(server: DatabaseServer, name: str) -> None:
    """An empty database `name`, whatever was there before (connections to it are cut).

    On a Citus coordinator it is made on every node, with Citus in it (tenants.citus).
    """
    with _maintenance_database(server) as conn:
        from tenants import citus

        citus.recreate_database(conn, name)


def drop_database(server: DatabaseServer, name: str) -> None:
    with _maintenance_database(server) as conn:
        from tenants import citus

        citus.drop_database(conn, name)


# -- the app: its environment, its commands, its server ---------------------------------------


def app_env(database_url: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "DEMO_PASSWORD": PASSWORD, "PYTHONUNBUFFERED": "1"}
    # One log line per request would cost more than some requests.
    env.setdefault("LOG_LEVEL", "WARNING")
    env.pop("DEBUG", None)
    return env


def manage(env: dict[str, str], *args: str, cwd: Path = REPO) -> tuple[float, str]:
    """Run a manage.py command of the code in `cwd`; its wall-clock seconds and its output."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, (done.stdout + done.stderr).strip()


def prepare_database(env: dict[str, str]) -> None:
    """Migrate the scratch database and load the demo tenants and users."""
    manage(env, "migrate_schemas", "-v", "0")
    manage(env, "seed_demo")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_app_server_arguments(parser: argparse.ArgumentParser) -> None:
    """--workers and --threads of the gunicorn that serves the app under load (2 x 4 unless told)."""
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")


class AppServer:
    """The app under gunicorn on 127.0.0.1 and a free port, in its own process group so that it stops whole.

    ``threads=0`` runs gunicorn's default sync workers (one request at a time each, a new
    connection per request); ``threads > 0`` runs gthread workers, which keep a client's
    connection open between requests. ``settings`` is a Django settings module (else the
    environment's, else ``config.settings``). The app's database connections carry the
    application_name ``bench-<name>``, so that the CPU time of their PostgreSQL backends
    can be counted with the workers'. The constructor returns once the app answers HTTP.
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        name: str = "app",
        settings: str | None = None,
        workers: int = 2,
        threads: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.name = name
        self.port = free_port()
        self._database_url = env["DATABASE_URL"]
        self._monitor = None  # a connection of our own that reads pg_stat_activity, opened when needed
        separator = "&" if "?" in self._database_url else "?"
        env = {**env, "DATABASE_URL": f"{self._database_url}{separator}application_name=bench-{name}"}
        if settings:
            env["DJANGO_SETTINGS_MODULE"] = settings
        command = [sys.executable, "-m", "gunicorn", "config.wsgi:application", f"--bind=127.0.0.1:{self.port}"]
        command += [f"--workers={workers}", "--log-level=warning", "--timeout=60", "--graceful-timeout=5"]
        if threads:
            # Clients keep their connection between requests; a short keep-alive would close it under them.
            command += ["--worker-class=gthread", f"--threads={threads}", "--keep-alive=30"]
        if log_path:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        # The child keeps its own copy of the log file's descriptor; without a log it writes to ours.
        with open(log_path, "w") if log_path else contextlib.nullcontext() as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                start_new_session=True,
            )
        try:
            self._wait_until_serving()
        except BaseException:
            self.stop()
            raise

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_serving(self, timeout: float = 30.0) -> None:
        """Until any HTTP answer below 500 (a 401, a 404 of another URL conf): a worker has loaded the app."""
        client = Client(self.port, timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited with status {self.process.returncode}")
            if 0 < client.send("GET", "/admin/tenants").status < 500:
                client.close()
                return
            time.sleep(0.1)
        raise RuntimeError(f"the app ({self.name}) did not answer on 127.0.0.1:{self.port} within {timeout:.0f} s")

    def worker_pids(self) -> list[int]:
        return [int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if _ppid(stat) == self.process.pid]

    def worker_rss_mb(self) -> float:
        """Resident memory of the largest worker, in MiB."""
        return max((memory_mb(pid)[0] for pid in self.worker_pids()), default=0.0)

    def backend_pids(self) -> list[int]:
        """The PostgreSQL backends of this app's connections (by their application_name)."""
        import psycopg

        if self._monitor is None:
            # No prepared statements: the app's URL may be a pooler in transaction mode.
            self._monitor = psycopg.connect(self._database_url, autocommit=True, prepare_threshold=None)
        rows = self._monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [f"bench-{self.name}"]
        ).fetchall()
        return [row[0] for row in rows]

    def backend_memory_mb(self) -> tuple[float, float]:
        """Resident and private (anonymous) memory of the largest of this app's PostgreSQL backends, in MiB.

        (0, 0) when the server runs on another host. Resident memory also counts the pages of
        shared_buffers the backend has read; private memory is its own (caches included).
        """
        sizes = [memory_mb(pid) for pid in self.backend_pids()]
        return max((rss for rss, _ in sizes), default=0.0), max((own for _, own in sizes), default=0.0)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the workers and of their PostgreSQL backends so far."""
        ticks = 0
        for pid in self.backend_pids() + self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a backend of another host, or gone: not counted
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, RssAnon) of a process in MiB; zeros for a process that is gone or elsewhere."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return tuple(int(fields.get(name, "0 kB").split()[0]) / 1024 for name in ("VmRSS", "RssAnon"))


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


# -- HTTP ------------------------------------------------------------------------------------


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
        """The answer and its wall-clock time, connecting (again) first if needed."""
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


def lift_limits(client: Client, staff: str, tenants: Iterable[str]) -> None:
    """No rate limit, room for a million users and a far monthly quota in each tenant: the load is never refused."""
    for tenant in tenants:
        status, body = client.call(
            "PATCH",
            f"/admin/tenants/{tenant}",
            {"rate_limit_per_minute": 0, "max_users": 1_000_000, "requests_per_month": 10**12},
            headers={"Authorization": f"Token {staff}"},
        )
        if status != 200:
            raise RuntimeError(f"lifting the limits of {tenant} failed: {status} {body}")


# -- figures and checks ----------------------------------------------------------------------


def percentile(values: Iterable[float], percent: int) -> float:
    """The percent-th percentile (1 to 99), interpolated linearly between the nearest ranks; 0.0 for no values."""
    if not 1 <= percent <= 99:
        raise ValueError(f"percent must be 1 to 99, not {percent}")
    data = list(values)
    if len(data) < 2:
        return data[0] if data else 0.0
    return statistics.quantiles(data, n=100, method="inclusive")[percent - 1]


def print_rows(rows: list[tuple[str, object]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


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
