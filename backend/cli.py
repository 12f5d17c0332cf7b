"""The `outage` command line: targets, alerts, silences, channels through the HTTP API, never the database (SPEC §12).

Run it as `python -m backend.cli` or `./outage`. It reads the backend's address and the API key the
way the backend does (the environment over `.env`, python-dotenv), so it works against a remote
backend as well as the local one. Exit status: 0 done, 1 the API refused, 2 usage or configuration
error, 3 the backend could not be reached in time.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote

import requests
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from common.config import ConfigError, read_environment

EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3
DEFAULT_TIMEOUT_SECONDS = 10.0
PAGE_SIZE = 500  # the API's largest page (SPEC §4)
STATUSES = ("OPEN", "ACK", "RESOLVED")
WINDOWS = ("24h", "7d", "30d")
PIPE_WIDTH = 10_000
DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CliError(Exception):
    """One sentence for stderr and the exit status that goes with it."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class Api:
    """The backend's HTTP API with the key in X-API-Key and every call bounded by `timeout` seconds."""

    def __init__(self, base_url: str, api_key: str, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = api_key

    def call(self, method: str, path: str, **kwargs) -> dict:
        """The JSON answer; CliError with the API's own sentence when it refuses, or when nothing answers."""
        try:
            response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise CliError(f"{self.base_url!r} is not an http(s) URL (--url or BACKEND_URL).", EXIT_USAGE) from None
        except requests.Timeout:
            raise CliError(f"{self.base_url} did not answer within {self.timeout:g}s.", EXIT_UNREACHABLE) from None
        except requests.RequestException as exc:
            raise CliError(f"cannot reach the backend at {self.base_url}: {_reason(exc)}.", EXIT_UNREACHABLE) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok and isinstance(body, dict):
            return body
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise CliError(f"{body['error']} (HTTP {response.status_code})", EXIT_REFUSED)
        raise CliError(f"{self.base_url} answered HTTP {response.status_code} without a JSON body; "
                       "is --url the outage backend?", EXIT_REFUSED)

    def pages(self, path: str, key: str, params: dict, limit: int | None, progress: Callable[[int], None],
              page_size: int = PAGE_SIZE) -> list:
        """Every item under `key` (at most `limit`), a page at a time, reporting the count so far."""
        items: list = []
        while limit is None or len(items) < limit:
            size = page_size if limit is None else min(page_size, limit - len(items))
            page = self.call("GET", path, params={**params, "limit": size, "offset": len(items)})[key]
            items.extend(page)
            progress(len(items))
            if len(page) < size:
                break
        return items


def _reason(exc: requests.RequestException) -> str:
    # requests nests the socket error several levels deep; its innermost words are the useful ones.
    while exc.__context__ is not None and not isinstance(exc, ConnectionRefusedError):
        exc = exc.__context__
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.rstrip(".")


def base_url(args: argparse.Namespace, environ: dict[str, str]) -> str:
    """--url, else BACKEND_URL, else the backend's own FLASK_HOST:FLASK_PORT as a client here reaches it."""
    if args.url:
        return args.url
    if environ.get("BACKEND_URL", "").strip():
        return environ["BACKEND_URL"].strip()
    host = environ.get("FLASK_HOST", "").strip() or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    port = environ.get("FLASK_PORT", "").strip() or "5000"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def api_key(args: argparse.Namespace, environ: dict[str, str]) -> str:
    """The key from --api-key-file (first line), else API_KEY; never from the command line, where `ps` shows it."""
    if args.api_key_file:
        try:
            key = Path(args.api_key_file).read_text(encoding="utf-8").strip().splitlines()
        except OSError as exc:
            raise CliError(f"--api-key-file: cannot read {args.api_key_file}: {exc.strerror}.", EXIT_USAGE) from None
        if not key or not key[0].strip():
            raise CliError(f"--api-key-file: {args.api_key_file} is empty.", EXIT_USAGE)
        return key[0].strip()
    key = environ.get("API_KEY", "").strip()
    if not key:
        raise CliError("no API key: set API_KEY in .env or the environment, or pass --api-key-file.", EXIT_USAGE)
    return key


def duration(text: str) -> timedelta:
    """`--for`: a length of time such as 90m, 2h, 1h30m, 1.5d or 1w (argparse reports a bad one)."""
    parts = DURATION.findall(text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90m, 2h, 1h30m or 1d")
    span = timedelta(seconds=sum(float(n) * UNIT_SECONDS[u] for n, u in parts))
    if span <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not longer than 0")
    return span


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def silence_body(args: argparse.Namespace, now: datetime) -> dict:
    """A POST /silences body from `silence add`; --from and --until go as written, for the API to judge."""
    body = {"match": args.match}
    if args.starts_at:
        body["starts_at"] = args.starts_at
    if args.until:
        body["ends_at"] = args.until
    else:
        start = now
        if args.starts_at:  # --for counts from --from, so --from must be read here
            try:
                start = datetime.fromisoformat(args.starts_at.strip().replace("Z", "+00:00"))
            except ValueError:
                start = None
            if start is None or start.tzinfo is None:
                raise CliError("--from must be an ISO 8601 date-time with a UTC offset, such as "
                               "2026-12-24T18:00:00+01:00 or ...Z.", EXIT_USAGE)
        body["ends_at"] = _utc_text(start + args.span)
    if args.reason is not None:
        body["reason"] = args.reason
    return body


def _cell(value) -> str:
    return "-" if value is None or value == "" else str(value)


def table(console: Console, columns: Iterable[str], rows: Iterable[Iterable]) -> None:
    """Rows under a header, plain box lines so that a log or a pipe reads it too."""
    shown = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        shown.add_row(*(Text(_cell(value)) for value in row))  # Text: a name's [brackets] are no markup
    with console.capture() as captured:
        console.print(shown)
    # rich pads the last column to its width: trailing blanks only get in a script's way.
    console.print("\n".join(line.rstrip() for line in captured.get().splitlines()), highlight=False, markup=False)


def _where(target: dict) -> str:
    if target.get("kind") == "tcp":
        return f"{target.get('host')}:{target.get('port')}"
    return target.get("url") or target.get("ping_url") or ""


def show_targets(console: Console, body: dict) -> None:
    """GET /targets as a table: one row a target, its state and active alert."""
    table(console, ("NAME", "KIND", "STATE", "LAST CHECK", "FAILS", "ALERT", "WHERE"),
          ((t["name"], t.get("kind"), t.get("state"), t.get("last_check"), t.get("failures_in_a_row"),
            (t.get("alert") or {}).get("id"), _where(t)) for t in body["targets"]))


def show_alerts(console: Console, body: dict) -> None:
    """GET /alerts as a table, newest first."""
    if not body["alerts"]:
        console.print("no alerts")
        return
    table(console, ("ID", "STATUS", "TYPE", "TARGET", "CREATED (UTC)", "RESOLVED (UTC)", "MESSAGE"),
          ((a["id"], a["status"], a["alert_type"], a.get("target") or a["target_url"], a["created_at"],
            a.get("resolved_at"), a.get("message")) for a in body["alerts"]))


def show_alerts_one(console: Console, alert: dict) -> None:
    """One alert (the PATCH answer) as a one-row table."""
    show_alerts(console, {"alerts": [alert]})


def show_stats(console: Console, body: dict) -> None:
    """GET /targets/<name>/stats as a one-row table and the span it covers."""
    times = body.get("response_time_ms") or {}
    uptime = body.get("uptime_percent")
    table(console, ("TARGET", "WINDOW", "CHECKS", "FAILURES", "UPTIME", "MEAN MS", "P95 MS"),
          [(body["target"], body["window"], body["checks"], body["failures"],
            None if uptime is None else f"{uptime}%", times.get("mean"), times.get("p95"))])
    console.print(f"from {body['from']} to {body['to']} UTC", style="dim")


def _when(text: str | None) -> str | None:
    """An API time (2026-12-01T19:57:16Z) as the tables show times: 2026-12-01 19:57:16."""
    return text.replace("T", " ").removesuffix("Z") if text else text


def show_silences(console: Console, body: dict) -> None:
    """GET /silences (or one silence) as a table: active and upcoming first, as the API orders them."""
    if not body["silences"]:
        console.print("no silences")
        return
    table(console, ("ID", "STATE", "MATCH", "STARTS (UTC)", "ENDS (UTC)", "REASON"),
          ((s["id"], s["state"], s["match"], _when(s["starts_at"]), _when(s["ends_at"]), s.get("reason"))
           for s in body["silences"]))


def show_silence_one(console: Console, silence: dict) -> None:
    """One silence (the POST or DELETE answer) as a one-row table."""
    show_silences(console, {"silences": [silence]})


def show_channels(console: Console, body: dict) -> None:
    """GET /channels as a table: name, type and the settings the API shows (secrets already `<redacted>`)."""
    table(console, ("NAME", "TYPE", "SETTINGS"),
          ((c["name"], c["type"], " ".join(f"{k}={_setting(v)}" for k, v in c.items() if k not in ("name", "type")))
           for c in body["channels"]))


def _setting(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def show_channel_test(console: Console, body: dict) -> None:
    """A channel test's attempt: SENT, or FAILED with the reason."""
    if body["status"] == "SENT":
        console.print(f"SENT test notice through {body['channel']} (notification log {body['log_id']})",
                      highlight=False, markup=False)
    else:
        console.print(f"FAILED test notice through {body['channel']}: {body.get('error_message') or 'no reason given'}",
                      highlight=False, markup=False)


def show_paused(console: Console, body: dict) -> None:
    """PATCH /targets/<name> as a one-row table."""
    table(console, ("NAME", "PAUSED"), [(body["name"], "yes" if body["paused"] else "no")])


def _progress(console: Console, what: str):
    """A spinner with the count fetched so far, on stderr only, gone when done (nothing when not a terminal)."""
    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=True,
                   disable=not console.is_terminal)
    task = bar.add_task(f"fetching {what}…")
    return bar, lambda count: bar.update(task, description=f"fetching {what}… {count}")


def run(args: argparse.Namespace, api: Api, out: Console, err: Console) -> int:
    """Carry out one command and print its answer, as JSON with --json, else as a table; the exit status."""
    if args.command in ("targets", "alerts"):
        params = {}
        if args.command == "alerts":
            params = {key: value for key, value in (("status", args.status), ("target", args.target)) if value}
        limit = None if args.command == "targets" or args.all else args.limit
        bar, step = _progress(err, args.command)
        with bar:
            items = api.pages(f"/{args.command}", args.command, params, limit, step)
        body = {args.command: items}
        show = show_targets if args.command == "targets" else show_alerts
    elif args.command in ("ack", "resolve"):
        body = api.call("PATCH", f"/alerts/{args.id}", json={"status": "ACK" if args.command == "ack" else "RESOLVED",
                                                            "by": "cli"})
        show = show_alerts_one
    elif args.command == "stats":
        body = api.call("GET", f"/targets/{quote(args.name, safe='')}/stats", params={"window": args.window})
        show = show_stats
    elif args.command == "silence":
        body, show = run_silence(args, api, err)
    elif args.command == "channels" and args.action == "test":
        body, show = api.call("POST", f"/channels/{quote(args.name, safe='')}/test"), show_channel_test
    elif args.command == "channels":
        body, show = api.call("GET", "/channels"), show_channels
    else:
        body = api.call("PATCH", f"/targets/{quote(args.name, safe='')}", json={"paused": args.command == "pause"})
        show = show_paused
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        show(out, body)
    failed_test = args.command == "channels" and args.action == "test" and body["status"] != "SENT"
    return EXIT_REFUSED if failed_test else 0


def run_silence(args: argparse.Namespace, api: Api, err: Console) -> tuple[dict, Callable[[Console, dict], None]]:
    """`silence add`, `silence list` or `silence end`: the API's answer and how to show it."""
    if args.action == "add":
        return api.call("POST", "/silences", json=silence_body(args, datetime.now(timezone.utc))), show_silence_one
    if args.action == "end":
        return api.call("DELETE", f"/silences/{args.id}"), show_silence_one
    bar, step = _progress(err, "silences")
    with bar:
        items = api.pages("/silences", "silences", {"all": "true"} if args.all else {}, None, step)
    return {"silences": items}, show_silences


def parser() -> argparse.ArgumentParser:
    """The command line: global options, then one command."""
    main = argparse.ArgumentParser(prog="outage", description="Talk to the outage backend's HTTP API.")
    main.add_argument("--url", help="the backend's base URL (default: BACKEND_URL, else FLASK_HOST:FLASK_PORT "
                                    "from the environment or .env)")
    main.add_argument("--api-key-file", metavar="PATH", help="read the API key from this file (default: API_KEY "
                                                             "from the environment or .env)")
    main.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    main.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, metavar="SECONDS",
                      help=f"give up on a request after this long (default {DEFAULT_TIMEOUT_SECONDS:g})")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("targets", help="every target with its state")
    alerts = commands.add_parser("alerts", help="alerts, newest first")
    alerts.add_argument("--status", choices=STATUSES, type=str.upper)
    alerts.add_argument("--target", metavar="NAME", help="only this target's alerts")
    count = alerts.add_mutually_exclusive_group()
    count.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    count.add_argument("--all", action="store_true", help="every matching alert, however many")
    for name, verb in (("ack", "acknowledge"), ("resolve", "resolve")):
        command = commands.add_parser(name, help=f"{verb} an alert")
        command.add_argument("id", type=int, metavar="ID")
    stats = commands.add_parser("stats", help="a target's checks, uptime and response times")
    stats.add_argument("name", metavar="NAME")
    stats.add_argument("--window", choices=WINDOWS, default="24h")
    add_silence_commands(commands)
    channels = commands.add_parser("channels", help="the channels notices go to (secrets redacted); "
                                                    "`channels test NAME` sends a test notice")
    tests = channels.add_subparsers(dest="action", metavar="[test NAME]")  # none: list the channels
    tests.add_parser("test", help="send a test notice through one channel").add_argument("name", metavar="NAME")
    for name, verb in (("pause", "stop checking a target (its events open no alert)"), ("resume", "check it again")):
        command = commands.add_parser(name, help=verb)
        command.add_argument("name", metavar="NAME")
    return main


def add_silence_commands(commands) -> None:
    """The `silence` command: `add MATCH --for 2h | --until TIME [--from TIME] [--reason TEXT]`, `list`, `end ID`."""
    silence = commands.add_parser("silence", help="keep targets' notices quiet for a while (add, list, end)")
    actions = silence.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="silence the targets MATCH selects (a name, a glob such as web-*, tag:prod)")
    add.add_argument("match", metavar="MATCH")
    until = add.add_mutually_exclusive_group(required=True)
    until.add_argument("--for", dest="span", type=duration, metavar="DURATION", help="for this long: 90m, 2h, 1d")
    until.add_argument("--until", metavar="TIME", help="until this time, with a UTC offset: 2026-12-24T18:00:00+01:00")
    add.add_argument("--from", dest="starts_at", metavar="TIME", help="from this time, with a UTC offset (default now)")
    add.add_argument("--reason", metavar="TEXT", help="why, shown with the silence and in its log rows")
    listing = actions.add_parser("list", help="silences active and upcoming")
    listing.add_argument("--all", action="store_true", help="ended ones too")
    end = actions.add_parser("end", help="end a silence now")
    end.add_argument("id", type=int, metavar="ID")


def main(argv: list[str] | None = None) -> int:
    """Parse, call the API, print; one line on stderr and a distinct exit status on any failure."""
    args = parser().parse_args(argv)  # exits 2 with argparse's own line on a usage error
    # A pipe gets whole lines (grep, awk); a terminal gets tables fitted to its width.
    out, err = Console(width=None if sys.stdout.isatty() else PIPE_WIDTH), Console(stderr=True)
    try:
        if args.timeout <= 0 or (args.command == "alerts" and args.limit <= 0):
            raise CliError("--timeout and --limit must be greater than 0.", EXIT_USAGE)
        environ = read_environment()
        return run(args, Api(base_url(args, environ), api_key(args, environ), args.timeout), out, err)
    except ConfigError as exc:
        print(f"outage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"outage: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
