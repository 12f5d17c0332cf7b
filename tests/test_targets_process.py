"""The targets file with real backend processes: start-up refusal, file watch, reload, several workers (SPEC §8)."""

import requests

from tests.support.procs import Backend, Gunicorn, base_env, run_to_exit, wait_healthy, wait_until

SECRET = "hunter2-in-the-bad-line"

GOOD = """\
targets:
  - name: shop
    url: https://shop.example/health
    headers: {Authorization: "Bearer ${SHOP_TOKEN}"}
  - name: db
    kind: tcp
    host: 127.0.0.1
    port: 5432
"""
BAD = GOOD.replace("url: https://shop.example/health", f"url: ftp://{SECRET}.example/")
BAD_LINE = "targets[0].url: must be an http(s) URL"


def write_config(tmp_path, text: str):
    """The targets file, in a folder of its own: the secret it may hold must be found nowhere else."""
    folder = tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    path = folder / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def output_files_hold_no_secret(tmp_path) -> None:
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.parent.name != "conf":
            assert SECRET.encode() not in path.read_bytes(), f"the secret leaked into {path.name}"


def names(base_url: str, key: str, path: str = "/targets") -> list[str]:
    answer = requests.get(f"{base_url}{path}", headers={"X-API-Key": key}, timeout=10)
    assert answer.status_code == 200, answer.text
    return [t["name"] for t in answer.json()["targets"]]


def test_an_invalid_file_stops_the_backend_with_one_line_and_status_2(tmp_path):
    targets = write_config(tmp_path, BAD)
    env = base_env(tmp_path, TARGETS_FILE=str(targets), SHOP_TOKEN="x")
    status = run_to_exit(["backend/app.py"], env, tmp_path / "backend.out")
    out = (tmp_path / "backend.out").read_text(encoding="utf-8")
    assert status == 2
    assert out.strip().splitlines()[-1] == f"configuration error: {targets}:3: {BAD_LINE}"
    assert "Traceback" not in out
    output_files_hold_no_secret(tmp_path)


def test_gunicorn_refuses_an_invalid_file_before_any_worker_starts(tmp_path):
    targets = write_config(tmp_path, BAD)
    env = base_env(tmp_path, TARGETS_FILE=str(targets), SHOP_TOKEN="x")
    status = run_to_exit(["-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"], env,
                         tmp_path / "gunicorn.out")
    out = (tmp_path / "gunicorn.out").read_text(encoding="utf-8")
    assert status == 2
    assert out.strip().splitlines() == [f"configuration error: {targets}:3: {BAD_LINE}"]
    output_files_hold_no_secret(tmp_path)


def test_a_changed_file_is_picked_up_an_invalid_one_is_refused_and_the_list_stays(tmp_path):
    targets = write_config(tmp_path, GOOD)
    backend = Backend(tmp_path, TARGETS_FILE=str(targets), SHOP_TOKEN="t0ken", TARGETS_POLL_SECONDS="0.2").start()
    key = backend.env["API_KEY"]
    try:
        assert names(backend.url, key) == ["shop", "db"]
        targets.write_text(GOOD + "  - url: https://added.example/\n", encoding="utf-8")
        wait_until(lambda: names(backend.url, key) == ["shop", "db", "https://added.example/"], timeout=15,
                   message="the added target")

        targets.write_text(BAD, encoding="utf-8")
        wait_until(lambda: BAD_LINE in backend.log_text(), timeout=15, message="the refusal in server.log")
        assert names(backend.url, key) == ["shop", "db", "https://added.example/"]
        refused = backend.api("POST", "/targets/reload")
        assert refused.status_code == 400
        assert refused.json()["details"] == {"code": "invalid_targets_file"}
        assert refused.json()["error"] == f"{targets}:3: {BAD_LINE}"

        targets.write_text(GOOD, encoding="utf-8")
        wait_until(lambda: names(backend.url, key) == ["shop", "db"], timeout=15, message="the fixed file")
        agent = backend.api("GET", "/agent/targets").json()
        assert agent["targets"][0]["headers"] == {"Authorization": "Bearer t0ken"}
    finally:
        assert backend.stop() == 0
    log = backend.log_text()
    assert "targets file not reloaded, the running list stays" in log and "t0ken" not in log
    output_files_hold_no_secret(tmp_path)


def test_every_gunicorn_worker_serves_the_list_another_process_loaded(tmp_path):
    targets = write_config(tmp_path, GOOD)
    server = Gunicorn(tmp_path, BACKEND_WORKERS="2", TARGETS_FILE=str(targets), SHOP_TOKEN="t0ken",
                      TARGETS_POLL_SECONDS="0.2")
    key = server.env["API_KEY"]
    try:
        wait_healthy(server.url, server.proc, timeout=40)
        # Every request on a new connection, so both workers answer some of them.
        assert {tuple(names(server.url, key, "/agent/targets")) for _ in range(20)} == {("shop", "db")}
        targets.write_text("targets:\n  - url: https://only.example/\n", encoding="utf-8")
        wait_until(lambda: names(server.url, key) == ["https://only.example/"], timeout=15, message="the new list")
        assert {tuple(names(server.url, key, "/agent/targets")) for _ in range(20)} == {("https://only.example/",)}
        assert {tuple(names(server.url, key)) for _ in range(20)} == {("https://only.example/",)}
    finally:
        server.stop()
