"""The public status page's reads (SPEC §12): the file's targets with their specs, and daily uptime from rollups."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from backend.database import file_targets, rollups, targets

_DAY = func.substr(rollups.c.hour, 1, 10)  # YYYY-MM-DD of YYYY-MM-DD HH:00:00


def file_target_specs(conn: Connection) -> list[dict]:
    """Every loaded file target's name, kind and spec (JSON text), in file order."""
    query = select(file_targets.c.name, file_targets.c.kind, file_targets.c.spec).order_by(file_targets.c.position)
    return [dict(row) for row in conn.execute(query).mappings()]


def daily_counts(conn: Connection, names: list[str], from_hour: str) -> dict[str, dict[str, tuple[int, int]]]:
    """Per target of `names` and UTC day from `from_hour` on, (checks, failures), summed in one statement."""
    if not names:
        return {}
    query = (select(rollups.c.target, _DAY.label("day"), func.sum(rollups.c.checks), func.sum(rollups.c.failures))
             .where(rollups.c.target.in_(names), rollups.c.hour >= from_hour)
             .group_by(rollups.c.target, _DAY))
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for target, day, checks, failures in conn.execute(query):
        counts.setdefault(target, {})[day] = (int(checks or 0), int(failures or 0))
    return counts


def checked_names(conn: Connection, names: list[str]) -> set[str]:
    """Those of `names` that have had a check applied."""
    query = select(targets.c.name).where(targets.c.name.in_(names), targets.c.last_check_at.is_not(None))
    return set(conn.execute(query).scalars())
