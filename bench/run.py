"""The tenancy benchmark (issue 5): ``make bench`` or ``make bench TENANTS=N``.

Starts the app under gunicorn (2 worker processes) on 127.0.0.1 in three set-ups: this
project's resolution, tenancy switched off (baseline) and django-tenants' stock
middleware; drives them with wrk from this process, alternating between set-ups so that
ratios hold on a noisy machine; measures latency as tenants are added, provisioning
through ``POST /admin/tenants``, the migrate command with nothing to do and with one new
AddField (in a scratch copy of the code, never in the repository), the workers' RSS and
that of their PostgreSQL backends, the statements a warm request sends, and what a schema
new to its backend costs that backend (the view's query, and memory, on one connection). When
Debian's ``pgbouncer`` is installed, a fourth set-up serves through it in transaction
mode (``DATABASE_POOL_MODE=transaction``) and takes turns with the others. With
``--unbounded`` (``BENCH_UNBOUNDED=1``), one more set-up is this project's with no bound on
the schemas a connection serves (``DATABASE_MAX_SCHEMAS_PER_CONNECTION=0``): its latency
over every tenant and its backends' memory tell what the bound costs and what it saves.
Prints a table and writes ``bench/results/latest.json`` and ``bench/results/scaling.png``.

It works in its own database, ``bench_tenancy``, dropped and re-created on every run: on
the server of DATABASE_URL if set, else on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kit
from kit import RESULTS, AppServer

BENCH_DB = "bench_tenancy"
# The targets of the production path (issue 11, at 10,000 tenants); the printed table marks each figure.
TARGETS = {
    "overhead_ratio": (">=", 0.95),
    "api_key_ratio": (">=", 0.95),
    "jwt_ratio": (">=", 0.95),
    "speedup_vs_stock": (">=", 1.6),
    "p50_ratio_n_10": ("<=", 1.10),
    "provision_p50_ms": ("<=", 15),
    "migrate_noop_s": ("<=", 5),
    "migrate_addfield_s": ("<=", 60),
    "worker_rss_mb": ("<=", 120),
    "pooled_ratio": (">=", 0.80),
    "p50_ratio_n_10_pooled": ("<=", 1.10),
    "pg_backend_rss_mb_max": ("<=", 150),
}
# Server connections of the benchmark's PgBouncer: enough for the pooled set-up's two workers.
POOLED_SERVER_CONNECTIONS = 4


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- tenants -----------------------------------------------------------------------


def tenant_id(number: int) -> str:
    return f"t{number:05d}"


# Quotas on, far away: every request is metered (counted in memory, added in batches), never refused.
BENCH_QUOTA = 10**12


def prepare_tenants(ids: list[str]) -> dict[str, str]:
    """Three users in each tenant, a token for one; no rate limit, a far quota (the same in every set-up)."""
    from django_tenants.utils import schema_context

    from accounts.models import AuthToken, TenantUser
    from tenants.models import Tenant

    tokens = {}
    for tid in ids:
        with schema_context(tid):
            users = []
            for username, role in (("ann", "admin"), ("ben", "member"), ("cy", "member")):
                user = TenantUser(username=username, name=username.title(), role=role)
                user.set_unusable_password()
                users.append(user)
            TenantUser.objects.bulk_create(users)
            _, tokens[tid] = AuthToken.issue(user=TenantUser.objects.get(username="ann"), name="bench")
    Tenant.objects.filter(pk__in=ids).update(rate_limit_override=0, requests_per_month_override=BENCH_QUOTA)
    return tokens


def machine_credentials(tid: str) -> tuple[str, str]:
    """An API key of the tenant (read) and a JWT of its admin: each names the tenant by itself."""
    from django_tenants.utils import schema_context

    from accounts import service_tokens, services
    from accounts.models import TenantUser
    from tenants.models import Tenant

    tenant = Tenant.objects.get(pk=tid)
    with schema_context(tid):
        _, raw_key = services.create_api_key(tenant, name="bench", scopes=["read"])
        access = service_tokens.issue_for_user(tenant, TenantUser.objects.get(username="ann")).access
    return raw_key, access


def create_tenants(first: int, last: int) -> dict[str, str]:
    """Tenants t<first>..t<last> through provision_tenant (pool refilled first, in bulk)."""
    from tenants.provisioning import fill_pool, pool_schemas
    from tenants.services import provision_tenant

    ids = [tenant_id(n) for n in range(first, last + 1)]
    if not ids:
        return {}
    fill_pool(len(ids) + len(pool_schemas()))
    for tid in ids:
        provision_tenant(tenant_id=tid, name=f"Bench {tid}")
    return prepare_tenants(ids)


# -- servers and load ----------------------------------------------------------------


def write_pairs(path: Path, tokens: dict[str, str]) -> Path:
    path.write_text("".join(f"{tid} {token}\n" for tid, token in tokens.items()))
    return path


def wrk(server: AppServer, pairs: Path, by: str, seconds: float, connections: int, start: int = 0) -> dict:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s"]
    command += ["-s", str(kit.REPO / "bench" / "wrk.lua"), f"http://127.0.0.1:{server.port}/api/users", "--"]
    command += [str(pairs), by, str(start)]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    result = json.loads(line[len("BENCH ") :])
    if result["non2xx"] or result["socket_errors"]:
        raise RuntimeError(
            f"{server.name}: {result['non2xx']} non-2xx answers, {result['socket_errors']} socket errors"
        )
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["p50_ms"] = result["p50_us"] / 1000
    return result


def warm_everyone(server: AppServer, pairs: Path, count: int) -> None:
    """Requests until every tenant has had at least two (so each worker has likely seen each)."""
    seconds, served = 2, 0
    while served < 2 * count:
        served += wrk(server, pairs, "header", seconds, 2, start=served)["requests"]
        seconds *= 2


def provision_over_http(server: AppServer, staff_token: str, ids: list[str]) -> list[float]:
    """Milliseconds of each POST /admin/tenants, connecting included (sync workers close after each answer)."""
    client = kit.Client(server.port, timeout=60)
    durations = []
    for tid in ids:
        body = {"id": tid, "name": f"Bench {tid}"}
        answer = client.send("POST", "/admin/tenants", body, headers={"Authorization": f"Token {staff_token}"})
        if answer.status != 201:
            raise RuntimeError(f"POST /admin/tenants {tid}: {answer.status} {answer.error or answer.body}")
        durations.append(answer.seconds * 1000)
    client.close()
    return durations


def statements_per_warm_request(tenant: str, token: str) -> int:
    """Statements a warm GET /api/users sends to PostgreSQL, read from libpq's protocol trace.

    In this process, through Django's WSGI handler (its request signals run the per-request
    connection handling, as under gunicorn), on the direct connection.
    """
    import psycopg
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.test import RequestFactory

    from tenants.cache import registry_cache

    registry_cache.wait_until_ready()
    handler = WSGIHandler()
    headers = {"HTTP_AUTHORIZATION": f"Token {token}", "HTTP_X_TENANT_ID": tenant, "HTTP_HOST": "127.0.0.1"}

    def get() -> None:
        response = handler(RequestFactory().get("/api/users", **headers).environ, lambda *_: None)
        b"".join(response)
        response.close()

    get()
    get()
    with tempfile.TemporaryFile("w+") as trace:
        pgconn = connection.connection.pgconn
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            get()
        finally:
            pgconn.untrace()
        trace.seek(0)
        messages = re.split(r"\n(?=[FB]\t)", trace.read())
    # A statement is one Query message (client-side binding) or one Parse (server-side).
    return sum(1 for message in messages if message.split("\t")[:3:2] in (["F", "Query"], ["F", "Parse"]))


def start_pgbouncer(database: kit.DatabaseServer):
    """Debian's PgBouncer in transaction mode in front of the bench database's server; None when not installed."""
    from config import pgbouncer

    binary = pgbouncer.find_binary()
    if binary is None:
        log("pgbouncer is not installed: no pooled figures (sudo apt-get install pgbouncer)")
        return None
    settings = {"HOST": database.host, "PORT": database.port, "USER": database.user, "PASSWORD": database.password}
    return pgbouncer.start(binary, settings, server_connections=POOLED_SERVER_CONNECTIONS)


# -- a live move (Citus) ---------------------------------------------------------------

# Rows the moving tenant holds before its move, so that the copy takes a while, as a real tenant's would.
MOVE_TENANT_ROWS = 50_000
MOVE_WRITERS = 4


def measure_move(server: AppServer, tid: str, token: str) -> dict:
    """Move ``tid`` to another worker through the move job while writers create users in it over HTTP.

    Figures: the move's wall-clock seconds (the job's run), the writes acknowledged while it
    ran, the longest time without an acknowledged write between its start and its end, the
    slowest write, and any write that failed or was lost.
    """
    import threading

    from django.db import connection
    from django_tenants.utils import schema_context

    from accounts.models import TenantUser
    from core.jobs.services import run_now
    from tenants import citus, services

    services.update_tenant(tid, {"max_users": 10**9})
    with schema_context(tid):
        bulk = []
        for number in range(MOVE_TENANT_ROWS):
            user = TenantUser(username=f"bulk{number}", name=f"Bulk {number}")
            user.password = "!"  # unusable, without hashing
            bulk.append(user)
        TenantUser.objects.bulk_create(bulk, batch_size=5000)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        source = citus.schema_nodes(cursor, [tid])[tid]
        target = next(node for node in citus.worker_nodes(cursor) if node != source)

    stop = threading.Event()
    acknowledged: list[tuple[float, float, str]] = []  # sent, acknowledged, username
    failed: list[str] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        client = kit.Client(server.port, timeout=60)
        headers = {"Authorization": f"Token {token}", "X-Tenant-ID": tid}
        number = 0
        while not stop.is_set():
            username = f"w{writer}-{number}"
            number += 1
            sent = time.perf_counter()
            answer = client.send("POST", "/api/users", {"username": username, "name": username}, headers=headers)
            with lock:
                if answer.status == 201:
                    acknowledged.append((sent, time.perf_counter(), username))
                else:
                    failed.append(f"{answer.status} {answer.error or answer.body}")
        client.close()

    writers = [threading.Thread(target=write, args=(number,)) for number in range(MOVE_WRITERS)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(1)  # writes under way before the move starts
        job = services.request_move(tid, target)
        started = time.perf_counter()
        job = run_now(job)
        ended = time.perf_counter()
        time.sleep(1)  # and on the new node afterwards
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    if job.status != "done":
        raise RuntimeError(f"the move job failed: {job.error}")
    during = sorted(ack for _, ack, _ in acknowledged if started <= ack <= ended)
    marks = [started, *during, ended]
    with schema_context(tid):
        stored = set(TenantUser.objects.filter(username__startswith="w").values_list("username", flat=True))
    connection.set_schema_to_public()
    return {
        "move_s": round(ended - started, 2),
        "move_tenant_rows": MOVE_TENANT_ROWS,
        "move_writes_during": len(during),
        "move_longest_write_pause_ms": round(1000 * max(b - a for a, b in itertools.pairwise(marks)), 1),
        "move_slowest_write_ms": round(1000 * max(ack - sent for sent, ack, _ in acknowledged), 1),
        "move_write_errors": len(failed),
        "move_writes_lost": len({username for *_, username in acknowledged} - stored),
    }


# -- migrations ----------------------------------------------------------------------


ADDFIELD_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "{leaf}")]

    operations = [
        migrations.AddField("tenantuser", "bench_note", models.CharField(max_length=40, blank=True, default="")),
    ]
"""


