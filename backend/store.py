"""Every SQL statement the backend runs: small functions over a Connection, portable SQL only."""

from __future__ import annotations

from functools import lru_cache
from operator import itemgetter

from sqlalchemy import (Connection, and_, bindparam, case, delete, exists, func, insert, literal, select, tuple_,
                        union, update)
from sqlalchemy.exc import IntegrityError, OperationalError

from backend import driver_sql
from backend.database import (agents, alerts, deadline_timer, deliveries, events, file_targets, leases,
                              notification_logs, paused_targets, rollup_progress, rollups, targets, targets_file)
from backend.driver_sql import marks
from backend.rules import ACTIVE_STATUSES


# The statements of the ingest path run on the driver's cursor (backend/driver_sql.py): building a
# SQLAlchemy execution cost more than SQLite takes to run the statement (cProfile, one-event requests).
_MAX_PARAMS = 500  # IN lists stay far below any database's bound-parameter limit


def _rows_in(conn: Connection, statement, name: str, values: list):
    """Run a statement with an expanding IN parameter `name` over `values`, in bounded chunks."""
    for start in range(0, len(values), _MAX_PARAMS):
        yield from conn.execute(statement, {name: values[start:start + _MAX_PARAMS]})


def events_by_uid(conn: Connection, uids: list[str]) -> dict[str, int]:
    """The ids of already stored events among these event_uids."""
    found = {}
    for chunk in _chunks(uids):
        found.update(driver_sql.rows(conn, f"SELECT event_uid, id FROM events WHERE event_uid IN ({marks(len(chunk))})",
                                     chunk))
    return found


def _chunks(values: list) -> list[list]:
    """`values` in IN lists far below any database's bound-parameter limit."""
    return [values[start:start + _MAX_PARAMS] for start in range(0, len(values), _MAX_PARAMS)]


# A target's rule state, as lock_targets returns it (and SELECTs it).
_TARGET_COLUMNS = ("name", "failures_in_a_row", "last_check_at", "successes_in_a_row", "slow_in_a_row",
                   "clear_in_a_row", "last_received_at")
_SELECT_TARGETS = f"SELECT {', '.join(_TARGET_COLUMNS)} FROM targets WHERE name IN "
# PostgreSQL locks rows in the order it reads them, which is its plan's (physical, or the column's
# collation), not the list's: sorted before locking, by code point like Python's sorted() (SPEC §8 names).
_LOCK_SORTED = ' ORDER BY name COLLATE "C" FOR UPDATE'


def lock_targets(conn: Connection, names: list[str]) -> dict[str, dict]:
    """The rule state of each target (by its key, SPEC §8), locked for this transaction (made empty on a first check).

    SELECT … FOR UPDATE makes concurrent writers for one target take turns on PostgreSQL; on
    SQLite the write transaction (BEGIN IMMEDIATE) already does, and FOR UPDATE is left out.
    Pass the names sorted, so that two transactions always lock in the same order.
    """
    if conn.dialect.name == "postgresql":
        return _lock_targets_postgresql(conn, names)
    found = _select_targets(conn, names, "")
    missing = [name for name in names if name not in found]
    if missing:  # under BEGIN IMMEDIATE nobody else can be creating them
        _create_targets(conn, missing)
        found.update(_select_targets(conn, missing, ""))
    return found


def _create_targets(conn: Connection, names: list[str]) -> None:
    """Empty rule state for each name that has none, in the order given, chunk after chunk."""
    for chunk in _chunks(names):
        driver_sql.execute(conn, "INSERT INTO targets (name, failures_in_a_row, successes_in_a_row, slow_in_a_row, "
                                 "clear_in_a_row) VALUES " + ", ".join(["(?, 0, 0, 0, 0)"] * len(chunk))
                                 + " ON CONFLICT (name) DO NOTHING", chunk).close()


def _lock_targets_postgresql(conn: Connection, names: list[str]) -> dict[str, dict]:
    """Create the missing rows, then lock every row: each step in the one sorted order, chunk after chunk.

    Creating first means no transaction waits on another's new row while holding rows locked in
    this call; ON CONFLICT DO NOTHING waits only for a row another transaction is still creating,
    and never locks an existing one. The waits of each step then follow one order: no cycle.
    """
    _create_targets(conn, names)
    return _select_targets(conn, names, _LOCK_SORTED)


def _select_targets(conn: Connection, names: list[str], tail: str) -> dict[str, dict]:
    found = {}
    for chunk in _chunks(names):
        for row in driver_sql.rows(conn, f"{_SELECT_TARGETS}({marks(len(chunk))}){tail}", chunk):
            found[row[0]] = dict(zip(_TARGET_COLUMNS, row))
    return found


