"""Silences and maintenance windows as pure decisions on timelines (SPEC §11), DST changes included."""

from datetime import datetime, timedelta, timezone

import pytest

from backend.errors import ApiError
from backend.maintenance import matches, maintenance_at, open_until, window_of
from backend.silences import Silence, parse_new_silence, suppression_at

UTC = timezone.utc


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(**entry):
    return window_of({"match": "*", "duration": "1h", **entry}, 0)


@pytest.mark.parametrize("match, name, tags, expected", [
    ("shop", "shop", (), True),
    ("shop", "shop-eu", (), False),
    ("shop*", "shop-eu", (), True),
    ("db-?", "db-1", (), True),
    ("[ab]pi", "api", (), True),
    ("tag:prod", "shop", ("prod", "eu"), True),
    ("tag:prod", "prod", (), False),  # a tag, never a name
    ("SHOP", "shop", (), False),      # names are case-sensitive
])
def test_match_is_a_name_a_shell_glob_or_a_tag(match, name, tags, expected):
    assert matches(match, name, tags) is expected


# Europe/Berlin in 2026: clocks go 02:00 -> 03:00 on Sunday 29 March (01:00 UTC) and 03:00 -> 02:00
# on Sunday 25 October (01:00 UTC). A weekly Sunday 02:30 window of one hour:
BERLIN_SUNDAY = [
    ("2026-03-22 01:29", None),                 # the Sunday before: 02:30 CET is 01:30 UTC
    ("2026-03-22 01:30", "2026-03-22 02:30"),
    ("2026-03-22 02:29", "2026-03-22 02:30"),
    ("2026-03-22 02:30", None),                 # the end is exclusive
    ("2026-03-29 00:59", None),                 # spring forward: 02:30 does not exist that night...
    ("2026-03-29 01:00", "2026-03-29 02:00"),   # ...so the window opens at the jump (03:00 CEST), for 1 h
    ("2026-03-29 02:00", None),
    ("2026-04-05 00:30", "2026-04-05 01:30"),   # summer time: 02:30 CEST is 00:30 UTC
    ("2026-10-25 00:30", "2026-10-25 01:30"),   # fall back: 02:30 comes twice; the first one opens it
    ("2026-10-25 01:30", None),                 # the second 02:30 opens nothing
    ("2026-11-01 01:30", "2026-11-01 02:30"),   # winter time again
    ("2026-11-02 01:30", None),                 # a Monday
]


@pytest.mark.parametrize("now, closes", BERLIN_SUNDAY)
def test_a_weekly_window_on_a_timeline_across_both_dst_changes(now, closes):
    sunday = window(days=["sun"], start="02:30", timezone="Europe/Berlin")
    assert open_until(sunday, at(now)) == (at(closes) if closes else None)


@pytest.mark.parametrize("now, closes", BERLIN_SUNDAY)
def test_the_same_window_as_a_cron_expression_reads_the_same(now, closes):
    sunday = window(cron="30 2 * * sun", timezone="Europe/Berlin")
    assert open_until(sunday, at(now)) == (at(closes) if closes else None)


def test_a_window_across_a_dst_change_lasts_its_duration_in_elapsed_time():
    """New York springs forward at 02:00 on 8 March 2026: a 01:00 window of 2 h ends at 04:00 EDT, 2 h later."""
    nightly = window(start="01:00", duration="2h", timezone="America/New_York")  # every day
    assert open_until(nightly, at("2026-03-08 05:59")) is None
    assert open_until(nightly, at("2026-03-08 06:00")) == at("2026-03-08 08:00")  # 01:00 EST
    assert open_until(nightly, at("2026-03-08 07:59")) == at("2026-03-08 08:00")
    assert open_until(nightly, at("2026-03-08 08:00")) is None
    assert open_until(nightly, at("2026-03-09 05:00")) == at("2026-03-09 07:00")  # 01:00 EDT


def test_a_window_longer_than_a_day_holds_from_its_start_day_on():
    weekend = window(days=["sat"], start="22:00", duration="1d12h")
    assert open_until(weekend, at("2026-12-05 21:59")) is None  # Saturday
    assert open_until(weekend, at("2026-12-06 23:00")) == at("2026-12-07 10:00")  # Sunday night
    assert open_until(weekend, at("2026-12-07 10:00")) is None


