"""The embedded PostgreSQL of the default path (``config.embedded_postgres``), in a data directory of its own."""

from __future__ import annotations

import psycopg

from config import embedded_postgres


def test_a_new_embedded_server_gets_its_settings_once_and_keeps_them(tmp_path):
    data_dir = tmp_path / "pgdata"
    try:
        settings = embedded_postgres.ensure_running(data_dir)
        with psycopg.connect(host=settings["HOST"], dbname="postgres", user="postgres") as conn:
            for name, value in embedded_postgres.SERVER_SETTINGS.items():
                assert conn.execute(f"SHOW {name}").fetchone()[0] == value
        pid = (data_dir / "postmaster.pid").read_text().split()[0]
        embedded_postgres.ensure_running(data_dir)  # configured: no second restart
        assert (data_dir / "postmaster.pid").read_text().split()[0] == pid
    finally:
        embedded_postgres.stop(data_dir)


def test_shared_buffers_are_a_quarter_of_memory_in_whole_gigabytes_from_1_to_8():
    gigabyte = 2**30
    assert embedded_postgres.shared_buffers(2 * gigabyte) == "1GB"
    assert embedded_postgres.shared_buffers(7 * gigabyte) == "1GB"
    assert embedded_postgres.shared_buffers(8 * gigabyte) == "2GB"
    assert embedded_postgres.shared_buffers(24 * gigabyte) == "6GB"
    assert embedded_postgres.shared_buffers(256 * gigabyte) == "8GB"
