"""The targets file (SPEC §8): YAML read with line numbers, validated by pydantic, `${NAME}` kept unresolved.

Pure: no database, no Flask. `parse_targets` turns the file's bytes into a list of target specs
(defaults merged, built-in defaults filled, secrets still written as `${NAME}`), or raises
TargetsFileError with one line naming the file, the line and the key, never a value.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

import yaml
from pydantic import BaseModel, ValidationError

from backend.channels import MODELS as CHANNEL_MODELS, name_problem, resolved_problem
from backend.config import ROOT, Settings
from backend.env_references import REFERENCE, resolve_secrets
from backend.maintenance import MaintenanceEntry
from backend.target_models import TargetEntry, TargetSettings

KINDS = ("http", "tcp", "push")
# Keys every kind takes, then each kind's own; name, kind, url, host and port are per target only.
COMMON_KEYS = ("name", "kind", "failure_threshold", "success_threshold", "channels", "tags", "public",
               "reminder_minutes", "escalate")
KIND_KEYS = {
    "http": ("url", "interval", "timeout", "method", "headers", "body", "expect_status", "body_contains",
             "body_regex", "json_path", "json_equals", "max_response_time_ms", "tls_expiry_days", "ca_file",
             "tls_verify"),
    "tcp": ("host", "port", "interval", "timeout", "max_response_time_ms"),
    "push": ("period", "grace"),
}
IDENTITY_KEYS = ("name", "kind", "url", "host", "port")
REQUIRED_KEYS = {"http": ("url",), "tcp": ("host", "port"), "push": ("name", "period", "grace")}
EXPANDED_KEYS = ("headers", "body")  # the only places `${NAME}` is resolved: neither is shown in alerts or logs
BUILT_IN = {"interval": 30, "timeout": 5, "method": "GET", "tls_verify": True, "success_threshold": 1,
            "public": False, "tags": []}
# What GET /agent/targets carries per kind (notes/target_spec.md); push targets are not served.
AGENT_KEYS = {
    "http": ("name", "kind", "url", "interval", "timeout", "method", "headers", "body", "expect_status",
             "body_contains", "body_regex", "json_path", "json_equals", "tls_verify", "ca_file"),
    "tcp": ("name", "kind", "host", "port", "interval", "timeout"),
}
ABSENT = "absent"  # the fingerprint of a default targets file that does not exist: no file targets

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The backend's own secrets: a `${NAME}` would serve them to agents and send them to sites.
BACKEND_SECRETS = frozenset({"API_KEY", "TELEGRAM_BOT_TOKEN", "DATABASE_URL", "SMTP_PASSWORD", "WEBHOOK_SECRET",
                             "SECRET_KEY", "DASHBOARD_PASSWORD", "METRICS_TOKEN"})
_SAFE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class TargetsFileError(Exception):
    """The targets file cannot be used: one line naming the file, the line and the key, never a value."""


@dataclass(frozen=True)
class LoadedFile:
    """A validated targets file: its fingerprint, its targets in file order and its named channels (SPEC §10)."""

    fingerprint: str
    targets: list[dict]
    channels: dict[str, dict] = field(default_factory=dict)  # name -> entry, `${NAME}` unresolved
    maintenance: tuple[dict, ...] = ()  # the `maintenance:` entries, validated (SPEC §11)


class _Problem(Exception):
    """One problem found while reading: where (a path of keys and indexes) and what, in words."""

    def __init__(self, path: tuple, problem: str, line: int | None = None):
        super().__init__(problem)
        self.path, self.problem, self.line = path, problem, line  # line: when the path alone cannot tell


def read_targets_file(path: Path, environ: Mapping[str, str], required: bool, shown_as: str) -> LoadedFile:
    """Read and validate the targets file; an absent file is no targets unless it is `required`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise TargetsFileError(f"{shown_as}: no such file (set by TARGETS_FILE)") from None
        return LoadedFile(ABSENT, [])
    except OSError as exc:
        raise TargetsFileError(f"{shown_as}: cannot be read ({exc.strerror})") from None
    return parse_targets(data, environ, shown_as)


