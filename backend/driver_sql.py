"""Hot-path statements run on the DBAPI cursor itself, their text written once per database and shape.

SQLAlchemy spends more CPU building the execution of a small statement (cache key, parameters,
result proxy, events) than SQLite takes to run it: on the ingest path that was 30% of a one-event
request's CPU (cProfile), SQLite's own work 5% of it. Here a statement is plain text with `?`
placeholders, rewritten once for the connection's driver (`%s` for psycopg), so each driver
prepares it once (sqlite3's and psycopg's statement caches key on the text). Errors are wrapped as
SQLAlchemy wraps them, so callers and the API's handlers see the same exceptions either way.
"""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError


@lru_cache(maxsize=256)
def _for_driver(text: str, dialect_name: str) -> str:
    # psycopg takes %s (and a literal % would need doubling: no statement here has one).
    return text if dialect_name == "sqlite" else text.replace("?", "%s")


def marks(count: int) -> str:
    """`?, ?, …` for `count` values: an IN list or one VALUES row."""
    return ", ".join("?" * count)


def execute(conn: Connection, text: str, params: tuple | list = (), many: bool = False):
    """Run `text` (with `?` placeholders) in the connection's transaction; return the DBAPI cursor."""
    dialect = conn.dialect
    sql = _for_driver(text, dialect.name)
    raw = conn.connection.driver_connection
    cursor = raw.cursor()
    if conn.dispatch.before_cursor_execute:  # only tests listen: they see these statements as any other
        conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
    try:
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except dialect.loaded_dbapi.Error as exc:
        # As SQLAlchemy does: a lost connection is invalidated (the pool makes a new one), and the
        # error is its wrapped kind (OperationalError, IntegrityError, …), without the values.
        lost = dialect.is_disconnect(exc, raw, cursor)
        if lost:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, params, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                  connection_invalidated=lost, dialect=dialect) from exc
    return cursor


def rows(conn: Connection, text: str, params: tuple | list = ()) -> list[tuple]:
    """The rows `text` selects."""
    cursor = execute(conn, text, params)
    try:
        return cursor.fetchall()
    finally:
        cursor.close()
