"""Create the database tables (SPEC §3): `python backend/init_db.py`, safe to run again."""

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.config import ConfigError, database_url, read_environment  # noqa: E402
from backend.startup import open_database  # noqa: E402


def main() -> int:
    """Bring the schema in DATABASE_URL up to date and say where it is; exit 2 with one line if it cannot."""
    try:
        engine = open_database(database_url(read_environment()))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"database ready: {engine.url.render_as_string(hide_password=True)}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