def shown_path(settings: Settings) -> str:
    """The targets file's path as messages show it: relative to the repository when inside it."""
    path = settings.targets_file
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def read_file(settings: Settings) -> LoadedFile:
    """Read and validate the targets file as the settings name it; TargetsFileError is one line naming file, line
    and key. The gunicorn master calls it before forking, so it lives here, away from the app's modules (their
    metric values belong in each worker's own file)."""
    return read_targets_file(settings.targets_file, settings.environment, settings.targets_file_required,
                             shown_path(settings))


def parse_targets(data: bytes, environ: Mapping[str, str], shown_as: str) -> LoadedFile:
    """Validate the file's bytes whole; raise TargetsFileError naming file, line and key (SPEC §8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise TargetsFileError(f"{shown_as}: is not UTF-8 text") from None
    root, document = _compose(text, shown_as)
    try:
        channels = _channels(document, environ)
        targets = _validate(document, environ, set(channels))
        maintenance = _maintenance(document.get("maintenance"))
    except _Problem as problem:
        line = problem.line or _line_of(root, problem.path)
        where = f"{shown_as}:{line}" if line else shown_as
        key = _path_text(problem.path)
        raise TargetsFileError(f"{where}: {key}: {problem.problem}" if key else f"{where}: {problem.problem}") from None
    return LoadedFile(hashlib.sha256(data).hexdigest(), targets, channels, maintenance)


def _compose(text: str, shown_as: str):
    """The YAML node tree (for line numbers) and the plain data it holds."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise TargetsFileError(f"{shown_as}: is empty; write `targets: []` for no targets")
        _refuse_duplicate_keys(root, ())
        return root, loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        # Only the problem and its line: str(exc) would quote the offending line, value included.
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise TargetsFileError(f"{shown_as}{line}: is not valid YAML ({exc.problem or exc.context})") from None
    except yaml.YAMLError:
        raise TargetsFileError(f"{shown_as}: is not valid YAML") from None
    except _Problem as problem:
        raise TargetsFileError(f"{shown_as}:{problem.line}: {_path_text(problem.path)}: {problem.problem}") from None
    finally:
        loader.dispose()


def _refuse_duplicate_keys(node, path: tuple) -> None:
    """A key given twice in one mapping is refused (YAML loaders would keep the last one silently)."""
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key != "<<":
                if key in seen:
                    raise _Problem((*path, key), "is given twice", key_node.start_mark.line + 1)
                seen.add(key)
            _refuse_duplicate_keys(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, (*path, index))


def _channels(document: Any, environ: Mapping[str, str]) -> dict[str, dict]:
    """The file's named channels (SPEC §10), `${NAME}` kept as written, or _Problem; never quotes a value."""
    if not isinstance(document, dict):
        raise _Problem((), "must be a mapping with `targets:` (and optionally `defaults:` and `channels:`)")
    entries = document.get("channels") or {}
    if not isinstance(entries, dict):
        raise _Problem(("channels",), "must be a mapping of channel names to channels, such as "
                       "{ops-mail: {type: email, to: [ops@example.com]}}")
    channels = {}
    for name, entry in entries.items():
        at = ("channels", name)
        problem = name_problem(name)
        if problem:
            raise _Problem(at, problem)
        if not isinstance(entry, dict):
            raise _Problem(at, "must be a mapping such as {type: webhook, url: ..., secret: ...}")
        if entry.get("type") not in CHANNEL_MODELS:
            raise _Problem((*at, "type"), f"must be one of {', '.join(CHANNEL_MODELS)}")
        _check_strings(entry, at, environ)
        resolved = resolve_secrets(entry, environ)
        model = _model(CHANNEL_MODELS[entry["type"]], resolved, at, set(CHANNEL_MODELS[entry["type"]].model_fields))
        problem = resolved_problem(entry["type"], model.model_dump(), environ)
        if problem:
            raise _Problem((*at, problem[0]), problem[1])
        channels[name] = entry
    return channels