def active_alert_ids(conn: Connection, names: list[str]) -> dict[str, tuple[int, str]]:
    """The OPEN or ACK alert of each of these targets (by name) that has one: its id and type (ERROR or WARNING)."""
    found = {}
    for chunk in _chunks(names):
        for target, alert_id, alert_type in driver_sql.rows(
                conn, f"SELECT target, id, alert_type FROM alerts WHERE target IN ({marks(len(chunk))}) "
                      f"AND status IN ({marks(len(ACTIVE_STATUSES))})", [*chunk, *ACTIVE_STATUSES]):
            found[target] = (alert_id, alert_type)
    return found


_SAVE_TARGET = ("UPDATE targets SET failures_in_a_row = ?, last_check_at = ?, successes_in_a_row = ?, "
                "slow_in_a_row = ?, clear_in_a_row = ?, last_received_at = ? WHERE name = ?")


def save_targets(conn: Connection, rows: list[dict]) -> None:
    """Write the rule state of targets locked earlier by lock_targets (one executemany)."""
    if rows:
        driver_sql.execute(conn, _SAVE_TARGET, [
            (r["failures_in_a_row"], r["last_check_at"], r["successes_in_a_row"], r["slow_in_a_row"],
             r["clear_in_a_row"], r["last_received_at"], r["name"]) for r in rows], many=True).close()


# What an agent measured of a file target's check (SPEC §9): columns a row may leave out.
MEASURED_COLUMNS = ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "cert_expires_at")
_EVENT_COLUMNS = ("target_url", "status_code", "response_time_ms", "timestamp", "is_success", "error_message",
                  "received_at", "event_uid", "is_late", "checked_at", "target", "agent", "failed")
_INSERT_ROWS = 500  # rows per INSERT: 19 values each, far below SQLite's 32,766 bound parameters


@lru_cache(maxsize=64)
def _insert_events_sql(count: int, measured: bool) -> str:
    columns = (*_EVENT_COLUMNS, *(MEASURED_COLUMNS if measured else ()), "batch_position")
    row = f"({marks(len(columns))})"
    # batch_position numbers the rows, and comes back with each id: RETURNING promises no order.
    return (f"INSERT INTO events ({', '.join(columns)}) VALUES {', '.join([row] * count)} "
            "RETURNING id, batch_position")


def insert_events(conn: Connection, rows: list[dict]) -> list[int]:
    """Store check results and return their ids, in the order given.

    Rows may leave out MEASURED_COLUMNS; when none has them (TARGET_URL agents) they are not sent
    at all, which keeps the statement as narrow as before they existed.
    """
    measured = any(MEASURED_COLUMNS[-1] in row for row in rows)
    columns = (*_EVENT_COLUMNS, *(MEASURED_COLUMNS if measured else ()))
    values_of = itemgetter(*columns)  # in C: flattening the rows was a sixth of a batch's CPU (yappi, batches of 500)

    def values(row: dict) -> tuple:
        try:
            return values_of(row)
        except KeyError:  # a row without the measured columns in a batch that has them
            return tuple(row.get(column) for column in columns)

    if conn.dialect.name == "sqlite":
        return _insert_events_sqlite(conn, columns, [values(row) for row in rows])
    ids = []
    for start in range(0, len(rows), _INSERT_ROWS):
        chunk = rows[start:start + _INSERT_ROWS]
        flat = []
        for position, row in enumerate(chunk):
            flat.extend(values(row))
            flat.append(position)
        returned = driver_sql.rows(conn, _insert_events_sql(len(chunk), measured), flat)
        ids.extend(event_id for event_id, _ in sorted(returned, key=lambda pair: pair[1]))
    return ids