def test_a_window_that_never_comes_is_closed_not_an_error():
    """Loading refuses it, but a database loaded by an older version may hold one: notices must still flow."""
    never = window(cron="0 0 30 2 *")
    assert open_until(never, at("2026-12-01 00:30")) is None
    assert maintenance_at([never], "web", (), at("2026-02-28 00:30")) is None


def test_an_overlapping_window_stays_open_in_the_second_before_its_next_start():
    """Every minute, lasting an hour: always open, also at hh:mm:59.5, when the next start is under a second away."""
    always = window(cron="* * * * *", duration="1h")
    assert open_until(always, at("2026-12-01 20:59:59.500")) == at("2026-12-01 21:59:00")


def test_a_leap_day_window_is_allowed_and_opens_on_leap_years():
    from backend.maintenance import MaintenanceEntry

    MaintenanceEntry(match="*", cron="0 0 29 2 *", duration="1h")
    assert open_until(window(cron="0 0 29 2 *"), at("2028-02-29 00:30")) == at("2028-02-29 01:00")


def test_maintenance_at_picks_the_matching_window_that_lasts_longest():
    short = window_of({"name": "short", "match": "db-*", "start": "02:00", "duration": "1h"}, 0)
    long = window_of({"match": "tag:prod", "start": "01:00", "duration": "3h"}, 1)
    assert maintenance_at([short, long], "web", (), at("2026-12-01 02:30")) is None
    assert maintenance_at([short, long], "db-1", (), at("2026-12-01 02:30")) == (short, at("2026-12-01 03:00"))
    found = maintenance_at([short, long], "db-1", ("prod",), at("2026-12-01 02:30"))
    assert found == (long, at("2026-12-01 04:00")) and long.label == "maintenance[1]"


def test_a_silence_applies_from_its_start_until_just_before_its_end():
    silence = Silence(7, "shop*", at("2026-12-01 10:00"), at("2026-12-01 11:00"), "deploy")
    timeline = [("09:59", False), ("10:00", True), ("10:59", True), ("11:00", False)]
    for clock, silenced in timeline:
        found = suppression_at([silence], [], "shop-eu", (), at(f"2026-12-01 {clock}"))
        assert (found is not None) is silenced, clock
    found = suppression_at([silence], [], "shop-eu", (), at("2026-12-01 10:30"))
    assert (found.silence_id, found.suppressed_by, found.ends_at) == (7, "silence 7", at("2026-12-01 11:00"))
    assert suppression_at([silence], [], "api", (), at("2026-12-01 10:30")) is None


def test_of_a_silence_and_a_window_the_one_ending_last_is_named():
    silence = Silence(1, "tag:prod", at("2026-12-01 00:00"), at("2026-12-01 02:30"))
    nightly = window_of({"name": "nightly", "match": "db", "start": "02:00", "duration": "1h"}, 0)
    assert suppression_at([silence], [nightly], "db", ("prod",), at("2026-12-01 01:00")).silence_id == 1
    both = suppression_at([silence], [nightly], "db", ("prod",), at("2026-12-01 02:15"))
    assert (both.silence_id, both.suppressed_by, both.ends_at) == (None, "maintenance nightly", at("2026-12-01 03:00"))


NOW = at("2026-12-01 12:00")


def test_a_new_silence_without_starts_at_starts_now_and_times_are_stored_in_utc():
    row = parse_new_silence({"match": "tag:prod", "ends_at": "2026-12-01T14:00:00+01:00", "reason": "deploy"}, NOW)
    assert (row["starts_at"], row["ends_at"]) == ("2026-12-01 12:00:00.000000", "2026-12-01 13:00:00.000000")
    assert row["match"] == "tag:prod" and row["reason"] == "deploy"