def _validate(document: Any, environ: Mapping[str, str], named: set[str]) -> list[dict]:
    """The specs of every target in file order, or _Problem; a target's `channels:` may name `named` ones."""
    for key in document:
        if key not in ("defaults", "targets", "channels", "maintenance"):
            raise _Problem((key,), "is not a known key (the file holds defaults:, targets:, channels: and "
                           "maintenance:)")
    _check_strings({k: v for k, v in document.items() if k != "channels"}, (), environ)
    defaults = document.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise _Problem(("defaults",), "must be a mapping of keys to values")
    for key in defaults:
        if key in IDENTITY_KEYS:
            raise _Problem(("defaults", key), "is set per target, not in defaults")
    _model(TargetSettings, defaults, ("defaults",), set(defaults), named)
    entries = document.get("targets")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise _Problem(("targets",), "must be a list of targets")
    specs, names = [], {}
    for index, entry in enumerate(entries):
        spec = _target(entry, index, defaults, named)
        if spec["name"] in names:
            where = "name" if "name" in entry else REQUIRED_KEYS[spec["kind"]][0]
            raise _Problem(("targets", index, where),
                           f"gives the same name as targets[{names[spec['name']]}]; names must be unique")
        names[spec["name"]] = index
        specs.append(spec)
    return specs


def _maintenance(entries: Any) -> tuple[dict, ...]:
    """The `maintenance:` windows, each validated (SPEC §11), or _Problem naming the entry and key."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise _Problem(("maintenance",), "must be a list of windows")
    windows = []
    for index, entry in enumerate(entries):
        at = ("maintenance", index)
        if not isinstance(entry, dict):
            raise _Problem(at, 'must be a mapping such as {match: "db-*", days: [sun], start: "02:00", '
                           'duration: 2h}')
        model = _model(MaintenanceEntry, entry, at, set(entry))
        windows.append(model.model_dump(exclude_none=True))
    return tuple(windows)


def _target(entry: Any, index: int, defaults: dict, named: set[str]) -> dict:
    """One target's spec: its own keys over the defaults that apply to its kind, then the built-in ones."""
    at = ("targets", index)
    if not isinstance(entry, dict):
        raise _Problem(at, "must be a mapping such as {name: shop, url: https://shop.example.com/}")
    kind = entry.get("kind", "http")
    if kind not in KINDS:
        raise _Problem((*at, "kind"), "must be http, tcp or push")
    allowed = COMMON_KEYS + KIND_KEYS[kind]
    for key in entry:
        if key not in allowed:
            owners = [k for k in KINDS if key in KIND_KEYS[k]]
            raise _Problem((*at, key), f"is a key of {' and '.join(owners)} targets, not of {kind} targets"
                           if owners else "is not a known key")
    merged = {k: v for k, v in defaults.items() if k in allowed}
    merged.update(entry)
    model = _model(TargetEntry, merged, at, set(entry), named)
    for key in REQUIRED_KEYS[kind]:
        if merged.get(key) is None:
            raise _Problem((*at, key), "is required")
    if "json_equals" in merged and "json_path" not in merged:
        raise _Problem((*at, "json_equals"), "needs json_path: to say which value to compare")
    if "json_path" in merged and "json_equals" not in merged:
        raise _Problem((*at, "json_path"), "needs json_equals: the value expected there")
    spec = {key: getattr(model, key) for key in allowed}
    for key, value in BUILT_IN.items():
        if key in spec and spec[key] is None:
            spec[key] = value
    for key in ("interval", "timeout", "period", "grace"):
        if isinstance(spec.get(key), float) and spec[key].is_integer():
            spec[key] = int(spec[key])  # 30, not 30.0, in every answer
    spec["kind"] = kind
    spec["target_url"] = _target_url(spec)
    spec["name"] = spec["name"] if spec["name"] is not None else spec["target_url"]
    return spec


def _model(model: type[BaseModel], raw: dict, at: tuple, own_keys: set, named: set[str] = frozenset()) -> BaseModel:
    """Validate `raw` with `model`; the first error becomes a _Problem at the key's own line (or the default's).

    `named`: the file's named channels, which a target's `channels:` may name besides the defaults.
    """
    try:
        return model.model_validate(raw, context={"named_channels": named})
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        loc = tuple(part for part in error["loc"] if part != "[key]")
        base = at if not loc or loc[0] in own_keys or at == ("defaults",) else ("defaults",)
        raise _Problem((*base, *loc), _describe(error)) from None