@lru_cache(maxsize=4)
def _insert_event_sql(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({marks(len(columns))})"


def _insert_events_sqlite(conn: Connection, columns: tuple[str, ...], values: list[tuple]) -> list[int]:
    """One executemany, its ids counted back from the last one: a third of the time of a multi-row INSERT.

    SQLite runs a 500-row VALUES list as a compound SELECT (7 ms here, against 2.7 ms for the same
    rows one prepared statement at a time). The ids need no RETURNING: events is AUTOINCREMENT, so
    each new row's id is one more than the largest id the table ever had, and the write
    transaction (BEGIN IMMEDIATE) lets nobody else insert in between; so the rows have the
    consecutive ids that end at last_insert_rowid(), in the order given.
    """
    cursor = driver_sql.execute(conn, _insert_event_sql(columns), values, many=True)
    try:
        count = cursor.rowcount
        [(last,)] = cursor.execute("SELECT last_insert_rowid()").fetchall()
    finally:
        cursor.close()
    if count != len(values):  # cannot happen for a plain INSERT; never hand out ids that are not these rows'
        raise RuntimeError(f"{count} of {len(values)} events were inserted")
    return list(range(last - count + 1, last + 1))


_DELIVERY_NAMES = frozenset(deliveries.c.keys())


def insert_deliveries(conn: Connection, rows: list[dict]) -> None:
    """Queue notices in the outbox (rows with the same keys), in one statement."""
    if rows:
        columns = tuple(rows[0])
        assert _DELIVERY_NAMES.issuperset(columns), columns
        driver_sql.execute(conn, _insert_text("deliveries", columns, len(rows)),
                           [row[column] for row in rows for column in columns]).close()


# An alert as the API shows it: every column but the WARNING reason (internal JSON) and the timers' due times.
_ALERT_COLUMNS = [column for column in alerts.c if column.name not in ("reason", "remind_at", "escalate_at")]


def _next_delivery_query():
    earlier = deliveries.alias("earlier")
    channel, now = bindparam("channel"), bindparam("now")
    blocked = exists().where(and_(earlier.c.alert_id == deliveries.c.alert_id, earlier.c.channel == channel,
                                  earlier.c.status == "PENDING", earlier.c.id < deliveries.c.id))
    # The alert as it is at send time, under names that do not clash with the delivery's own columns.
    # (alerts.id is the delivery's own alert_id.)
    alert_now = [column.label(f"alert_{column.name}") for column in _ALERT_COLUMNS if column.name != "id"]
    return (select(deliveries, events.c.target_url, events.c.status_code, events.c.response_time_ms,
                   events.c.error_message, events.c.timestamp, alerts.c.reason, *alert_now)
            .join(events, events.c.id == deliveries.c.event_id)
            .join(alerts, alerts.c.id == deliveries.c.alert_id)
            .where(deliveries.c.channel == channel, deliveries.c.status == "PENDING",
                   deliveries.c.next_attempt_at <= now, ~blocked)
            .order_by(deliveries.c.id).limit(1))


_NEXT_DELIVERY = _next_delivery_query()  # polled several times a second: built once


def next_delivery(conn: Connection, channel: str, now: str) -> dict | None:
    """The channel's oldest due delivery, never overtaking an earlier pending one for the same alert."""
    row = conn.execute(_NEXT_DELIVERY, {"channel": channel, "now": now}).mappings().first()
    return dict(row) if row else None


def claim_delivery(conn: Connection, delivery_id: int, holder: str, now: str, until: str) -> bool:
    """Claim a due delivery for one attempt until `until`; True only for the one claimer that won it.

    The claim is the row itself: `next_attempt_at` moves to the claim's end, so nobody else sees
    the row as due until the claim has expired, whatever the leases do (Healthchecks' sendalerts).
    """
    claimed = conn.execute(update(deliveries).where(
        deliveries.c.id == delivery_id, deliveries.c.status == "PENDING", deliveries.c.next_attempt_at <= now,
    ).values(claimed_by=holder, next_attempt_at=until))
    return claimed.rowcount == 1


def update_delivery(conn: Connection, delivery_id: int, holder: str, values: dict) -> bool:
    """Record the outcome of an attempt on its outbox row, if `holder` still has it claimed."""
    result = conn.execute(update(deliveries).where(
        deliveries.c.id == delivery_id, deliveries.c.status == "PENDING", deliveries.c.claimed_by == holder,
    ).values(claimed_by=None, **values))
    return result.rowcount == 1


def free_claims_of_dead(conn: Connection, channel: str, now: str, is_dead) -> int:
    """Make a channel's deliveries claimed by dead holders due now (a kill -9 mid-attempt); how many."""
    holders = conn.execute(select(deliveries.c.claimed_by).distinct().where(
        deliveries.c.channel == channel, deliveries.c.status == "PENDING",
        deliveries.c.claimed_by.is_not(None))).scalars()
    freed = 0
    for holder in [h for h in holders if is_dead(h)]:
        freed += conn.execute(update(deliveries).where(
            deliveries.c.channel == channel, deliveries.c.status == "PENDING", deliveries.c.claimed_by == holder,
        ).values(claimed_by=None, next_attempt_at=now)).rowcount
    return freed


def pending_deliveries_outside(conn: Connection, channels: list[str]) -> list[dict]:
    """Pending deliveries for channels other than these (channels since removed from the settings)."""
    rows = conn.execute(select(deliveries).where(deliveries.c.status == "PENDING",
                                                 deliveries.c.channel.not_in(channels)).order_by(deliveries.c.id))
    return [dict(row) for row in rows.mappings()]


def finish_delivery(conn: Connection, delivery_id: int, status: str, finished_at: str) -> bool:
    """End a still pending delivery as SENT or FAILED; True when this call ended it."""
    result = conn.execute(update(deliveries).where(deliveries.c.id == delivery_id, deliveries.c.status == "PENDING")
                          .values(status=status, finished_at=finished_at, claimed_by=None))
    return result.rowcount == 1


def count_pending_deliveries(conn: Connection) -> int:
    """How many notices are still waiting to be delivered."""
    query = select(func.count()).select_from(deliveries).where(deliveries.c.status == "PENDING")
    return conn.execute(query).scalar_one()


def acquire_lease(conn: Connection, name: str, holder: str, now: str, expires_at: str,
                  is_dead=lambda holder: False) -> bool:
    """Take or renew a named lease; True when `holder` has it until `expires_at`.

    A lease is free when it has expired, or when `is_dead(current_holder)` says its holder is gone.
    """
    current = conn.execute(select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)).first()
    if current is None:
        try:
            with conn.begin_nested():
                conn.execute(insert(leases).values(name=name, holder=holder, expires_at=expires_at))
        except IntegrityError:
            return False  # another process created it first
        return True
    if current.holder != holder and current.expires_at >= now and not is_dead(current.holder):
        return False
    # Conditional on the row we saw, holder and expiry, so two takers can never both win, nor a
    # taker and a late renewal by the holder (on PostgreSQL both UPDATEs would match the holder).
    taken = conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == current.holder,
                                              leases.c.expires_at == current.expires_at)
                         .values(holder=holder, expires_at=expires_at))
    return taken.rowcount == 1


