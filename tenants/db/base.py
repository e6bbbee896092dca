"""django-tenants' PostgreSQL backend, issuing ``SET search_path`` only when the path really changes.

The stock backend forgets the path the session holds on every ``set_tenant()``, and the
resolution middleware calls it on every request, so every request paid one ``SET``. Here
the backend remembers what the *session* holds (``search_path_set_schemas``, cleared by
django-tenants itself on close, rollback and savepoint rollback, where PostgreSQL undoes
or loses a ``SET``) separately from what the code *wants*, and compares the two before
each cursor. A worker that keeps serving the same tenant never sends a ``SET`` again.

On a Citus coordinator the test database is made on every node with Citus in it
(``tenants.citus``), and a CHECK constraint added with a column is named (see
``DatabaseSchemaEditor``), so migrations and the suite run unchanged on a cluster.
"""

from __future__ import annotations

from django.db.backends.postgresql.creation import DatabaseCreation as PostgresCreation
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as PostgresSchemaEditor
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper

from tenants import citus


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
        super().__init__(*args, **kwargs)

    def set_tenant(self, tenant, include_public: bool = True) -> None:
        held = self.search_path_set_schemas
        super().set_tenant(tenant, include_public)
        # What the session holds did not change: only the wish did.
        self.search_path_set_schemas = held

    def wanted_search_paths(self) -> list[str]:
        key = (self.schema_name, self.include_public_schema)
        paths = self._wanted_paths.get(key)
        if paths is None:
            paths = self._get_cursor_search_paths()
            if len(self._wanted_paths) > 10_000:  # bounded: one entry per tenant served
                self._wanted_paths.clear()
            self._wanted_paths[key] = paths
        return paths

    def _handle_search_path(self, cursor=None) -> None:
        if self._setting_search_path:
            return
        if self.schema_name and self.search_path_set_schemas == self.wanted_search_paths():
            return
        # The parent would skip whenever any path is set (with TENANT_LIMIT_SET_CALLS); here a mismatch means "set it".
        self.search_path_set_schemas = None
        super()._handle_search_path(cursor)
