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


def worker_nodes(cursor) -> dict[str, Node]:
    """The nodes that hold tenant schemas, by ``host:port``: every primary but the coordinator."""
    cursor.execute(
        "SELECT nodename, nodeport FROM pg_dist_node WHERE noderole = 'primary' AND groupid <> 0 "
        "ORDER BY nodename, nodeport"
    )
    return {f"{host}:{port}": (host, port) for host, port in cursor.fetchall()}


# Per worker: how many of the given schemas it holds and their bytes (every table, index and
# TOAST of their shards, as the workers report them in one round trip each).
NODE_USAGE = """
WITH schema_bytes AS (
    SELECT n.nspname, pl.groupid, sum(sizes.size) AS bytes
      FROM citus_shard_sizes() AS sizes
      JOIN pg_dist_placement pl ON pl.shardid = sizes.shard_id
      JOIN pg_dist_shard sh ON sh.shardid = sizes.shard_id
      JOIN pg_class c ON c.oid = sh.logicalrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY(%s)
     GROUP BY n.nspname, pl.groupid
)
SELECT d.nodename || ':' || d.nodeport, count(s.nspname), coalesce(sum(s.bytes), 0)::bigint
  FROM pg_dist_node d
  LEFT JOIN schema_bytes s ON s.groupid = d.groupid
 WHERE d.noderole = 'primary'
 GROUP BY d.nodename, d.nodeport, d.groupid
HAVING d.groupid <> 0 OR count(s.nspname) > 0
 ORDER BY d.nodename, d.nodeport
"""


def node_usage(cursor, schemas: Iterable[str]) -> list[tuple[str, int, int]]:
    """(``host:port``, schemas of ``schemas`` it holds, their bytes) for every worker."""
    cursor.execute(NODE_USAGE, [list(schemas)])
    return [(node, count, size) for node, count, size in cursor.fetchall()]


def move_schema(cursor, schema: str, node: Node) -> None:
    """Move a distributed schema to ``node`` without blocking its writes (logical replication).

    Citus allows one such move per transaction; writes pause only for the final catch-up.
    """
    cursor.execute(
        "SELECT citus_schema_move((SELECT oid FROM pg_namespace WHERE nspname = %s), %s, %s, 'force_logical')",
        [schema, node[0], node[1]],
    )


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