def release_lease(conn: Connection, name: str, holder: str) -> None:
    """Give a lease up at once, so another process can take over without waiting for expiry."""
    conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder).values(expires_at=""))


def purge_deliveries(conn: Connection, older_than: str, limit: int) -> int:
    """Delete up to `limit` finished (SENT or FAILED) deliveries that finished before `older_than`."""
    doomed = (select(deliveries.c.id).where(deliveries.c.status.in_(("SENT", "FAILED")),
                                            deliveries.c.finished_at < older_than)
              .order_by(deliveries.c.id).limit(limit))
    return conn.execute(delete(deliveries).where(deliveries.c.id.in_(doomed.scalar_subquery()))).rowcount


def purge_events(conn: Connection, older_than: str, limit: int) -> int:
    """Delete up to `limit` events checked before `older_than`, keeping any an alert or outbox row uses."""
    used = union(select(alerts.c.event_id),
                 select(alerts.c.resolved_event_id).where(alerts.c.resolved_event_id.is_not(None)),
                 select(deliveries.c.event_id))
    doomed = (select(events.c.id).where(events.c.timestamp < older_than, events.c.id.not_in(used))
              .order_by(events.c.id).limit(limit))
    return conn.execute(delete(events).where(events.c.id.in_(doomed.scalar_subquery()))).rowcount


def recent_failures(conn: Connection, target_url: str, limit: int, key: str | None = None) -> list[bool]:
    """Whether each of the target's newest `limit` checks of this URL failed, newest first, in check-time order.

    With `key`, only the checks of that target (COALESCE(target, target_url), SPEC §8); the URL
    keeps the query on the (target_url, checked_at) index.
    """
    query = select(events.c.failed).where(events.c.target_url == target_url)
    if key is not None:
        query = query.where(func.coalesce(events.c.target, events.c.target_url) == key)
    rows = conn.execute(
        query
        .order_by(events.c.checked_at.desc(), events.c.id.desc())
        .limit(limit)
    )
    return [bool(r.failed) for r in rows]  # the verdict ingest stored (events.failed)


# Only column names of the alerts table go into these texts: each is checked against it first.
_ALERT_NAMES = frozenset(alerts.c.keys())


@lru_cache(maxsize=32)
def _insert_text(table: str, columns: tuple[str, ...], rows: int = 1, returning: str = "") -> str:
    values = ", ".join([f"({marks(len(columns))})"] * rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}{returning}"