_TYPE_PROBLEMS = {
    "string_type": "must be text (put it in quotes)",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list, such as [a, b]",
    "dict_type": "must be a mapping of names to values",
    "finite_number": "must be a finite number",
    "missing": "is required",
    "extra_forbidden": "is not a known key",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
}


def _describe(error: dict) -> str:
    """A pydantic complaint in words, without the value."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    bounds = {"greater_than": "more than", "greater_than_equal": "at least",
              "less_than": "less than", "less_than_equal": "at most"}
    if kind in bounds:
        return f"must be {bounds[kind]} {next(iter(ctx.values())):g}"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    return _TYPE_PROBLEMS.get(kind, "has a value of the wrong type")


def _check_strings(value: Any, path: tuple, environ: Mapping[str, str]) -> None:
    """No NUL anywhere; `${NAME}` only under headers: and body:, naming a set variable."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_strings(item, (*path, key), environ)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, (*path, index), environ)
    elif isinstance(value, str):
        if "\x00" in value:
            raise _Problem(path, "must not contain NUL characters")
        references = REFERENCE.findall(value)
        if not references:
            return
        # The target's (or the defaults') own key this string sits under: defaults.<key>..., targets[i].<key>...
        key_at = 1 if path[:1] == ("defaults",) else 2
        key = path[key_at] if len(path) > key_at else None
        in_channel = path[:1] == ("channels",)  # a channel's secrets: resolved per process, never shown
        if key not in EXPANDED_KEYS and not in_channel:
            raise _Problem(path, "may use ${NAME} only under headers: and body: (a URL or name is shown in "
                           "alerts and logs)")
        for name in references:
            if not _VARIABLE.fullmatch(name):
                raise _Problem(path, "has a ${...} that is not an environment variable name")
            if name in BACKEND_SECRETS:
                raise _Problem(path, f"uses ${{{name}}}, a secret of the backend itself; give the target's "
                               "secret a variable of its own")
            if name not in environ:
                raise _Problem(path, f"uses ${{{name}}}, which is not set in the backend's environment")
            if key == "headers" and any(c in environ[name] for c in "\r\n\x00"):
                raise _Problem(path, f"uses ${{{name}}}, whose value holds a line break")


def agent_view(spec: dict, environ: Mapping[str, str]) -> dict:
    """What an agent needs to check one http or tcp target, secrets resolved (notes/target_spec.md)."""
    view = {key: spec.get(key) for key in AGENT_KEYS[spec["kind"]]}
    for key in EXPANDED_KEYS:
        if key in view:
            view[key] = resolve_secrets(view[key], environ)
    return view


def public_view(spec: dict) -> dict:
    """A target's settings as GET /targets shows them: as written, `${NAME}` never resolved."""
    shown = {"name": spec["name"], "kind": spec["kind"]}
    shown.update({key: spec.get(key) for key in KIND_KEYS[spec["kind"]]})
    shown.update({key: spec.get(key) for key in COMMON_KEYS if key not in shown})
    return shown


def _target_url(spec: dict) -> str:
    """The target_url its events carry: the URL, tcp://host:port, or push://<name, percent-encoded>."""
    if spec["kind"] == "http":
        return spec["url"]
    if spec["kind"] == "tcp":
        host = spec["host"]
        return f"tcp://[{host}]:{spec['port']}" if ":" in host else f"tcp://{host}:{spec['port']}"
    return push_target_url(spec["name"])  # a push target's name is required


def push_target_url(name: str) -> str:
    """The target_url of a push target's events: built here from its name, never accepted from POST /events."""
    return "push://" + quote(name, safe="")


def _line_of(root, path: tuple) -> int | None:
    """The 1-based line of the deepest node on `path` that exists (a key's own line for a mapping key)."""
    node, line = root, root.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value
                          if isinstance(k, yaml.ScalarNode) and k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _path_text(path: tuple) -> str:
    """targets[2].headers.Authorization: keys joined with dots, indexes in brackets."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = str(part) if _SAFE_KEY.fullmatch(str(part)) else json.dumps(str(part), ensure_ascii=False)
            text += f".{key}" if text else key
    return text


def dumps_spec(spec: dict) -> str:
    """A spec as stored: compact JSON, keys in a fixed order so equal specs compare equal as text."""
    return json.dumps(spec, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