@pytest.mark.parametrize("body, field", [
    ({"ends_at": "2026-12-01T13:00:00Z"}, "match"),
    ({"match": "", "ends_at": "2026-12-01T13:00:00Z"}, "match"),
    ({"match": "tag:", "ends_at": "2026-12-01T13:00:00Z"}, "match"),
    ({"match": 5, "ends_at": "2026-12-01T13:00:00Z"}, "match"),
    ({"match": "shop"}, "ends_at"),
    ({"match": "shop", "ends_at": "2026-12-01T13:00:00"}, "ends_at"),          # no UTC offset
    ({"match": "shop", "ends_at": "tomorrow"}, "ends_at"),
    ({"match": "shop", "ends_at": "2026-12-01T11:00:00Z"}, "ends_at"),         # before its (default) start
    ({"match": "shop", "starts_at": "2026-12-01T13:00:00", "ends_at": "2026-12-01T14:00:00Z"}, "starts_at"),
    ({"match": "shop", "starts_at": "2026-12-01T15:00:00Z", "ends_at": "2026-12-01T14:00:00Z"}, "ends_at"),
    ({"match": "shop", "starts_at": "2026-11-01T10:00:00Z", "ends_at": "2026-11-01T11:00:00Z"}, "ends_at"),  # past
    ({"match": "shop", "ends_at": "2026-12-01T13:00:00Z", "reason": 3}, "reason"),
    ({"match": "shop", "ends_at": "2026-12-01T13:00:00Z", "until": "x"}, "until"),
])
def test_a_bad_silence_is_refused_naming_its_field(body, field):
    with pytest.raises(ApiError) as refused:
        parse_new_silence(body, NOW)
    assert refused.value.status == 400 and refused.value.details["field"] == field
    assert refused.value.message.startswith(field)


def test_an_upcoming_silence_keeps_its_start():
    row = parse_new_silence({"match": "shop", "starts_at": "2026-12-02T00:00:00Z",
                             "ends_at": "2026-12-02T00:00:00.5+00:00"}, NOW)
    assert row["starts_at"] == "2026-12-02 00:00:00.000000" and row["ends_at"] == "2026-12-02 00:00:00.500000"
    assert timedelta(0) < at(row["ends_at"]) - at(row["starts_at"])


@pytest.mark.parametrize("entry, problem", [
    ('    days: [sunday]\n    start: "02:00"\n    duration: 2h\n',
     "targets.yaml:5: maintenance[0].days: must be a list of days among mon, tue, wed, thu, fri, sat, sun"),
    ('    start: 2:30\n    duration: 2h\n', "targets.yaml:5: maintenance[0].start: must be text (put it in quotes)"),
    ('    cron: "0 2 * *"\n    duration: 2h\n',
     'targets.yaml:5: maintenance[0].cron: must be a cron expression of five fields, such as "0 2 * * sat"'),
    ('    start: "02:00"\n    duration: 2 hours\n',
     'targets.yaml:6: maintenance[0].duration: must be a length such as "2h", "90m" or "1h30m", at most 7d'),
    ('    start: "02:00"\n    duration: 2h\n    timezone: Mars/Olympus\n',
     "targets.yaml:7: maintenance[0].timezone: must be a time zone name such as UTC or Europe/Berlin"),
    ('    duration: 2h\n', 'targets.yaml:4: maintenance[0]: needs start: "HH:MM" (with days:, default every day) '
                          'or cron:'),
    ('    cron: "0 2 * * *"\n    start: "02:00"\n    duration: 2h\n',
     "targets.yaml:4: maintenance[0]: takes either cron: or start: (with days:), not both"),
    ('    cron: "0 0 30 2 *"\n    duration: 2h\n',
     "targets.yaml:5: maintenance[0].cron: never matches a date (such as 30 February)"),
    ('    cron: "0 0 31 4,6 *"\n    duration: 2h\n',
     "targets.yaml:5: maintenance[0].cron: never matches a date (such as 30 February)"),
    ('    cron: "R 2 * * *"\n    duration: 2h\n',
     "targets.yaml:5: maintenance[0].cron: R (a random time) is not allowed: a window starts at a set time"),
])
def test_a_bad_maintenance_entry_is_refused_naming_file_line_and_key(entry, problem):
    from backend.targets_file import TargetsFileError, parse_targets

    text = 'targets:\n  - {name: db, kind: tcp, host: 127.0.0.1, port: 5432}\nmaintenance:\n  - match: "db"\n' + entry
    with pytest.raises(TargetsFileError) as refused:
        parse_targets(text.encode(), {}, "targets.yaml")
    assert str(refused.value) == problem


def test_maintenance_entries_are_loaded_with_the_targets():
    from backend.targets_file import parse_targets

    text = ('targets: []\nmaintenance:\n  - {name: backups, match: "tag:db", days: [sat, sun], start: "02:00", '
            'duration: 2h, timezone: Europe/Berlin}\n  - {match: "*", cron: "0 3 1 * *", duration: 30m}\n')
    backups, monthly = parse_targets(text.encode(), {}, "targets.yaml").maintenance
    assert window_of(backups, 0).cron == "0 2 * * sat,sun" and window_of(monthly, 1).label == "maintenance[1]"