def insert_alert(conn: Connection, row: dict) -> int:
    """Store a new alert and return its id."""
    columns = tuple(row)
    assert _ALERT_NAMES.issuperset(columns), columns
    [(alert_id,)] = driver_sql.rows(conn, _insert_text("alerts", columns, returning=" RETURNING id"),
                                    list(row.values()))
    return alert_id


@lru_cache(maxsize=32)
def _set_alert_text(columns: tuple[str, ...], statuses: int) -> str:
    assignments = ", ".join(f"{column} = ?" for column in columns)
    return f"UPDATE alerts SET {assignments} WHERE id = ? AND status IN ({marks(statuses)})"


def set_alert_status(conn: Connection, alert_id: int, from_statuses: tuple[str, ...], values: dict) -> bool:
    """Change an alert only if it is still in one of `from_statuses`; True when a row changed."""
    columns = tuple(values)
    assert _ALERT_NAMES.issuperset(columns), columns
    cursor = driver_sql.execute(conn, _set_alert_text(columns, len(from_statuses)),
                                [*values.values(), alert_id, *from_statuses])
    changed = cursor.rowcount == 1
    cursor.close()
    return changed


_GET_ALERT = f"SELECT {', '.join(c.name for c in _ALERT_COLUMNS)} FROM alerts WHERE id = ?"
_ALERT_KEYS = tuple(c.name for c in _ALERT_COLUMNS)


def get_alert(conn: Connection, alert_id: int) -> dict | None:
    """One alert as a dict, or None."""
    found = driver_sql.rows(conn, _GET_ALERT, (alert_id,))
    return dict(zip(_ALERT_KEYS, found[0])) if found else None


