"""A local Citus cluster inside the checkout: one coordinator and two workers.

``make citus-up`` / ``make citus-down`` (or ``python -m config.citus_cluster up|down``).
Data lives in ``.citus/`` at the top of the checkout (git-ignored) and is kept between
runs. Ports: ``CITUS_PORT`` for the coordinator (default 9700), the workers on the next
two. The database the app uses, ``CITUS_DB`` (default ``saas``), is made with Citus on
every node; ``up`` prints its ``DATABASE_URL``.

It needs PostgreSQL 15 server binaries with the Citus extension installed (in
production, from the Citus project's packages). PostgreSQL refuses to run as root, so
when started by root the servers run as the ``postgres`` user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".citus"
HOST = "127.0.0.1"
NODES = ("coordinator", "worker1", "worker2")

# Appended to each node's postgresql.conf. A local cluster for development and CI:
# durability against a machine crash is traded for speed (fsync off). synchronous_commit
# stays on: a non-blocking move (force_logical) waits for the new node to replay the old
# one's WAL up to its *written* position, and with synchronous_commit off a commit is
# acknowledged before its WAL is written, so a write acknowledged in the move's last
# moments can stay behind on the old node (the move test in tests/test_placement.py
# lost such writes that way).
SETTINGS = """
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{data_dir}'
shared_preload_libraries = 'citus'
wal_level = logical
max_connections = 200
fsync = off
full_page_writes = off
"""


def ports() -> dict[str, int]:
    first = int(os.environ.get("CITUS_PORT", "9700"))
    return {node: first + offset for offset, node in enumerate(NODES)}


def database_name() -> str:
    return os.environ.get("CITUS_DB", "saas")


def bindir() -> Path:
    configured = os.environ.get("PG_BINDIR")
    if configured:
        return Path(configured)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise SystemExit("PostgreSQL server binaries not found; set PG_BINDIR")
    return found[-1].parent


def _run(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program, as the postgres user when we are root."""
    command = [str(arg) for arg in args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return result


def _prepare_data_dir() -> None:
    DATA_DIR.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        shutil.chown(DATA_DIR, user.pw_uid, user.pw_gid)


def _init(node: str, port: int) -> Path:
    data_dir = DATA_DIR / node
    if not (data_dir / "PG_VERSION").exists():
        _run(bindir() / "initdb", "-D", data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write(SETTINGS.format(host=HOST, port=port, data_dir=data_dir))
    return data_dir


def _running(data_dir: Path) -> bool:
    return _run(bindir() / "pg_ctl", "status", "-D", data_dir, check=False).returncode == 0


def _connect(port: int, dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(host=HOST, port=port, user="postgres", dbname=dbname, autocommit=True)


def up() -> str:
    """Start (creating if needed) the three nodes, join them, make the app's database; return its URL."""
    sys.path.insert(0, str(ROOT))
    from tenants import citus

    _prepare_data_dir()
    node_ports = ports()
    for node, port in node_ports.items():
        data_dir = _init(node, port)
        if _running(data_dir):
            continue
        log = DATA_DIR / f"{node}.log"
        if _run(bindir() / "pg_ctl", "start", "-w", "-D", data_dir, "-l", log, check=False).returncode:
            raise SystemExit(f"{node} did not start; see {log}")
    # The maintenance database holds the cluster's node list, where new databases find their nodes.
    workers = [(HOST, port) for node, port in node_ports.items() if node != "coordinator"]
    with _connect(node_ports["coordinator"]) as conn:
        citus.join_nodes(conn, "postgres", (HOST, node_ports["coordinator"]), workers)
        name = database_name()
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            citus.create_database(conn, name)
    return f"postgres://postgres@{HOST}:{node_ports['coordinator']}/{database_name()}"


def down() -> None:
    for node in NODES:
        data_dir = DATA_DIR / node
        if data_dir.exists() and _running(data_dir):
            _run(bindir() / "pg_ctl", "stop", "-w", "-m", "fast", "-D", data_dir)


if __name__ == "__main__":
    if sys.argv[1:] == ["up"]:
        url = up()
        print(f"Citus cluster ready: coordinator {HOST}:{ports()['coordinator']}, workers", end=" ")
        print(", ".join(f"{HOST}:{port}" for node, port in ports().items() if node != "coordinator"))
        print(f"DATABASE_URL={url}")
    elif sys.argv[1:] == ["down"]:
        down()
        print("Citus cluster stopped (data kept in .citus/)")
    else:
        raise SystemExit("usage: python -m config.citus_cluster up|down")
