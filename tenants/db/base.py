"""django-tenants' PostgreSQL backend, in two pooling modes (``DATABASES["default"]["POOL_MODE"]``).

``direct`` (the default: the app talks to PostgreSQL, or to a pooler in session mode)
keeps the search path in the session and issues ``SET search_path`` only when it really
changes. The stock backend forgets the path the session holds on every ``set_tenant()``,
and the resolution middleware calls it on every request, so every request paid one
``SET``. Here the backend remembers what the *session* holds (``search_path_set_schemas``,
cleared by django-tenants itself on close, rollback and savepoint rollback, where
PostgreSQL undoes or loses a ``SET``) separately from what the code *wants*, and compares
the two before each cursor. A worker that keeps serving the same tenant never sends a
``SET`` again.

``transaction`` (behind PgBouncer, or any pooler, in transaction mode) relies on no
session state at all, because the next transaction may run on another server connection
that another client has just used. Every statement is sent as one simple-protocol
message ``SELECT set_config('search_path', '<path>', true); <statement>``: PostgreSQL runs
the statements of one message in one transaction (the implicit one of an autocommit
statement, or the explicit one it belongs to), and ``set_config(..., true)`` lasts until
that transaction ends. So each statement finds the tenant's path whichever server
connection runs it, and leaves nothing behind for the next client. This needs psycopg's
client-side binding (Django's default), which is also what keeps psycopg from preparing
statements; server-side cursors are disabled too, since a cursor would outlive its
transaction.

Each PostgreSQL backend caches the catalogue entries of every relation it touches, and
keeps them: a connection that serves every tenant in turn grows with the number of
schemas. In direct mode a connection that has served more than ``MAX_SCHEMAS_PER_CONNECTION``
distinct schemas (0: no limit) is closed at the end of the request that went over, and
the next request gets a fresh backend. (Behind a transaction pooler the server
connections belong to the pooler: PgBouncer's ``server_lifetime`` bounds them.)

In both modes there is no health check (``CONN_HEALTH_CHECKS``, a ``SELECT 1`` before
every request). A persistent connection that a server restart killed while it was idle
is found without a round trip instead: at the start of each request its socket is polled,
and a server that ended the session has sent its error and closed it, where a live idle
session has sent nothing; such a connection is closed and the request connects afresh.
Should it die between that poll and the first statement, and that statement be a read
outside any transaction, the connection is replaced and the read sent once more. Nothing
can have happened twice: a read, in no transaction. Any other failure goes up as before
(503 for an outage, core.outage).

On a Citus coordinator the test database is made on every node with Citus in it
(``tenants.citus``), and a CHECK constraint added with a column is named (see
``DatabaseSchemaEditor``), so migrations and the suite run unchanged on a cluster.
"""

from __future__ import annotations

import re
import select

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db.backends.postgresql.base import Cursor, CursorDebugWrapper
from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor
from django.db.backends.utils import CursorWrapper
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper

from core.outage import is_database_unavailable
from tenants import citus

DIRECT = "direct"
TRANSACTION = "transaction"
POOL_MODES = (DIRECT, TRANSACTION)
# Search paths remembered per connection, one per schema served: above the tenants a worker
# serves (a bound of 10,000 was cleared and refilled over and over at 10,000 tenants).
MEMO_ENTRIES = 50_000

# Statements sent without the path: transaction control (the path rides on the statements
# inside the transaction; a ROLLBACK TO after an error must not be preceded by a query), and
# statements PostgreSQL refuses inside a transaction block.
_SENT_ALONE = re.compile(
    r"\s*(?:BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION"
    r"|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM|VACUUM|CREATE\s+TABLESPACE|DROP\s+TABLESPACE)\b"
    r"|\s*(?:CREATE|DROP|REINDEX)\b[^;]*\bCONCURRENTLY\b",
    re.IGNORECASE | re.DOTALL,
)


class TransactionPoolCursor(Cursor):
    """A client-side-binding cursor that sends the tenant's search path inside every statement's transaction."""

    tenant_db: DatabaseWrapper | None = None  # set by DatabaseWrapper.create_cursor

    def execute(self, query, params=None, **kwargs):
        db = self.tenant_db
        if db is None:  # Django's own cursors (health check, time zone): no tenant table involved
            return super().execute(query, params, **kwargs)
        if not isinstance(query, str):
            query = query.decode() if isinstance(query, bytes) else query.as_string(self)
        if _SENT_ALONE.match(query):
            return super().execute(query, params, **kwargs)
        prefix = db.search_path_statement(escape_percent=params is not None)
        super().execute(prefix + query, params, **kwargs)
        self.nextset()  # the caller's result, not set_config's
        return self

    def executemany(self, query, params_seq, **kwargs):
        # psycopg batches executemany in pipeline mode, which takes one statement per message.
        total = 0
        for params in params_seq:
            self.execute(query, params)
            total += max(self.rowcount, 0)
        self._rowcount = total


