"""A real PgBouncer (Debian's package) in transaction mode, for the tests and the benchmark.

The test session starts one (the ``pgbouncer`` fixture) on a free port in front of the
test PostgreSQL with a pool as small as it can be, two server connections for the whole
database, so that every client's transactions are spread over the same two server
sessions, as under a production pooler at full load; ``make bench`` starts one for its
pooled figures. PgBouncer refuses to run as root: as root it is started with ``-u`` and
drops to the owner of the server's socket directory (the embedded server's user) or to
``postgres``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

BINARY_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")
# The settings the README tells operators to use, with the smallest pool (the tests').
SERVER_CONNECTIONS = 2


def find_binary() -> str | None:
    for candidate in BINARY_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgBouncer:
    process: subprocess.Popen
    directory: Path
    port: int
    user: str
    password: str

    def url(self, dbname: str) -> str:
        credentials = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        return f"postgres://{credentials}@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # immediate shutdown: server connections closed
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


def _run_as(host: str) -> str | None:
    """Whom PgBouncer runs as: None when we are not root; else someone who can reach the server."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    return "postgres"


def start(binary: str, settings_dict: dict, server_connections: int = SERVER_CONNECTIONS) -> PgBouncer:
    """Start PgBouncer in front of the server of ``settings_dict`` (Django's connection settings)."""
    host = settings_dict["HOST"] or "localhost"
    port = str(settings_dict["PORT"] or 5432)
    user = settings_dict["USER"] or "postgres"
    password = settings_dict["PASSWORD"] or ""
    run_as = _run_as(host)
    directory = Path(tempfile.mkdtemp(prefix="saas-pgbouncer-", dir="/tmp" if run_as else None))
    listen_port = _free_port()
    (directory / "users.txt").write_text(f'"{user}" "{password}"\n')
    (directory / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={host} port={port}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {listen_port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {directory / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {server_connections}",
                f"max_db_connections = {server_connections}",
                "reserve_pool_size = 0",
                "max_client_conn = 500",
                "ignore_startup_parameters = extra_float_digits",
                "server_login_retry = 1",
                f"logfile = {directory / 'pgbouncer.log'}",
                f"pidfile = {directory / 'pgbouncer.pid'}",
                "",
            ]
        )
    )
    command = [binary]
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        for name in ("users.txt", "pgbouncer.ini"):
            os.chown(directory / name, entry.pw_uid, entry.pw_gid)
        command += ["-u", run_as]
    command.append(str(directory / "pgbouncer.ini"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bouncer = PgBouncer(process, directory, listen_port, user, password)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = bouncer.log()
            bouncer.stop()
            raise RuntimeError(f"pgbouncer exited at start ({process.returncode}):\n{log}")
        try:
            with socket.create_connection(("127.0.0.1", listen_port), timeout=0.2):
                return bouncer
        except OSError:
            time.sleep(0.05)
    bouncer.stop()
    raise RuntimeError("pgbouncer did not listen within 15 s")
