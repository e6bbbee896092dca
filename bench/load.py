"""Load test: N connections for T seconds across three tenants and the platform API, then check every answer.

    python bench/load.py [--seconds 60] [--connections 64]      (or: make load)

It creates a scratch database (on the embedded PostgreSQL, or on DATABASE_URL's
server), migrates and seeds it, adds a third tenant, lifts the rate limits and user
limits, and serves the app with gunicorn (2 workers) on 127.0.0.1 and a free port.
Each connection then sends a mix of reads and writes, by header and by subdomain in
turn. Afterwards it checks:

- no answer was a 5xx and none was missing (connection errors);
- every tenant answer carried the tenant it was asked for (ids, "tenant" keys, user names);
- every acknowledged write (201/200) is in the right tenant's schema, and in no other;
- no tenant was left half-made (row, domain and schema all or none).

It prints requests, requests per second, p50, p99, errors by status and the checks, writes
bench/results/load.json, and exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import kit
from kit import Client

TENANTS = ("acme", "globex", "initech")
ADMINS = {"acme": "alice", "globex": "charlie", "initech": "dora"}

# Relative weights of each operation in the mix (reads first, then writes). A tenant creation
# migrates a whole schema (about a second of CPU), so it is rare here, as sign-ups are in life:
# at 2 in 100 it took most of the server's CPU and halved the throughput of everything else.
MIX = {
    "GET /api/me": 14,
    "GET /api/users": 10,
    "GET /api/users/{id}": 14,
    "GET /api/settings": 10,
    "GET /admin/tenants": 6,
    "GET /admin/tenants/{id}": 8,
    "POST /api/users": 18,
    "PATCH /api/users/{id}": 10,
    "PUT /api/settings": 8,
    "POST /admin/tenants": 0.3,
}
WRITES = {"POST /api/users", "PATCH /api/users/{id}", "PUT /api/settings", "POST /admin/tenants"}


@dataclass
class Created:
    tenant: str
    id: str
    username: str
    name: str  # the last acknowledged name
    uncertain: set[str] = field(default_factory=set)  # names sent without an answer


@dataclass
class Worker:
    """One connection's own state: what it wrote, what it saw."""

    index: int
    run: str
    port: int
    staff: str
    tokens: dict[str, str]
    deadline: float
    client: Client = field(init=False)
    rng: random.Random = field(init=False)
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    per_operation: defaultdict = field(default_factory=lambda: defaultdict(list))  # operation: latencies
    failures: list[str] = field(default_factory=list)  # 5xx and missing answers
    mismatches: list[str] = field(default_factory=list)  # an answer about another tenant than asked
    patches_acknowledged: int = 0
    mismatch_count: int = 0
    users: list[Created] = field(default_factory=list)
    settings_writes: list[tuple[str, str, float, float, bool]] = field(default_factory=list)
    tenants_created: list[str] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        self.client = Client(self.port)
        self.rng = random.Random(self.index)

    def _fail(self, message: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(message)

    def _mismatch(self, message: str) -> None:
        self.mismatch_count += 1
        if len(self.mismatches) < 20:
            self.mismatches.append(message)

    def _tenant_call(self, tenant: str, method: str, path: str, body: object = None):
        """By header on the public host and by subdomain, in turn."""
        headers = {"Authorization": f"Token {self.tokens[tenant]}"}
        if self.counter % 2:
            return self.client.send(method, path, body, host=f"{tenant}.localhost:{self.port}", headers=headers)
        return self.client.send(method, path, body, headers={**headers, "X-Tenant-ID": tenant})

    def _platform_call(self, method: str, path: str, body: object = None):
        return self.client.send(method, path, body, headers={"Authorization": f"Token {self.staff}"})

    def run_until_deadline(self) -> None:
        operations, weights = list(MIX), list(MIX.values())
        while time.monotonic() < self.deadline:
            self.counter += 1
            operation = self.rng.choices(operations, weights)[0]
            tenant = TENANTS[self.rng.randrange(len(TENANTS))]
            if operation == "PATCH /api/users/{id}" and not any(user.tenant == tenant for user in self.users):
                operation = "POST /api/users"  # nothing of ours to rename there yet
            answer = self._one(operation, tenant)
            self.latencies.append(answer.seconds)
            self.statuses[answer.status] += 1
            self.per_operation[operation].append(answer.seconds)
            if answer.status == 0:
                self._fail(f"{operation} on {tenant}: no answer ({answer.error})")
            elif answer.status >= 500:
                self._fail(f"{operation} on {tenant}: {answer.status} {answer.body}")
        self.client.close()

    def _own_user(self, tenant: str) -> Created | None:
        mine = [user for user in self.users if user.tenant == tenant]
        return self.rng.choice(mine) if mine else None

    def _one(self, operation: str, tenant: str):
        n = self.counter
        if operation == "GET /api/me":
            answer = self._tenant_call(tenant, "GET", "/api/me")
            if answer.status == 200 and answer.body.get("id") != tenant:
                self._mismatch(f"/api/me asked for {tenant} answered {answer.body.get('id')}")
        elif operation == "GET /api/settings":
            answer = self._tenant_call(tenant, "GET", "/api/settings")
            if answer.status == 200 and answer.body.get("tenant") != tenant:
                self._mismatch(f"/api/settings asked for {tenant} answered {answer.body.get('tenant')}")
        elif operation == "GET /api/users":
            offset = self.rng.randrange(0, 200)
            answer = self._tenant_call(tenant, "GET", f"/api/users?limit=20&offset={offset}")
            if answer.status == 200:
                if answer.body.get("tenant") != tenant:
                    self._mismatch(f"/api/users asked for {tenant} answered {answer.body.get('tenant')}")
                for user in answer.body.get("users", []):
                    owner = user.get("username", "").split("-")[1] if user.get("username", "").startswith("u-") else ""
                    if owner and owner != tenant:
                        self._mismatch(f"/api/users of {tenant} lists {user.get('username')}")
        elif operation == "GET /api/users/{id}":
            user = self._own_user(tenant)
            answer = self._tenant_call(tenant, "GET", f"/api/users/{user.id if user else '1'}")
            if answer.status == 200 and user and answer.body.get("username") != user.username:
                self._mismatch(f"user {user.id} of {tenant} is {answer.body.get('username')}, not {user.username}")
        elif operation == "GET /admin/tenants":
            answer = self._platform_call("GET", f"/admin/tenants?limit=50&offset={self.rng.randrange(0, 3)}")
            if answer.status == 200 and not isinstance(answer.body.get("tenants"), list):
                self._mismatch("/admin/tenants without a tenant list")
        elif operation == "GET /admin/tenants/{id}":
            answer = self._platform_call("GET", f"/admin/tenants/{tenant}")
            if answer.status == 200 and answer.body.get("id") != tenant:
                self._mismatch(f"/admin/tenants/{tenant} answered {answer.body.get('id')}")
        elif operation == "POST /api/users":
            username = f"u-{tenant}-{self.run}-{self.index}-{n}"
            name = f"{tenant} user {self.index}-{n}"
            answer = self._tenant_call(tenant, "POST", "/api/users", {"name": name, "username": username})
            if answer.status == 201:
                if answer.body.get("username") != username:
                    self._mismatch(f"created {username} on {tenant}, answered {answer.body.get('username')}")
                self.users.append(Created(tenant, str(answer.body["id"]), username, name))
        elif operation == "PATCH /api/users/{id}":
            user = self._own_user(tenant)
            name = f"{tenant} renamed {self.index}-{n}"
            answer = self._tenant_call(tenant, "PATCH", f"/api/users/{user.id}", {"name": name})
            if answer.status == 200:
                self.patches_acknowledged += 1
                user.name = name
                user.uncertain.clear()
                if answer.body.get("username") != user.username:
                    self._mismatch(f"patched {user.username} on {tenant}, answered {answer.body.get('username')}")
            elif answer.status == 0 or answer.status >= 500:
                user.uncertain.add(name)
        elif operation == "PUT /api/settings":
            display_name = f"{tenant} {self.index}-{n}"
            started = time.monotonic()
            answer = self._tenant_call(tenant, "PUT", "/api/settings", {"display_name": display_name})
            acknowledged = answer.status == 200
            self.settings_writes.append((tenant, display_name, started, time.monotonic(), acknowledged))
        else:  # POST /admin/tenants
            new_id = f"t-{self.run}-{self.index}-{n}"
            answer = self._platform_call("POST", "/admin/tenants", {"id": new_id, "name": f"Load {new_id}"})
            if answer.status == 201:
                if answer.body.get("id") != new_id:
                    self._mismatch(f"created tenant {new_id}, answered {answer.body.get('id')}")
                self.tenants_created.append(new_id)
        return answer


def set_up(port: int) -> tuple[str, dict[str, str]]:
    """Staff token, a third tenant with its admin, limits lifted; tokens of each tenant's admin."""
    client = Client(port)
    staff = kit.staff_token(client)
    status, body = client.call(
        "POST",
        "/admin/tenants",
        {
            "id": "initech",
            "name": "Initech LLC",
            "plan": "enterprise",
            "admin": {"username": "dora", "name": "Dora", "password": kit.PASSWORD},
        },
        headers={"Authorization": f"Token {staff}"},
    )
    if status not in (201, 409):
        raise RuntimeError(f"creating initech failed: {status} {body}")
    kit.lift_limits(client, staff, TENANTS)
    tokens = {tenant: kit.tenant_token(client, tenant, ADMINS[tenant]) for tenant in TENANTS}
    client.close()
    return staff, tokens


def verify_writes(conninfo: dict[str, str], workers: list[Worker]) -> dict[str, object]:
    """Look up every acknowledged write in the database itself, in the right schema."""
    import psycopg

    lost: list[str] = []
    misplaced: list[str] = []
    users = [user for worker in workers for user in worker.users]
    tenants_created = [tenant for worker in workers for tenant in worker.tenants_created]
    writes = [w for worker in workers for w in worker.settings_writes]
    with psycopg.connect(**conninfo) as conn:
        found: dict[str, dict[str, tuple[str, str]]] = {}
        for tenant in TENANTS:
            rows = conn.execute(f'SELECT username, id::text, name FROM "{tenant}".accounts_tenantuser').fetchall()
            found[tenant] = {username: (user_id, name) for username, user_id, name in rows}
        for user in users:
            row = found[user.tenant].get(user.username)
            if row is None:
                lost.append(f"user {user.username} of {user.tenant}")
            elif row[0] != user.id or row[1] not in {user.name, *user.uncertain}:
                lost.append(f"user {user.username} of {user.tenant}: {row} instead of ({user.id}, {user.name!r})")
            for other in TENANTS:
                if other != user.tenant and user.username in found[other]:
                    misplaced.append(f"user {user.username} of {user.tenant} also in {other}")
        # Settings: the value left must come from a write that may have committed last, i.e. one
        # that finished after every acknowledged write had started.
        settings_checked = 0
        for tenant in TENANTS:
            mine = [w for w in writes if w[0] == tenant]
            acknowledged = [w for w in mine if w[4]]
            if not acknowledged:
                continue
            settings_checked += 1
            latest_start = max(w[2] for w in acknowledged)
            candidates = {w[1] for w in acknowledged if w[3] >= latest_start} | {w[1] for w in mine if not w[4]}
            value = conn.execute(
                f'SELECT display_name FROM "{tenant}".accounts_workspacesettings WHERE singleton = 1'
            ).fetchone()
            if value is None or value[0] not in candidates:
                lost.append(f"settings of {tenant}: {value} is none of the last acknowledged writes")
        for tenant_id in tenants_created:
            complete = conn.execute(
                """
                SELECT EXISTS (SELECT 1 FROM public.tenants_tenant WHERE id = %s)
                   AND EXISTS (SELECT 1 FROM public.tenants_domain WHERE tenant_id = %s AND is_primary)
                   AND EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'accounts_tenantuser')
                """,
                [tenant_id, tenant_id, tenant_id],
            ).fetchone()[0]
            if not complete:
                lost.append(f"tenant {tenant_id}")
    return {
        "acknowledged_writes": len(users)
        + sum(worker.patches_acknowledged for worker in workers)
        + sum(1 for w in writes if w[4])
        + len(tenants_created),
        "users_created": len(users),
        "user_patches_acknowledged": sum(worker.patches_acknowledged for worker in workers),
        "settings_writes_acknowledged": sum(1 for w in writes if w[4]),
        "settings_tenants_checked": settings_checked,
        "tenants_created": len(tenants_created),
        "lost_writes": lost,
        "misplaced_writes": misplaced,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kit.add_app_server_arguments(parser)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the load runs (default 60)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent client connections (default 64)")
    parser.add_argument("--db-name", default=f"load_scratch_{os.getpid()}", help="scratch database, dropped at the end")
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database for inspection")
    args = parser.parse_args()

    database = kit.configured_database_server()
    kit.recreate_database(database, args.db_name)
    env = kit.app_env(database.url(args.db_name))
    print(f"preparing database {args.db_name} ...", flush=True)
    kit.prepare_database(env)
    log_path = kit.RESULTS / "load-server.log"
    with kit.AppServer(env, name="load", workers=args.workers, threads=args.threads, log_path=log_path) as app:
        port = app.port
        staff, tokens = set_up(port)
        run = format(int(time.time()) % 100000, "05d")
        print(
            f"load: {args.connections} connections for {args.seconds:.0f} s on 127.0.0.1:{port} "
            f"(gunicorn {args.workers} workers x {args.threads} threads) ...",
            flush=True,
        )
        started = time.monotonic()
        deadline = started + args.seconds
        workers = [Worker(i, run, port, staff, tokens, deadline) for i in range(args.connections)]
        threads = [threading.Thread(target=w.run_until_deadline, daemon=True) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(args.seconds + 120)
        elapsed = time.monotonic() - started
    try:
        conninfo = database.conninfo(args.db_name)
        verification = verify_writes(conninfo, workers)
        half_made = kit.half_made_tenants(conninfo)
    finally:
        if not args.keep_db:
            kit.drop_database(database, args.db_name)

    latencies = sorted(x for w in workers for x in w.latencies)
    statuses: Counter = Counter()
    per_operation: defaultdict = defaultdict(list)
    for w in workers:
        statuses.update(w.statuses)
        for operation, seconds in w.per_operation.items():
            per_operation[operation].extend(seconds)
    failures = [f for w in workers for f in w.failures]
    mismatches = [m for w in workers for m in w.mismatches]
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    no_answer = statuses.get(0, 0)
    result = {
        "seconds": round(elapsed, 1),
        "connections": args.connections,
        "gunicorn": {"workers": args.workers, "threads": args.threads},
        "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(kit.percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(kit.percentile(latencies, 99) * 1000, 1),
        "max_ms": round((latencies[-1] if latencies else 0) * 1000, 1),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "operations": {
            operation: {
                "requests": len(seconds),
                "p50_ms": round(kit.percentile(seconds, 50) * 1000, 1),
                "p99_ms": round(kit.percentile(seconds, 99) * 1000, 1),
            }
            for operation, seconds in sorted(per_operation.items())
        },
        "server_errors_5xx": server_errors,
        "no_answer": no_answer,
        "tenant_mismatches": sum(w.mismatch_count for w in workers),
        **verification,
        "half_made_tenants": half_made,
        "failures": failures[:50],
        "mismatches": mismatches[:50],
    }
    ok = (
        server_errors == 0
        and no_answer == 0
        and not mismatches
        and not verification["lost_writes"]
        and not verification["misplaced_writes"]
        and not half_made
        and len(latencies) > 0
    )
    result["ok"] = ok
    kit.RESULTS.mkdir(parents=True, exist_ok=True)
    (kit.RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return 0 if ok else 1


def print_table(result: dict) -> None:
    other = {status: n for status, n in result["statuses"].items() if not status.startswith("2")}
    rows = [
        ("duration", f"{result['seconds']} s, {result['connections']} connections"),
        ("requests", result["requests"]),
        ("requests/s", result["rps"]),
        ("p50", f"{result['p50_ms']} ms"),
        ("p99", f"{result['p99_ms']} ms"),
        ("max", f"{result['max_ms']} ms"),
        ("statuses", ", ".join(f"{s}: {n}" for s, n in result["statuses"].items())),
        ("errors (non-2xx)", ", ".join(f"{s}: {n}" for s, n in other.items()) or "none"),
        ("5xx", result["server_errors_5xx"]),
        ("no answer", result["no_answer"]),
        ("tenant mismatches", result["tenant_mismatches"]),
        ("acknowledged writes", result["acknowledged_writes"]),
        ("  users created", result["users_created"]),
        ("  users renamed", result["user_patches_acknowledged"]),
        ("  settings writes", result["settings_writes_acknowledged"]),
        ("  tenants created", result["tenants_created"]),
        ("lost writes", len(result["lost_writes"])),
        ("writes in a wrong tenant", len(result["misplaced_writes"])),
        ("half-made tenants", len(result["half_made_tenants"])),
        ("result", "OK" if result["ok"] else "FAILED"),
    ]
    kit.print_rows(rows)
    for key in ("failures", "mismatches", "lost_writes", "misplaced_writes", "half_made_tenants"):
        for failure in result[key][:10]:
            print("  !", failure)


if __name__ == "__main__":
    sys.exit(main())