class _RetryFirstRead:
    """Cursor wrapper part: the first statement of a request may be retried once (see the module's docstring)."""

    def _execute(self, sql, params, *ignored_wrapper_args):
        db = self.db
        # The backend's own SET search_path does not count: django-tenants swallows its failure,
        # so the statement after it is the one that finds out.
        if not db.retry_first_read or db._setting_search_path:
            return super()._execute(sql, params, *ignored_wrapper_args)
        db.retry_first_read = False
        try:
            return super()._execute(sql, params, *ignored_wrapper_args)
        except Exception as exc:
            if db.in_atomic_block or not _is_read(sql) or not is_database_unavailable(exc):
                raise
        db.close()
        # A new connection (with the path set, in direct mode); its psycopg cursor replaces ours.
        self.cursor = db._cursor().cursor
        return super()._execute(sql, params, *ignored_wrapper_args)


def _hung_up(pgconn: psycopg.pq.abc.PGconn) -> bool:
    """True when this idle session's socket has something to read: the server has ended it.

    A poll with no wait, no round trip. A server that ends a session (shutdown, restart,
    ``pg_terminate_backend``) sends an error and closes the socket; a live idle session of
    the app's (which never LISTENs) has nothing to send. Anything else that arrives while
    idle (a notice) costs at most a reconnect.
    """
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, psycopg.Error):
        return True


def _is_read(sql: object) -> bool:
    return isinstance(sql, str) and sql.lstrip()[:6].upper() == "SELECT"


class RetryingCursorWrapper(_RetryFirstRead, CursorWrapper):
    pass


class RetryingCursorDebugWrapper(_RetryFirstRead, CursorDebugWrapper):
    pass


class DatabaseCreation(PostgresCreation):
    """On a Citus coordinator, the test database is made and dropped on every node."""

    def _execute_create_test_db(self, cursor, parameters, keepdb: bool = False) -> None:
        if not citus.propagate_database_ddl(cursor):
            super()._execute_create_test_db(cursor, parameters, keepdb)
            return
        name = self._get_test_db_name()
        if not keepdb:
            citus.drop_database(cursor.connection, name)  # left behind by an interrupted run
        super()._execute_create_test_db(cursor, parameters, keepdb)
        citus.prepare_database(cursor.connection, name)

    def _destroy_test_db(self, test_database_name: str, verbosity: int) -> None:
        self.connection.close_pool()
        with self._nodb_cursor() as cursor:
            if citus.installed(cursor):
                # The nodes' maintenance daemons hold sessions in every Citus database: only FORCE ends them.
                citus.drop_database(cursor.connection, test_database_name)
                return
        super()._destroy_test_db(test_database_name, verbosity)


def inline_constraint_name(table: str, column: str, label: str) -> str:
    """The name PostgreSQL gives a column's unnamed constraint: table_column_label, cut to 63 bytes.

    Like PostgreSQL's makeObjectName, the longer of table and column loses characters first.
    """
    room = 63 - len(label) - 2
    keep_table, keep_column = len(table), len(column)
    while keep_table + keep_column > room:
        if keep_table > keep_column:
            keep_table -= 1
        else:
            keep_column -= 1
    return f"{table[:keep_table]}_{column[:keep_column]}_{label}"


class DatabaseSchemaEditor(PostgresSchemaEditor):
    def add_field(self, model, field) -> None:
        """Add a column; on Citus a CHECK that comes with it (PositiveIntegerField's) is named.

        Citus refuses ``ADD COLUMN ... CHECK (...)`` with an unnamed constraint. The name given
        is the one PostgreSQL would choose, so the table ends up as it does on a single server.
        """
        if not (field.db_parameters(connection=self.connection)["check"] and citus.enabled(self.connection)):
            super().add_field(model, field)
            return
        name = inline_constraint_name(model._meta.db_table, field.column, "check")
        self.sql_check_constraint = f"CONSTRAINT {self.quote_name(name)} {PostgresSchemaEditor.sql_check_constraint}"
        try:
            super().add_field(model, field)
        finally:
            del self.sql_check_constraint  # back to the class's


