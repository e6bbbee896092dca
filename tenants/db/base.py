"""django-tenants' PostgreSQL backend, issuing ``SET search_path`` only when the path really changes.

The stock backend forgets the path the session holds on every ``set_tenant()``, and the
resolution middleware calls it on every request, so every request paid one ``SET``. Here
the backend remembers what the *session* holds (``search_path_set_schemas``, cleared by
django-tenants itself on close, rollback and savepoint rollback, where PostgreSQL undoes
or loses a ``SET``) separately from what the code *wants*, and compares the two before
each cursor. A worker that keeps serving the same tenant never sends a ``SET`` again.
"""

from __future__ import annotations

from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper


class DatabaseWrapper(TenantDatabaseWrapper):
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
