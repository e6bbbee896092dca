"""Databases on a Citus cluster with schema-based sharding (one tenant schema per worker).

Citus lives per database: a database the project creates (the test database, the
benchmark's) must exist on every node, have the extension in it on every node, and know
the cluster's nodes. These functions do that when the server they are connected to is a
Citus coordinator, and nothing else on a plain PostgreSQL. They take plain psycopg
connections and import nothing from Django, so scripts outside the app can use them.

In a database made here, ``citus.enable_schema_based_sharding`` is on: every schema
created in it (every tenant's, every pool schema) becomes a distributed schema whose
tables live together on one worker, and the coordinator routes each query there by the
search path. Tables of ``public`` (the registry) stay local tables on the coordinator.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

Node = tuple[str, int]

# The node group of every distributed schema: a schema's tables live together, so the
# placement of any one of its shards says where (NULL for a schema without tables yet).
# One index look-up per schema, not a join of every table's shard.
SCHEMA_GROUPS = """
SELECT n.nspname,
       (SELECT pl.groupid FROM pg_dist_partition p
          JOIN pg_dist_shard sh ON sh.logicalrelid = p.logicalrelid
          JOIN pg_dist_placement pl ON pl.shardid = sh.shardid
         WHERE p.colocationid = s.colocationid LIMIT 1) AS groupid
  FROM pg_dist_schema s
  JOIN pg_namespace n ON n.oid = s.schemaid
"""

_known: dict[tuple[str, str], bool] = {}


def installed(cursor) -> bool:
    """Whether the connected database has the Citus extension (any DB-API cursor)."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
    return cursor.fetchone() is not None


def enabled(connection) -> bool:
    """Whether a Django connection's database is on Citus; asked once per database and process."""
    key = (connection.alias, connection.settings_dict["NAME"])
    if key not in _known:
        with connection.cursor() as cursor:
            _known[key] = installed(cursor)
    return _known[key]


def schema_nodes(cursor, schemas: Iterable[str] | None = None) -> dict[str, str]:
    """The node (``host:port``) each distributed schema lives on; only ``schemas`` if given."""
    query = (
        f"SELECT g.nspname, n.nodename || ':' || n.nodeport FROM ({SCHEMA_GROUPS}) AS g "
        "JOIN pg_dist_node n ON n.groupid = g.groupid AND n.noderole = 'primary'"
    )
    if schemas is None:
        cursor.execute(query)
    else:
        cursor.execute(query + " WHERE g.nspname = ANY(%s)", [list(schemas)])
    return dict(cursor.fetchall())


def propagate_database_ddl(cursor) -> bool:
    """On Citus, make this session's CREATE/DROP DATABASE reach every node. True if it is Citus."""
    if not installed(cursor):
        return False
    cursor.execute("SET citus.enable_create_database_propagation = on")
    return True


def nodes(conn: psycopg.Connection) -> tuple[Node, list[Node]]:
    """(coordinator, workers) of the connected database's cluster."""
    rows = conn.execute(
        "SELECT groupid, nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' ORDER BY nodename, nodeport"
    ).fetchall()
    coordinator = next(((host, port) for group, host, port in rows if group == 0), None)
    if coordinator is None:  # never registered: the address we reached it at
        coordinator = (conn.info.host, conn.info.port)
    return coordinator, [(host, port) for group, host, port in rows if group != 0]


def _connect_to(conn: psycopg.Connection, node: Node, dbname: str) -> psycopg.Connection:
    """A connection to ``dbname`` on ``node`` with the credentials of ``conn``."""
    conninfo = make_conninfo(conn.info.dsn, host=node[0], port=node[1], dbname=dbname, password=conn.info.password)
    return psycopg.connect(conninfo, autocommit=True)


def join_nodes(conn: psycopg.Connection, dbname: str, coordinator: Node, workers: Iterable[Node]) -> None:
    """Make ``dbname`` a Citus database on every node and register the nodes in it (idempotent).

    The extension must exist on a node before the coordinator adds that node.
    """
    workers = list(workers)
    for node in [coordinator, *workers]:
        with _connect_to(conn, node, dbname) as node_conn:
            node_conn.execute("CREATE EXTENSION IF NOT EXISTS citus")
    with _connect_to(conn, coordinator, dbname) as coordinator_conn:
        coordinator_conn.execute("SELECT citus_set_coordinator_host(%s, %s)", list(coordinator))
        known = set(coordinator_conn.execute("SELECT nodename, nodeport FROM pg_dist_node").fetchall())
        for node in workers:
            if node not in known:
                coordinator_conn.execute("SELECT citus_add_node(%s, %s)", list(node))


def prepare_database(conn: psycopg.Connection, dbname: str) -> None:
    """Turn a database just created on every node into a Citus database with schema-based sharding.

    ``conn`` is connected to a Citus database of the coordinator that knows the nodes.
    """
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET citus.enable_schema_based_sharding = on").format(sql.Identifier(dbname))
    )
    join_nodes(conn, dbname, *nodes(conn))


def create_database(conn: psycopg.Connection, dbname: str) -> None:
    """CREATE DATABASE; on Citus, on every node and ready for tenant schemas. ``conn`` is in autocommit."""
    citus = propagate_database_ddl(conn.cursor())
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    if citus:
        prepare_database(conn, dbname)


def drop_database(conn: psycopg.Connection, dbname: str) -> None:
    """DROP DATABASE IF EXISTS, closing its sessions; on Citus, on every node."""
    propagate_database_ddl(conn.cursor())
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def recreate_database(conn: psycopg.Connection, dbname: str) -> None:
    """A fresh, empty ``dbname`` (on Citus, on every node)."""
    drop_database(conn, dbname)
    create_database(conn, dbname)