class DatabaseWrapper(TenantDatabaseWrapper):
    creation_class = DatabaseCreation
    SchemaEditorClass = DatabaseSchemaEditor

    def __init__(self, *args: object, **kwargs: object) -> None:
        # Memo of the wanted path per (schema, include_public): _get_cursor_search_paths
        # validates every part with a regex, which we need not repeat per cursor.
        self._wanted_paths: dict[tuple[str, bool], list[str]] = {}
        self._path_statements: dict[tuple[str, bool, bool], str] = {}
        # True from the start of a request that found a persistent connection until its first statement.
        self.retry_first_read = False
        # Schemas this connection's server session has had on its path since it connected.
        self.schemas_served: set[str] = set()
        super().__init__(*args, **kwargs)
        self.max_schemas = int(self.settings_dict.get("MAX_SCHEMAS_PER_CONNECTION") or 0)
        self.pool_mode = self.settings_dict.get("POOL_MODE") or DIRECT
        if self.pool_mode not in POOL_MODES:
            raise ImproperlyConfigured(f"POOL_MODE must be one of {', '.join(POOL_MODES)}, not {self.pool_mode!r}")
        if self.pool_mode == TRANSACTION:
            if self.settings_dict["OPTIONS"].get("server_side_binding"):
                raise ImproperlyConfigured("POOL_MODE transaction needs client-side binding (server_side_binding off)")
            # A server-side cursor lives across statements on one server connection.
            self.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        if self.pool_mode == TRANSACTION:
            params["cursor_factory"] = TransactionPoolCursor
            params["prepare_threshold"] = None  # a prepared statement lives in one server session
        return params

    def connect(self) -> None:
        self.schemas_served = set()
        super().connect()

    def close_if_unusable_or_obsolete(self) -> None:
        # Django calls this at the start and the end of every request (close_old_connections).
        super().close_if_unusable_or_obsolete()
        if self.connection is None or self.in_atomic_block:
            self.retry_first_read = False
            return
        if self.max_schemas and len(self.schemas_served) > self.max_schemas:
            self.close()  # its backend's catalogue cache has grown with every schema: start afresh
        elif _hung_up(self.connection.pgconn):
            self.close()  # the server ended the session (a restart): the next statement reconnects
        self.retry_first_read = self.connection is not None

    def make_cursor(self, cursor):
        return RetryingCursorWrapper(cursor, self)

    def make_debug_cursor(self, cursor):
        return RetryingCursorDebugWrapper(cursor, self)

    def create_cursor(self, name=None):
        cursor = super().create_cursor(name)
        if self.pool_mode == TRANSACTION:
            cursor.tenant_db = self
        return cursor

    def set_tenant(self, tenant, include_public: bool = True) -> None:
        if tenant.schema_name == self.schema_name and include_public == self.include_public_schema:
            # The schema already wanted (a worker serving one tenant again): nothing to change,
            # and no content type cache to clear, since that only differs between schemas.
            self.tenant = tenant
            return
        held = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        # What the session holds did not change: only the wish did.
        self.search_path_set_schemas = held

    def wanted_search_paths(self) -> list[str]:
        key = (self.schema_name, self.include_public_schema)
        paths = self._wanted_paths.get(key)
        if paths is None:
            paths = self._get_cursor_search_paths()
            if len(self._wanted_paths) > MEMO_ENTRIES:  # bounded: one entry per tenant served
                self._wanted_paths.clear()
            self._wanted_paths[key] = paths
        return paths

    def search_path_statement(self, escape_percent: bool) -> str:
        """``SELECT set_config('search_path', ..., true);`` for the wanted path (transaction mode)."""
        key = (self.schema_name, self.include_public_schema, escape_percent)
        statement = self._path_statements.get(key)
        if statement is None:
            if not self.schema_name:
                raise ImproperlyConfigured("Database schema not set. Did you forget to call set_schema()?")
            # Every part was validated by _get_cursor_search_paths: no quote, backslash or semicolon.
            value = ",".join(f'"{schema}"' for schema in self.wanted_search_paths())
            statement = f"SELECT set_config('search_path', '{value}', true); "
            if escape_percent:  # the statement goes through psycopg's %s formatting with the caller's
                statement = statement.replace("%", "%%")
            if len(self._path_statements) > MEMO_ENTRIES:
                self._path_statements.clear()
            self._path_statements[key] = statement
        return statement

    def _handle_search_path(self, cursor=None) -> None:
        if self._setting_search_path or self.pool_mode == TRANSACTION:
            return  # transaction mode: TransactionPoolCursor sends the path with every statement
        if self.schema_name and self.search_path_set_schemas == self.wanted_search_paths():
            return
        # The parent would skip whenever any path is set (with TENANT_LIMIT_SET_CALLS); here a mismatch means "set it".
        self.search_path_set_schemas = None
        super()._handle_search_path(cursor)
        if self.max_schemas:
            self.schemas_served.add(self.schema_name)