# Schemas a fresh connection meets in turn to measure a schema new to its backend; spread over all tenants.
NEW_SCHEMA_SAMPLE = 1000


def measure_new_schemas(database: kit.DatabaseServer, ids: list[str]) -> dict:
    """What a backend pays for a schema it has not served yet: time of the view's query, and memory.

    One fresh connection sends ``GET /api/users``'s query (a page of users, as the ORM writes it,
    after the app's ``SET search_path``) in each of up to NEW_SCHEMA_SAMPLE tenants spread over
    them all, then again in the same order: the first pass meets every schema new, the second
    finds it served. Client-side times, the round trip included; the difference of the
    medians is the backend's extra work for a new schema. Memory is read around the first pass
    (zeros when the server runs on another host).
    """
    import psycopg

    from accounts.models import TenantUser

    query, params = TenantUser.objects.all()[:100].query.sql_with_params()
    sample = ids[:: max(1, len(ids) // NEW_SCHEMA_SAMPLE)][:NEW_SCHEMA_SAMPLE]
    with psycopg.connect(**database.conninfo(BENCH_DB), autocommit=True, prepare_threshold=None) as conn:
        cursor = psycopg.ClientCursor(conn)
        pid = cursor.execute("SELECT pg_backend_pid()").fetchone()[0]

        def one_pass() -> list[float]:
            seconds = []
            for tid in sample:
                cursor.execute(f'SET search_path = "{tid}","public"')
                started = time.perf_counter()
                cursor.execute(query, params)
                cursor.fetchall()
                seconds.append(time.perf_counter() - started)
            return seconds

        rss_before, private_before = kit.memory_mb(pid)
        new = one_pass()
        rss_after, private_after = kit.memory_mb(pid)
        served = one_pass()
    new_us, served_us = statistics.median(new) * 1e6, statistics.median(served) * 1e6
    return {
        "new_schema_sample": len(sample),
        "new_schema_query_us": round(new_us, 1),
        "served_schema_query_us": round(served_us, 1),
        "new_schema_extra_us": round(new_us - served_us, 1),
        "backend_rss_kb_per_schema": round(1024 * (rss_after - rss_before) / len(sample), 1),
        "backend_private_kb_per_schema": round(1024 * (private_after - private_before) / len(sample), 1),
    }


def migrate_with_new_addfield(env: dict[str, str]) -> tuple[float, str]:
    """The migrate command in a scratch copy of the code that has one more AddField migration."""
    from django.db.migrations.loader import MigrationLoader

    (leaf,) = MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes("accounts")
    with tempfile.TemporaryDirectory(prefix="bench-addfield-") as scratch:
        copy = Path(scratch) / "app"
        shutil.copytree(
            kit.REPO,
            copy,
            symlinks=True,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", ".pgdata", ".citus", "var", "bench", "docs", "__pycache__", "staticfiles"
            ),
        )
        (copy / "accounts" / "migrations" / "9999_bench_addfield.py").write_text(
            ADDFIELD_MIGRATION.format(leaf=leaf[1])
        )
        return kit.manage(env, "migrate_tenants", cwd=copy)


# -- report --------------------------------------------------------------------------


def verdict(name: str, value: float) -> str:
    if name not in TARGETS:
        return ""
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    return f"{'met' if ok else 'MISSED'} (target {op} {target})"


def plot(series: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot (pip install matplotlib)")
        return False
    counts = [point["tenants"] for point in series]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(counts, [p["p50_ms"] for p in series], "o-", label="GET /api/users p50 (ms), requests over all tenants")
    ax.plot(counts, [p["provision_p50_ms"] for p in series], "s-", label="POST /admin/tenants p50 (ms)")
    ax.plot(counts, [p["provision_p95_ms"] for p in series], "s--", alpha=0.6, label="POST /admin/tenants p95 (ms)")
    ax.set_xlabel("existing tenants")
    ax.set_ylabel("milliseconds")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Latency and provisioning time against the number of tenants (2 gunicorn workers)")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=int(os.environ.get("TENANTS") or 200))
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS") or 30))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS") or 1))
    parser.add_argument("--creates", type=int, default=60, help="POST /admin/tenants timed at the final size")
    parser.add_argument(
        "--unbounded",
        action="store_true",
        default=os.environ.get("BENCH_UNBOUNDED") == "1",
        help="also measure the app with no bound on the schemas a connection serves (BENCH_UNBOUNDED=1)",
    )
    args = parser.parse_args()
    n = max(10, args.tenants)

    if shutil.which("wrk") is None:
        print("The benchmark needs wrk. Install it (Debian/Ubuntu): sudo apt-get install wrk", file=sys.stderr)
        return 2

    database = kit.configured_database_server()
    log(f"database {BENCH_DB} (re-created), {n} tenants")
    kit.recreate_database(database, BENCH_DB)
    env = {
        **kit.app_env(database.url(BENCH_DB)),
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
        "TENANT_POOL_REFILL": "false",
        "BENCH_TENANT": tenant_id(1),
        # Access tokens outlive the run (5 minutes otherwise); verifying one costs the same.
        "JWT_ACCESS_SECONDS": "86400",
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(kit.REPO))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from tenants import citus
    from tenants.models import StaffToken
    from tenants.provisioning import fill_pool

    on_citus = citus.enabled(connection)
    call_command("migrate_tenants", verbosity=0, no_pool=True)
    staff = get_user_model().objects.create(username="bench-admin", is_staff=True, is_superuser=True)
    _, staff_token = StaffToken.issue(user=staff, name="bench")

    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    tokens: dict[str, str] = {}
    servers: dict[str, AppServer] = {}
    result: dict = {"tenants": n, "database": "citus" if on_citus else "postgresql"}
    bouncer = None
    try:
        tokens.update(create_tenants(1, 10))
        servers = {
            "tenant": AppServer(env, name="tenant", settings="config.settings"),
            "baseline": AppServer(env, name="baseline", settings="bench.settings_baseline"),
            "stock": AppServer(env, name="stock", settings="bench.settings_stock"),
        }
        by = {"tenant": "header", "baseline": "header", "stock": "host", "pooled": "header", "unbounded": "header"}
        # Transaction pooling through a Citus coordinator is a known gap (README, "Tests and CI").
        bouncer = None if on_citus else start_pgbouncer(database)
        if bouncer is not None:
            pooled_env = {
                **env,
                "DATABASE_URL": bouncer.url(BENCH_DB),
                "DATABASE_POOL_MODE": "transaction",
                "DATABASE_DIRECT_URL": database.url(BENCH_DB),
            }
            servers["pooled"] = AppServer(pooled_env, name="pooled", settings="config.settings")
        if args.unbounded:  # the same app with no bound on the schemas a connection serves: what the bound costs
            unbounded_env = {**env, "DATABASE_MAX_SCHEMAS_PER_CONNECTION": "0"}
            servers["unbounded"] = AppServer(unbounded_env, name="unbounded", settings="config.settings")
        one = write_pairs(work / "one.txt", {tenant_id(1): tokens[tenant_id(1)]})
        api_key, access_token = machine_credentials(tenant_id(1))
        one_key = write_pairs(work / "key.txt", {tenant_id(1): api_key})
        one_jwt = write_pairs(work / "jwt.txt", {tenant_id(1): access_token})
        for name, server in servers.items():
            wrk(server, one, by[name], 1, 2)  # warm-up: imports, connections, caches
        wrk(servers["tenant"], one_key, "bearer", 1, 2)
        wrk(servers["tenant"], one_jwt, "bearer", 1, 2)

        checkpoints = sorted({10, *(c for c in (100, 250, 500, 1000, 2000, 5000) if c < n), n})
        series = []
        next_number = 11
        extra = 0  # tenants made through the API (counted as tenants too)
        for count in checkpoints:
            missing = count - len(tokens)
            if missing > 0:
                log(f"creating tenants up to {count}")
                tokens.update(create_tenants(next_number, next_number + missing - 1))
                next_number += missing
            everyone = write_pairs(work / "all.txt", tokens)
            warm_everyone(servers["tenant"], everyone, len(tokens))
            latency = wrk(servers["tenant"], everyone, "header", 3, 2)
            creates = args.creates if count == n else 20
            fill_pool(creates + 5)
            ids = [f"api-{extra + i:05d}" for i in range(creates)]
            durations = provision_over_http(servers["tenant"], staff_token, ids)
            extra += creates
            tokens.update(prepare_tenants(ids))
            point = {
                "tenants": count,
                "p50_ms": round(latency["p50_ms"], 3),
                "rps_all_tenants": round(latency["rps"], 1),
                "provision_p50_ms": round(kit.percentile(durations, 50), 2),
                "provision_p95_ms": round(kit.percentile(durations, 95), 2),
                "creates": creates,
            }
            series.append(point)
            log(f"{count} tenants: {point}")
        result["provision_p50_ms"] = series[-1]["provision_p50_ms"]
        result["provision_p95_ms"] = series[-1]["provision_p95_ms"]
        result["provision_creates"] = series[-1]["creates"]

        # Every tenant, the ones made through the API included, gets requests before RSS is read.
        everyone = write_pairs(work / "all.txt", tokens)
        warm_everyone(servers["tenant"], everyone, len(tokens))
        result["worker_rss_mb"] = round(servers["tenant"].worker_rss_mb(), 1)
        rss, private = servers["tenant"].backend_memory_mb()
        result["pg_backend_rss_mb_max"], result["pg_backend_private_mb_max"] = round(rss, 1), round(private, 1)
        result["queries_per_warm_request"] = statements_per_warm_request(tenant_id(1), tokens[tenant_id(1)])

        # The figures that are compared with each other are measured in alternation, slice by
        # slice, so that a burst of load from elsewhere on the machine hits every set-up alike.
        ten = write_pairs(work / "ten.txt", {tid: tokens[tid] for tid in list(tokens)[:10]})
        cpu: dict[str, list] = {}  # CPU seconds and requests, by throughput slice

        def throughput(name: str, server: str | None = None, pairs: Path = one, how: str = "") -> float:
            server = server or name
            before = servers[server].cpu_seconds()
            run = wrk(servers[server], pairs, how or by[server], args.seconds, 4)
            used = cpu.setdefault(name, [0.0, 0])
            used[0] += servers[server].cpu_seconds() - before
            used[1] += run["requests"]
            return run["rps"]

        rotation: dict[str, int] = {}

        def latency(name: str, server: str, pairs: Path) -> float:
            """p50 of one slice; each slice of a name carries on through the tenants where the last one stopped."""
            run = wrk(servers[server], pairs, "header", args.seconds, 2, start=rotation.get(name, 0))
            rotation[name] = rotation.get(name, 0) + run["requests"]
            return run["p50_ms"]

        slices = {
            "tenant": lambda: throughput("tenant"),
            "api_key": lambda: throughput("api_key", "tenant", one_key, "bearer"),
            "jwt": lambda: throughput("jwt", "tenant", one_jwt, "bearer"),
            "baseline": lambda: throughput("baseline"),
            "stock": lambda: throughput("stock"),
            "p50_10": lambda: latency("p50_10", "tenant", ten),
            "p50_n": lambda: latency("p50_n", "tenant", everyone),
        }
        if "unbounded" in servers:
            # Warmed first, so that the pooled set-up's warm-up stays the last before the slices.
            warm_everyone(servers["unbounded"], everyone, len(tokens))
        if "pooled" in servers:
            warm_everyone(servers["pooled"], everyone, len(tokens))
            slices["pooled"] = lambda: throughput("pooled")
            slices["pooled_p50_10"] = lambda: latency("pooled_p50_10", "pooled", ten)
            slices["pooled_p50_n"] = lambda: latency("pooled_p50_n", "pooled", everyone)
        if "unbounded" in servers:
            slices["unbounded_p50_10"] = lambda: latency("unbounded_p50_10", "unbounded", ten)
            slices["unbounded_p50_n"] = lambda: latency("unbounded_p50_n", "unbounded", everyone)
        log(f"{args.rounds} rounds of {len(slices)} alternating slices of {args.seconds:g} s")
        measured: dict[str, list[float]] = {name: [] for name in slices}
        names = list(slices)
        for round_number in range(args.rounds):
            for name in names[round_number % len(names) :] + names[: round_number % len(names)]:
                measured[name].append(slices[name]())
        # Each figure is the median of its slices; as the set-ups take turns, a burst of load
        # from elsewhere on the machine falls on all of them alike. Best slices are kept too,
        # and the ratios of slices measured next to each other in the same round.
        for name in [name for name in ("tenant", "api_key", "jwt", "baseline", "stock", "pooled") if name in measured]:
            result[f"rps_{name}"] = round(statistics.median(measured[name]), 1)
            result[f"rps_{name}_best"] = round(max(measured[name]), 1)
        pairs = [
            ("overhead_ratio", "tenant", "baseline"),
            ("speedup_vs_stock", "tenant", "stock"),
            ("api_key_ratio", "api_key", "tenant"),
            ("jwt_ratio", "jwt", "tenant"),
        ]
        # p50 over 10 tenants and over all, and their ratio, of each set-up that has latency slices.
        for slice_prefix, key_suffix in (("", ""), ("pooled_", "_pooled"), ("unbounded_", "_unbounded")):
            ten_name, all_name = f"{slice_prefix}p50_10", f"{slice_prefix}p50_n"
            if all_name in measured:
                ten_ms = result[f"p50_ms_10{key_suffix}"] = round(statistics.median(measured[ten_name]), 3)
                all_ms = result[f"p50_ms_n{key_suffix}"] = round(statistics.median(measured[all_name]), 3)
                result[f"p50_ratio_n_10{key_suffix}"] = round(all_ms / ten_ms, 3)
                pairs.append((f"p50_ratio_n_10{key_suffix}", all_name, ten_name))
        if "unbounded" in servers:
            # Read after its last slice: each of its backends has served every tenant, and kept them all.
            rss, private = servers["unbounded"].backend_memory_mb()
            result["pg_backend_rss_mb_unbounded"] = round(rss, 1)
            result["pg_backend_private_mb_unbounded"] = round(private, 1)
        result["p50_ms_10_best"] = round(min(measured["p50_10"]), 3)
        result["p50_ms_n_best"] = round(min(measured["p50_n"]), 3)
        if "pooled" in measured:
            pairs.append(("pooled_ratio", "pooled", "tenant"))
        for label, upper, lower in pairs:
            ratios = [a / b for a, b in zip(measured[upper], measured[lower], strict=True)]
            result[f"{label}_paired_median"] = round(statistics.median(ratios), 3)
        # CPU per request (app workers and their database backends): what load from elsewhere
        # disturbs least, since time spent waiting for a core is not counted.
        for name, (seconds_used, requests) in cpu.items():
            result[f"cpu_ms_per_request_{name}"] = round(1000 * seconds_used / max(1, requests), 3)
        result["overhead_ratio_cpu"] = round(
            result["cpu_ms_per_request_baseline"] / result["cpu_ms_per_request_tenant"], 3
        )
        result["speedup_vs_stock_cpu"] = round(
            result["cpu_ms_per_request_stock"] / result["cpu_ms_per_request_tenant"], 3
        )
        result["rounds"] = {name: [round(v, 3) for v in values] for name, values in measured.items()}
        log("a schema new to its backend, measured on one connection")
        result.update(measure_new_schemas(database, list(tokens)))
        # What the latency target leaves a request for meeting a schema its backend has not served.
        result["p50_ratio_budget_us"] = round((TARGETS["p50_ratio_n_10"][1] - 1) * result["p50_ms_10"] * 1000, 1)
        if on_citus:
            log(f"moving {tenant_id(2)} ({MOVE_TENANT_ROWS} more rows) under {MOVE_WRITERS} writers")
            result.update(measure_move(servers["tenant"], tenant_id(2), tokens[tenant_id(2)]))
            log(f"move: { ({k: v for k, v in result.items() if k.startswith('move_')}) }")
    finally:
        for server in servers.values():
            server.stop()
        if bouncer is not None:
            bouncer.stop()
        shutil.rmtree(work, ignore_errors=True)

    result["overhead_ratio"] = round(result["rps_tenant"] / result["rps_baseline"], 3)
    result["api_key_ratio"] = round(result["rps_api_key"] / result["rps_tenant"], 3)
    result["jwt_ratio"] = round(result["rps_jwt"] / result["rps_tenant"], 3)
    result["speedup_vs_stock"] = round(result["rps_tenant"] / result["rps_stock"], 3)
    if "rps_pooled" in result:
        result["pooled_ratio"] = round(result["rps_pooled"] / result["rps_tenant"], 3)

    fill_pool()  # a full pool, so that the no-op run is only the check
    log("migrate_tenants with nothing to apply")
    result["migrate_noop_s"], noop_output = kit.manage(env, "migrate_tenants")
    log(noop_output)
    log("migrate_tenants with one new AddField (scratch copy of the code)")
    result["migrate_addfield_s"], addfield_output = migrate_with_new_addfield(env)
    log(addfield_output)
    result["migrate_schemas_total"] = len(tokens)
    result["series"] = series
    result["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    plotted = plot(series, RESULTS / "scaling.png")

    rows = [
        ("tenants", result["tenants"], ""),
        ("rps_tenant (GET /api/users, one tenant)", result["rps_tenant"], ""),
        ("rps_api_key (the same, API key alone)", result["rps_api_key"], ""),
        ("rps_jwt (the same, JWT alone)", result["rps_jwt"], ""),
        ("api_key_ratio", result["api_key_ratio"], verdict("api_key_ratio", result["api_key_ratio"])),
        ("jwt_ratio", result["jwt_ratio"], verdict("jwt_ratio", result["jwt_ratio"])),
        ("api_key_ratio, paired slices (median)", result["api_key_ratio_paired_median"], ""),
        ("jwt_ratio, paired slices (median)", result["jwt_ratio_paired_median"], ""),
        ("rps_baseline (tenancy and metering off)", result["rps_baseline"], ""),
        ("rps_stock (django-tenants middleware)", result["rps_stock"], ""),
        ("overhead_ratio", result["overhead_ratio"], verdict("overhead_ratio", result["overhead_ratio"])),
        ("speedup_vs_stock", result["speedup_vs_stock"], verdict("speedup_vs_stock", result["speedup_vs_stock"])),
        ("overhead_ratio, paired slices (median)", result["overhead_ratio_paired_median"], ""),
        ("speedup_vs_stock, paired slices (median)", result["speedup_vs_stock_paired_median"], ""),
        ("cpu ms/request: tenant", result["cpu_ms_per_request_tenant"], ""),
        ("cpu ms/request: api key", result["cpu_ms_per_request_api_key"], ""),
        ("cpu ms/request: jwt", result["cpu_ms_per_request_jwt"], ""),
        ("cpu ms/request: baseline", result["cpu_ms_per_request_baseline"], ""),
        ("cpu ms/request: stock", result["cpu_ms_per_request_stock"], ""),
        ("overhead_ratio_cpu (baseline/tenant cpu)", result["overhead_ratio_cpu"], ""),
        ("speedup_vs_stock_cpu (stock/tenant cpu)", result["speedup_vs_stock_cpu"], ""),
        ("p50_ms_10", result["p50_ms_10"], ""),
        ("p50_ms_n", result["p50_ms_n"], ""),
        ("p50_ms_n / p50_ms_10", result["p50_ratio_n_10"], verdict("p50_ratio_n_10", result["p50_ratio_n_10"])),
        ("p50 ratio, paired slices (median)", result["p50_ratio_n_10_paired_median"], ""),
        ("provision_p50_ms", result["provision_p50_ms"], verdict("provision_p50_ms", result["provision_p50_ms"])),
        ("provision_p95_ms", result["provision_p95_ms"], ""),
        ("migrate_noop_s", round(result["migrate_noop_s"], 2), verdict("migrate_noop_s", result["migrate_noop_s"])),
        (
            "migrate_addfield_s",
            round(result["migrate_addfield_s"], 2),
            verdict("migrate_addfield_s", result["migrate_addfield_s"]),
        ),
        ("worker_rss_mb", result["worker_rss_mb"], verdict("worker_rss_mb", result["worker_rss_mb"])),
        (
            "pg_backend_rss_mb_max",
            result["pg_backend_rss_mb_max"],
            verdict("pg_backend_rss_mb_max", result["pg_backend_rss_mb_max"]),
        ),
        ("pg_backend_private_mb_max", result["pg_backend_private_mb_max"], ""),
        ("queries_per_warm_request (GET /api/users)", result["queries_per_warm_request"], ""),
        (
            "schema new to its backend / served: query us",
            f"{result['new_schema_query_us']} / {result['served_schema_query_us']}",
            "",
        ),
        ("new_schema_extra_us (one backend)", result["new_schema_extra_us"], ""),
        ("p50_ratio_budget_us (p50_ms_10 x 0.10)", result["p50_ratio_budget_us"], ""),
        (
            "backend memory per schema: RSS / private kB",
            f"{result['backend_rss_kb_per_schema']} / {result['backend_private_kb_per_schema']}",
            "",
        ),
    ]
    if "p50_ratio_n_10_unbounded" in result:
        rows += [
            (
                "no schema bound: p50_ms_10 / p50_ms_n",
                f"{result['p50_ms_10_unbounded']} / {result['p50_ms_n_unbounded']}",
                "",
            ),
            ("no schema bound: p50_ms_n / p50_ms_10", result["p50_ratio_n_10_unbounded"], ""),
            ("no schema bound: pg_backend_rss_mb_max", result["pg_backend_rss_mb_unbounded"], ""),
            ("no schema bound: pg_backend_private_mb_max", result["pg_backend_private_mb_unbounded"], ""),
        ]
    if "rps_pooled" in result:
        rows += [
            ("rps_pooled (through PgBouncer, transaction)", result["rps_pooled"], ""),
            ("rps_pooled / rps_tenant", result["pooled_ratio"], verdict("pooled_ratio", result["pooled_ratio"])),
            ("rps_pooled / rps_tenant, paired slices", result["pooled_ratio_paired_median"], ""),
            ("p50_ms_10_pooled / p50_ms_n_pooled", f"{result['p50_ms_10_pooled']} / {result['p50_ms_n_pooled']}", ""),
            (
                "p50_ms_n / p50_ms_10, pooled",
                result["p50_ratio_n_10_pooled"],
                verdict("p50_ratio_n_10_pooled", result["p50_ratio_n_10_pooled"]),
            ),
        ]
    if on_citus:
        rows += [
            ("move_s (job run, with the move)", result["move_s"], ""),
            ("move_writes_during", result["move_writes_during"], ""),
            ("move_longest_write_pause_ms", result["move_longest_write_pause_ms"], ""),
            ("move_slowest_write_ms", result["move_slowest_write_ms"], ""),
            ("move_write_errors", result["move_write_errors"], ""),
            ("move_writes_lost", result["move_writes_lost"], ""),
        ]
    print()
    for label, value, note in rows:
        print(f"  {label:<42} {value!s:>10}  {note}")
    print(f"\n  written: {RESULTS / 'latest.json'}" + (f", {RESULTS / 'scaling.png'}" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
