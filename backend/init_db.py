"""Create the database tables (SPEC §3): `python backend/init_db.py`, safe to run again."""

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.config import database_url, read_environment  # noqa: E402
from backend.database import init_db, make_engine  # noqa: E402


def main() -> int:
    """Create the schema in DATABASE_URL and say where it is."""
    engine = make_engine(database_url(read_environment()))
    init_db(engine)
    print(f"database ready: {engine.url.render_as_string(hide_password=True)}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