def list_alerts(conn: Connection, status: str | None, target_url: str | None, limit: int,
                offset: int, target: str | None = None) -> list[dict]:
    """Alerts newest first, optionally filtered by status, URL and target name (SPEC §4, §8)."""
    query = select(*_ALERT_COLUMNS).order_by(alerts.c.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(alerts.c.status == status)
    if target_url:
        query = query.where(alerts.c.target_url == target_url)
    if target:
        query = query.where(alerts.c.target == target)
    return [dict(row) for row in conn.execute(query).mappings()]


def insert_notification_log(conn: Connection, row: dict) -> int:
    """Record one delivery attempt (SPEC §3: one row per attempt)."""
    return conn.execute(insert(notification_logs).values(**row)).inserted_primary_key[0]


def notification_logs_for(conn: Connection, alert_id: int) -> list[dict]:
    """Every delivery attempt for an alert, oldest first."""
    rows = conn.execute(
        select(notification_logs).where(notification_logs.c.alert_id == alert_id).order_by(notification_logs.c.id)
    ).mappings()
    return [dict(row) for row in rows]


_SHARE_TARGETS_FILE = ("SELECT fingerprint, pauses_changed_at FROM targets_file WHERE id = 1 FOR SHARE",  # PostgreSQL
                       "SELECT fingerprint, pauses_changed_at FROM targets_file WHERE id = 1")  # SQLite


def share_targets_file(conn: Connection) -> tuple | None:
    """The loaded targets file's version (fingerprint, when pauses last changed), its row held FOR SHARE on
    PostgreSQL: a reload or a pause waits for this transaction.

    Every writer of rule state reads it first (ingest, the deadline timer), and a reload locks it
    FOR UPDATE first: the two take turns. SQLite's write transaction already makes them.
    """
    found = driver_sql.rows(conn, _SHARE_TARGETS_FILE[conn.dialect.name == "sqlite"])
    return tuple(found[0]) if found else None


def lock_targets_file(conn: Connection) -> str | None:
    """The fingerprint of the targets file the list was loaded from, its row locked for this transaction."""
    query = select(targets_file.c.fingerprint).where(targets_file.c.id == 1).with_for_update()
    return conn.execute(query).scalar_one_or_none()


def targets_file_version(conn: Connection) -> tuple[str | None, str | None]:
    """Which load of the targets file `file_targets` holds: its fingerprint and when it was loaded."""
    query = select(targets_file.c.fingerprint, targets_file.c.loaded_at).where(targets_file.c.id == 1)
    row = conn.execute(query).first()
    return (row.fingerprint, row.loaded_at) if row else (None, None)


def targets_file_fingerprint(conn: Connection) -> str | None:
    """The fingerprint of the targets file the list was loaded from (None before the first load)."""
    return conn.execute(select(targets_file.c.fingerprint).where(targets_file.c.id == 1)).scalar_one_or_none()


def file_target_rows(conn: Connection) -> dict[str, dict]:
    """Every loaded file target by name: its position, spec (JSON text), change time and ping token."""
    rows = conn.execute(select(file_targets.c.name, file_targets.c.position, file_targets.c.spec,
                               file_targets.c.changed_at, file_targets.c.ping_token))
    return {row.name: dict(row._mapping) for row in rows}


def save_file_targets(conn: Connection, fingerprint: str, now: str, added: list[dict], updated: list[dict],
                      removed: list[str]) -> None:
    """Apply one load of the targets file: insert, update and delete targets, then record its fingerprint."""
    for start in range(0, len(removed), _MAX_PARAMS):
        conn.execute(delete(file_targets).where(file_targets.c.name.in_(removed[start:start + _MAX_PARAMS])))
    if updated:
        conn.execute(update(file_targets).where(file_targets.c.name == bindparam("b_name")).values(
            position=bindparam("position"), kind=bindparam("kind"), target_url=bindparam("target_url"),
            spec=bindparam("spec"), changed_at=bindparam("changed_at"), ping_token=bindparam("ping_token")),
            [{"b_name": row["name"], **{k: v for k, v in row.items() if k not in ("name", "loaded_at")}}
             for row in updated])
    if added:
        conn.execute(insert(file_targets), added)
    conn.execute(update(targets_file).where(targets_file.c.id == 1).values(fingerprint=fingerprint, loaded_at=now))


def file_target_rule_rows(conn: Connection) -> list[dict]:
    """Every loaded file target's name, target_url and spec (JSON text): what the rules need of it."""
    rows = conn.execute(select(file_targets.c.name, file_targets.c.target_url, file_targets.c.spec))
    return [dict(row._mapping) for row in rows]


def forget_removed_targets(conn: Connection, names: list[str], now: str) -> list[int]:
    """Resolve, without a notice, the active alerts of targets removed from the file and drop their rule state.

    Returns the ids of the alerts resolved (SPEC §8: a removed target's active alert is resolved silently).
    """
    names = sorted(names)
    # The rule state first, then the alerts: the order ingest and the deadline timer lock them in.
    if conn.dialect.name == "postgresql":
        _select_targets(conn, names, _LOCK_SORTED)
    resolved = []
    for start in range(0, len(names), _MAX_PARAMS):
        chunk = names[start:start + _MAX_PARAMS]
        active = conn.execute(select(alerts.c.id).where(alerts.c.target.in_(chunk),
                                                        alerts.c.status.in_(ACTIVE_STATUSES))).scalars().all()
        if active:
            conn.execute(update(alerts).where(alerts.c.id.in_(active), alerts.c.status.in_(ACTIVE_STATUSES))
                         .values(status="RESOLVED", resolved_at=now))
            resolved.extend(active)
        conn.execute(delete(targets).where(targets.c.name.in_(chunk)))
    return resolved


def file_target_specs(conn: Connection, kinds: tuple[str, ...]) -> list[str]:
    """The specs (JSON text) of the loaded targets of these kinds, in file order."""
    query = (select(file_targets.c.spec).where(file_targets.c.kind.in_(kinds))
             .order_by(file_targets.c.position))
    return list(conn.execute(query).scalars())


def count_file_targets(conn: Connection) -> int:
    """How many targets the loaded file holds."""
    return conn.execute(select(func.count()).select_from(file_targets)).scalar_one()


def list_file_targets(conn: Connection, limit: int, offset: int) -> list[dict]:
    """A page of file targets in file order, each with its rule state (None before a first result)."""
    query = (select(file_targets.c.spec, file_targets.c.name, file_targets.c.ping_token,
                    targets.c.failures_in_a_row, targets.c.last_check_at)
             .select_from(file_targets.outerjoin(targets, targets.c.name == file_targets.c.name))
             .order_by(file_targets.c.position).limit(limit).offset(offset))
    return [dict(row) for row in conn.execute(query).mappings()]


def push_target_by_token(conn: Connection, token: str) -> dict | None:
    """The push target (name, target_url) whose ping token this is, or None."""
    row = conn.execute(select(file_targets.c.name, file_targets.c.target_url).where(
        file_targets.c.ping_token == token, file_targets.c.kind == "push")).first()
    return dict(row._mapping) if row else None


def watched_targets(conn: Connection) -> list[dict]:
    """Every loaded target the deadline timer watches: name, kind, target_url, spec, loaded_at, changed_at."""
    query = select(file_targets.c.name, file_targets.c.kind, file_targets.c.target_url, file_targets.c.spec,
                   file_targets.c.loaded_at, file_targets.c.changed_at).where(
        file_targets.c.target_url.is_not(None)).order_by(file_targets.c.position)
    return [dict(row) for row in conn.execute(query).mappings()]


def quiet_targets(conn: Connection, received_before: str) -> dict[str, str | None]:
    """Loaded targets not paused (by name) whose last result was received before `received_before`, or who have
    none: when."""
    last = targets.c.last_received_at
    query = (select(file_targets.c.name, last)
             .select_from(file_targets.outerjoin(targets, targets.c.name == file_targets.c.name))
             .where((last.is_(None)) | (last < received_before))
             .where(file_targets.c.name.not_in(select(paused_targets.c.name))))  # paused: not watched (SPEC §11)
    return {row.name: row.last_received_at for row in conn.execute(query)}


def last_results(conn: Connection, names: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """When each of these targets (by name) last had a result received, and its newest check time; locked."""
    share_targets_file(conn)  # before the rule state, as ingest does: see share_targets_file
    return {name: (row["last_received_at"], row["last_check_at"])
            for name, row in lock_targets(conn, sorted(names)).items()}


def timer_beat(conn: Connection) -> dict:
    """The deadline timer's heartbeat row (beat_at, resumed_at), locked for this transaction."""
    query = (select(deadline_timer.c.beat_at, deadline_timer.c.resumed_at)
             .where(deadline_timer.c.id == 1).with_for_update())
    return dict(conn.execute(query).mappings().one())


def save_timer_beat(conn: Connection, beat_at: str, resumed_at: str | None) -> None:
    """Record the deadline timer's pass at `beat_at`, and when it last resumed after a gap."""
    conn.execute(update(deadline_timer).where(deadline_timer.c.id == 1).values(beat_at=beat_at,
                                                                             resumed_at=resumed_at))


def active_alerts_of(conn: Connection, names: list[str]) -> dict[str, dict]:
    """The OPEN or ACK alert of each of these targets (by name) that has one, whole."""
    query = select(*_ALERT_COLUMNS).where(alerts.c.target.in_(bindparam("names", expanding=True)),
                                 alerts.c.status.in_(ACTIVE_STATUSES))
    return {row.target: dict(row._mapping) for row in _rows_in(conn, query, "names", names)}


def agent_seen(conn: Connection, name: str, column: str, now: str) -> None:
    """Set an agent's `last_event_at` or `last_pull_at` to `now`, adding the agent on its first word."""
    if conn.execute(update(agents).where(agents.c.name == name).values({column: now})).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(insert(agents).values({"name": name, column: now}))
    except IntegrityError:  # another request added it first
        conn.execute(update(agents).where(agents.c.name == name).values({column: now}))


# The later of the two times (NULL only when both are); plain CASE, as GREATEST and max(a, b) are not portable.
_LAST_SEEN = case((agents.c.last_pull_at.is_(None), agents.c.last_event_at),
                  (agents.c.last_event_at.is_(None), agents.c.last_pull_at),
                  (agents.c.last_event_at >= agents.c.last_pull_at, agents.c.last_event_at),
                  else_=agents.c.last_pull_at).label("last_seen_at")


def list_agents(conn: Connection, limit: int, offset: int) -> list[dict]:
    """A page of agents, the most recently heard from first (SPEC §8)."""
    query = (select(agents.c.name, _LAST_SEEN, agents.c.last_event_at, agents.c.last_pull_at)
             .order_by(_LAST_SEEN.desc(), agents.c.name).limit(limit).offset(offset))
    return [dict(row) for row in conn.execute(query).mappings()]


# The name a check counts under in rollups and stats (SPEC §8): the file target's name, else the URL.
STATS_KEY = func.coalesce(events.c.target, events.c.target_url)
_EVENT_STATS_COLUMNS = (events.c.id, STATS_KEY.label("key"), events.c.timestamp, events.c.failed,
                        events.c.response_time_ms)


def rollup_watermark(conn: Connection) -> int:
    """The id of the newest event counted in rollups (every one below it is too)."""
    return conn.execute(select(rollup_progress.c.last_event_id).where(rollup_progress.c.id == 1)).scalar_one()


def events_after(conn: Connection, after_id: int, limit: int, up_to: int | None = None) -> list:
    """Up to `limit` events with ids above `after_id` (and at most `up_to`), by id, with what a rollup counts."""
    query = select(*_EVENT_STATS_COLUMNS).where(events.c.id > after_id)
    if up_to is not None:
        query = query.where(events.c.id <= up_to)
    return list(conn.execute(query.order_by(events.c.id).limit(limit)))


def visible_events_horizon(conn: Connection, lock_timeout_ms: int) -> int | None:
    """PostgreSQL: the highest event id, such that no lower id can still commit; None if the wait ran out.

    An INSERT holds ROW EXCLUSIVE on events from before it takes its id until its transaction ends;
    SHARE waits for every such transaction and holds new ones off while max(id) is read. Run it in
    a transaction of its own, committed at once: inserts wait only that long.
    """
    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(lock_timeout_ms)}ms'")
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("LOCK TABLE events IN SHARE MODE")
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available: a writer is slow
            return None
        raise
    return conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()


def advance_rollup_watermark(conn: Connection, from_id: int, to_id: int) -> bool:
    """Move the watermark from `from_id` to `to_id`, only if it is still at `from_id`; True when it moved.

    Run first in the roller's transaction: on PostgreSQL the row lock it takes makes a second
    roller wait, then find the watermark moved, and count nothing twice.
    """
    moved = conn.execute(update(rollup_progress).where(rollup_progress.c.id == 1,
                                                       rollup_progress.c.last_event_id == from_id)
                         .values(last_event_id=to_id))
    return moved.rowcount == 1


def rollup_rows(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict]:
    """The stored rollup rows among these (target, hour) keys."""
    found = {}
    for start in range(0, len(keys), _MAX_PARAMS):
        query = select(rollups).where(tuple_(rollups.c.target, rollups.c.hour).in_(keys[start:start + _MAX_PARAMS]))
        found.update({(row.target, row.hour): dict(row._mapping) for row in conn.execute(query)})
    return found


def save_rollups(conn: Connection, new_rows: list[dict], changed_rows: list[dict]) -> None:
    """Insert new rollup rows and overwrite changed ones (the caller merged them under the write lock)."""
    if new_rows:
        conn.execute(insert(rollups), new_rows)
    if changed_rows:
        conn.execute(update(rollups).where(rollups.c.target == bindparam("b_target"),
                                           rollups.c.hour == bindparam("b_hour")).values(
            checks=bindparam("checks"), failures=bindparam("failures"),
            response_ms_sum=bindparam("response_ms_sum"), response_ms_count=bindparam("response_ms_count"),
            histogram=bindparam("histogram")),
            [{"b_target": r["target"], "b_hour": r["hour"],
              **{k: v for k, v in r.items() if k not in ("target", "hour")}} for r in changed_rows])


def purge_rollups(conn: Connection, older_than_hour: str, limit: int) -> int:
    """Delete up to `limit` rollup rows of hours before `older_than_hour`."""
    doomed = select(rollups.c.target, rollups.c.hour).where(rollups.c.hour < older_than_hour).limit(limit)
    return conn.execute(delete(rollups).where(tuple_(rollups.c.target, rollups.c.hour).in_(doomed))).rowcount


def rollups_since(conn: Connection, target: str, from_hour: str) -> tuple[int, list[tuple]]:
    """The watermark, and a target's rollups from `from_hour` on, read in one statement (one snapshot).

    Each rollup as a plain tuple: checks, failures, response_ms_sum, response_ms_count, histogram.
    """
    # One statement, so that on PostgreSQL (a snapshot per statement) the rows and the watermark
    # agree: the events above it are exactly those the rows do not count.
    joined = rollup_progress.outerjoin(rollups, and_(rollups.c.target == target, rollups.c.hour >= from_hour))
    query = select(rollup_progress.c.last_event_id, rollups.c.checks, rollups.c.failures,
                   rollups.c.response_ms_sum, rollups.c.response_ms_count,
                   rollups.c.histogram).select_from(joined).where(rollup_progress.c.id == 1)
    rows = conn.execute(query).all()
    return rows[0][0], [tuple(row[1:]) for row in rows if row[1] is not None]


def events_of_target_after(conn: Connection, target: str, after_id: int) -> list:
    """A target's events above `after_id`: those not rolled up yet."""
    # No condition on the time here: with one, a planner may walk the timestamp index over the
    # whole window instead of the few ids above the watermark.
    return list(conn.execute(select(*_EVENT_STATS_COLUMNS).where(events.c.id > after_id, STATS_KEY == target)))


def has_stats_or_file_target(conn: Connection, target: str) -> bool:
    """Whether a name is a loaded file target or has any rollup row at all."""
    query = select(literal(1)).where(exists().where(file_targets.c.name == target)
                                     | exists().where(rollups.c.target == target))
    return conn.execute(query).first() is not None


def ping(conn: Connection) -> None:
    """Raise if the database does not answer."""
    conn.execute(select(1)).scalar_one()
