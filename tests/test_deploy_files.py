"""The service files, checked offline: systemd units, Dockerfile and compose.yaml (nothing is built or pulled)."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import check_jsonschema
import jsonschema
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.support.procs import ROOT

UNITS = ROOT / "deploy" / "systemd"
INSTALL_DIR = "/opt/outage"
# The compose-spec schema (https://github.com/compose-spec/compose-spec, schema/compose-spec.json,
# Apache-2.0) as check-jsonschema vendors it: pinned in requirements-test.txt, nothing fetched.
COMPOSE_SCHEMA = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
MAKE_RUN_BACKEND = ["-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"]  # scripts/run.py


def unit(name: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value given, in order (systemd allows a key more than once)."""
    keys: dict[str, list[str]] = {}
    section = ""
    for line in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            keys.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return keys


def environment_of(keys: dict[str, list[str]]) -> dict[str, str]:
    return dict(item.split("=", 1) for line in keys.get("Service.Environment", []) for item in shlex.split(line))


def test_make_run_still_starts_the_backend_as_the_units_and_the_image_do():
    from scripts.run import backend_command
    assert backend_command(debug=False)[1:] == MAKE_RUN_BACKEND


@pytest.mark.parametrize("name, program, files", [
    ("outage-backend.service", MAKE_RUN_BACKEND, ["backend/gunicorn_conf.py", "backend/wsgi.py"]),
    ("outage-agent.service", ["agent/agent.py"], ["agent/agent.py"])])
def test_each_unit_runs_the_venv_program_of_the_repository_hardened(name, program, files):
    keys = unit(name)
    assert shlex.split(keys["Service.ExecStart"][0]) == [f"{INSTALL_DIR}/.venv/bin/python", *program]
    assert all((ROOT / file).is_file() for file in files)
    assert keys["Service.WorkingDirectory"] == [INSTALL_DIR]
    assert keys["Service.EnvironmentFile"] == [f"{INSTALL_DIR}/.env"]
    assert keys["Service.User"] == ["outage"] and keys["Service.Restart"] == ["on-failure"]
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes")):
        assert keys[f"Service.{key}"] == [value], key
    assert keys["Install.WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", ["outage-backend.service", "outage-agent.service"])
def test_everything_a_unit_writes_is_under_its_read_write_paths(name):
    keys = unit(name)
    writable = [PurePosixPath(p) for line in keys["Service.ReadWritePaths"] for p in line.split()]
    written = [value.removeprefix("sqlite:///") for key, value in environment_of(keys).items()
               if key.endswith(("_FILE", "_CACHE")) or key == "DATABASE_URL"]
    assert written
    for path in map(PurePosixPath, written):
        assert any(path.is_relative_to(folder) for folder in writable), f"{path} is read-only under ProtectSystem"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed "
                    "(Debian package systemd); the unit checks above still ran")
def test_systemd_analyze_verifies_both_units(tmp_path):
    # The install folder is this checkout, so verify finds the venv's python ExecStart names.
    (tmp_path / "outage").symlink_to(ROOT)
    for path in UNITS.glob("*.service"):
        text = path.read_text(encoding="utf-8").replace(INSTALL_DIR, str(tmp_path / "outage"))
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    names = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(names) == 2
    done = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")


def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "Dockerfile"))


def instructions(name: str) -> list[str]:
    return [item["value"] for item in dockerfile().structure if item["instruction"] == name]


def test_the_image_runs_gunicorn_as_make_run_does_as_a_user_other_than_root():
    assert dockerfile().baseimage == "python:3.11-slim"
    assert json.loads(instructions("CMD")[-1]) == ["python", *MAKE_RUN_BACKEND]
    user = instructions("USER")[-1]
    assert user not in ("root", "0") and not user.startswith(("root:", "0:"))
    order = [item["instruction"] for item in dockerfile().structure]
    assert order.index("USER") < order.index("CMD")
    assert "/health" in instructions("HEALTHCHECK")[-1]
    assert any("pip install -r requirements.txt" in run for run in instructions("RUN"))


def test_every_file_the_image_copies_exists_and_is_not_ignored():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]
    sources = [source for value in instructions("COPY") for source in value.split()[:-1]]
    assert {"requirements.txt", "backend/", "agent/", "common/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source.rstrip("/"), pattern.rstrip("/")) for pattern in ignored), source
    assert {".env", ".venv", ".git", "*.db"} <= set(ignored)  # never the key, the venv or a database


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))


def compose_errors(document: dict) -> list[str]:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [error.message for error in validator.iter_errors(document)]


def test_compose_file_is_valid_against_the_compose_spec_schema():
    assert compose_errors(compose()) == []


@pytest.mark.parametrize("service, path, value, word", [
    ("backend", ("depends_on", "db", "condition"), "service_ready", "service_ready"),
    ("db", ("healthcheck", "intervall"), "5s", "intervall")])
def test_the_schema_check_catches_a_typo(service, path, value, word):
    broken = compose()
    *parents, key = path
    node = broken["services"][service]
    for parent in parents:
        node = node[parent]
    node[key] = value
    assert any(word in error for error in compose_errors(broken))


def test_compose_runs_backend_agent_and_postgresql_in_order():
    services = compose()["services"]
    assert set(services) == {"db", "backend", "agent"}
    assert services["db"]["image"].startswith("postgres:") and "healthcheck" in services["db"]
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in services["db"]["volumes"])
    assert services["backend"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["agent"]["depends_on"]["backend"]["condition"] == "service_healthy"
    assert re.fullmatch(r"postgresql\+psycopg://outage:\$\{POSTGRES_PASSWORD\}@db:5432/outage",
                        services["backend"]["environment"]["DATABASE_URL"])
    assert services["agent"]["environment"]["BACKEND_URL"] == "http://backend:5000"
    assert services["agent"]["command"] == ["python", "agent/agent.py"] and (ROOT / "agent" / "agent.py").exists()
    assert "command" not in services["backend"]  # the image's CMD: gunicorn as make run starts it
