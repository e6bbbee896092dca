"""A schema's structure as comparable data: tables, columns, indexes, constraints, sequences."""

from __future__ import annotations

from django.db import connection


def _normalise(value: object, schema: str) -> object:
    if isinstance(value, str):
        return value.replace(f'"{schema}".', "<schema>.").replace(f"{schema}.", "<schema>.")
    return value


def describe(schema: str) -> dict[str, list[tuple]]:
    queries = {
        "tables": "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s ORDER BY 1",
        "columns": "SELECT table_name, column_name, ordinal_position, data_type, character_maximum_length, "
        "numeric_precision, is_nullable, column_default, is_identity, identity_generation "
        "FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 3",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 2",
        "constraints": "SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = k.connamespace "
        "WHERE n.nspname = %s ORDER BY 2",
        # last_value too (no sequence of an unused schema has moved), except the recorder's, which
        # counts how migrations were recorded rather than what the schema is.
        "sequences": "SELECT sequencename, data_type, start_value, min_value, max_value, increment_by, cycle, "
        "CASE WHEN sequencename = 'django_migrations_id_seq' THEN NULL ELSE last_value END "
        "FROM pg_sequences WHERE schemaname = %s ORDER BY 1",
        "migrations": None,
    }
    result: dict[str, list[tuple]] = {}
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for name, query in queries.items():
            if query is None:
                cursor.execute(f'SELECT app, name FROM "{schema}".django_migrations ORDER BY 1, 2')
            else:
                cursor.execute(query, [schema])
            result[name] = [tuple(_normalise(value, schema) for value in row) for row in cursor.fetchall()]
    return result


def rows_outside_migrations(schema: str) -> dict[str, int]:
    """Row counts of every table but django_migrations: all zero for a schema nobody used."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [schema],
        )
        tables = [row[0] for row in cursor.fetchall() if row[0] != "django_migrations"]
        counts = {}
        for table in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')
            counts[table] = cursor.fetchone()[0]
    return counts
