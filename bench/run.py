"""The tenancy benchmark (issue 5): ``make bench`` or ``make bench TENANTS=N``.

Starts the app under gunicorn (2 worker processes) on 127.0.0.1 in three set-ups: this
project's resolution, tenancy switched off (baseline) and django-tenants' stock
middleware; drives them with wrk from this process, alternating between set-ups so that
ratios hold on a noisy machine; measures latency as tenants are added, provisioning
through ``POST /admin/tenants``, the migrate command with nothing to do and with one new
AddField (in a scratch copy of the code, never in the repository), and the workers' RSS.
Prints a table and writes ``bench/results/latest.json`` and ``bench/results/scaling.png``.

It works in its own database, ``bench_tenancy``, dropped and re-created on every run: on
the server of DATABASE_URL if set, else on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
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
TARGETS = {
    "overhead_ratio": (">=", 0.90),
    "speedup_vs_stock": (">=", 1.3),
    "p50_ratio_n_10": ("<=", 1.10),
    "provision_p50_ms": ("<=", 50),
    "migrate_noop_s": ("<=", 5),
    "migrate_addfield_s": ("<=", 30),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- tenants -----------------------------------------------------------------------


def tenant_id(number: int) -> str:
    return f"t{number:05d}"


def prepare_tenants(ids: list[str]) -> dict[str, str]:
    """Three users in each tenant, a token for one; no rate limit (the same in every set-up)."""
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
    Tenant.objects.filter(pk__in=ids).update(rate_limit_override=0)
    return tokens


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


# -- migrations ----------------------------------------------------------------------


ADDFIELD_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "{leaf}")]

    operations = [
        migrations.AddField("tenantuser", "bench_note", models.CharField(max_length=40, blank=True, default="")),
    ]
"""


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
            ignore=shutil.ignore_patterns(".git", ".venv", ".pgdata", "bench", "docs", "__pycache__", "staticfiles"),
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
        "PYTHONWARNINGS": "ignore:No directory at",
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    sys.path.insert(0, str(kit.REPO))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tenants.models import StaffToken
    from tenants.provisioning import fill_pool

    call_command("migrate_tenants", verbosity=0, no_pool=True)
    staff = get_user_model().objects.create(username="bench-admin", is_staff=True, is_superuser=True)
    _, staff_token = StaffToken.issue(user=staff, name="bench")

    RESULTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    tokens: dict[str, str] = {}
    servers: dict[str, AppServer] = {}
    result: dict = {"tenants": n}
    try:
        tokens.update(create_tenants(1, 10))
        servers = {
            "tenant": AppServer(env, name="tenant", settings="config.settings"),
            "baseline": AppServer(env, name="baseline", settings="bench.settings_baseline"),
            "stock": AppServer(env, name="stock", settings="bench.settings_stock"),
        }
        one = write_pairs(work / "one.txt", {tenant_id(1): tokens[tenant_id(1)]})
        by = {"tenant": "header", "baseline": "header", "stock": "host"}
        for name, server in servers.items():
            wrk(server, one, by[name], 1, 2)  # warm-up: imports, connections, caches

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

        # The figures that are compared with each other are measured in alternation, slice by
        # slice, so that a burst of load from elsewhere on the machine hits every set-up alike.
        ten = write_pairs(work / "ten.txt", {tid: tokens[tid] for tid in list(tokens)[:10]})
        cpu = {name: [0.0, 0] for name in servers}  # CPU seconds, requests

        def throughput(name: str) -> float:
            before = servers[name].cpu_seconds()
            run = wrk(servers[name], one, by[name], args.seconds, 4)
            cpu[name][0] += servers[name].cpu_seconds() - before
            cpu[name][1] += run["requests"]
            return run["rps"]

        slices = {
            "tenant": lambda: throughput("tenant"),
            "baseline": lambda: throughput("baseline"),
            "stock": lambda: throughput("stock"),
            "p50_10": lambda: wrk(servers["tenant"], ten, "header", args.seconds, 2)["p50_ms"],
            "p50_n": lambda: wrk(servers["tenant"], everyone, "header", args.seconds, 2)["p50_ms"],
        }
        log(f"{args.rounds} rounds of {len(slices)} alternating slices of {args.seconds:g} s")
        measured: dict[str, list[float]] = {name: [] for name in slices}
        names = list(slices)
        for round_number in range(args.rounds):
            for name in names[round_number % len(names) :] + names[: round_number % len(names)]:
                measured[name].append(slices[name]())
        # Each figure is the median of its slices; as the set-ups take turns, a burst of load
        # from elsewhere on the machine falls on all of them alike. Best slices are kept too,
        # and the ratios of slices measured next to each other in the same round.
        for name in ("tenant", "baseline", "stock"):
            result[f"rps_{name}"] = round(statistics.median(measured[name]), 1)
            result[f"rps_{name}_best"] = round(max(measured[name]), 1)
        result["p50_ms_10"] = round(statistics.median(measured["p50_10"]), 3)
        result["p50_ms_n"] = round(statistics.median(measured["p50_n"]), 3)
        result["p50_ms_10_best"] = round(min(measured["p50_10"]), 3)
        result["p50_ms_n_best"] = round(min(measured["p50_n"]), 3)
        for label, upper, lower in (
            ("overhead_ratio", "tenant", "baseline"),
            ("speedup_vs_stock", "tenant", "stock"),
            ("p50_ratio_n_10", "p50_n", "p50_10"),
        ):
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
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(work, ignore_errors=True)

    result["overhead_ratio"] = round(result["rps_tenant"] / result["rps_baseline"], 3)
    result["speedup_vs_stock"] = round(result["rps_tenant"] / result["rps_stock"], 3)
    result["p50_ratio_n_10"] = round(result["p50_ms_n"] / result["p50_ms_10"], 3)

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
        ("rps_baseline (tenancy off)", result["rps_baseline"], ""),
        ("rps_stock (django-tenants middleware)", result["rps_stock"], ""),
        ("overhead_ratio", result["overhead_ratio"], verdict("overhead_ratio", result["overhead_ratio"])),
        ("speedup_vs_stock", result["speedup_vs_stock"], verdict("speedup_vs_stock", result["speedup_vs_stock"])),
        ("overhead_ratio, paired slices (median)", result["overhead_ratio_paired_median"], ""),
        ("speedup_vs_stock, paired slices (median)", result["speedup_vs_stock_paired_median"], ""),
        ("cpu ms/request: tenant", result["cpu_ms_per_request_tenant"], ""),
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
        ("worker_rss_mb", result["worker_rss_mb"], ""),
    ]
    print()
    for label, value, note in rows:
        print(f"  {label:<42} {value!s:>10}  {note}")
    print(f"\n  written: {RESULTS / 'latest.json'}" + (f", {RESULTS / 'scaling.png'}" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
