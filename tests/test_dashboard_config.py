"""DASHBOARD_PASSWORD, SECRET_KEY and DASHBOARD_HTTPS (SPEC §12), and make_env.py giving every .env a SECRET_KEY."""

import pytest
from dotenv import dotenv_values
from werkzeug.security import check_password_hash

from backend.config import ConfigError, load_settings
from scripts import make_env

BASE = {"API_KEY": "k" * 20}
KEY = "s" * 32


def test_no_password_means_the_dashboard_is_off():
    assert load_settings(BASE).dashboard is None
    assert load_settings({**BASE, "DASHBOARD_PASSWORD": "  "}).dashboard is None


def test_the_password_is_kept_only_as_a_hash():
    dashboard = load_settings({**BASE, "DASHBOARD_PASSWORD": " pass word ", "SECRET_KEY": KEY}).dashboard
    assert check_password_hash(dashboard.password_hash, " pass word ")
    assert "pass word" not in dashboard.password_hash and dashboard.secret_key == KEY
    assert dashboard.https is False
    assert KEY not in repr(dashboard) and dashboard.password_hash not in repr(dashboard)


@pytest.mark.parametrize("environ, key, words", [
    ({"DASHBOARD_PASSWORD": "pw"}, "SECRET_KEY", "is required when DASHBOARD_PASSWORD is set"),
    ({"DASHBOARD_PASSWORD": "pw", "SECRET_KEY": "short"}, "SECRET_KEY", "at least 32 characters"),
    ({"DASHBOARD_HTTPS": "maybe"}, "DASHBOARD_HTTPS", "must be true or false"),
])
def test_a_bad_dashboard_setting_names_its_key(environ, key, words):
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, **environ})
    assert caught.value.key == key and words in caught.value.problem


def test_make_env_writes_the_secrets_and_a_dashboard_password_into_a_new_env(tmp_path, capsys):
    (tmp_path / ".env.example").write_text("# x\nAPI_KEY=\nSECRET_KEY=\nDASHBOARD_PASSWORD=\nFLASK_PORT=5000\n",
                                           encoding="utf-8")
    make_env.main(tmp_path)
    values = dotenv_values(tmp_path / ".env")
    assert len(values["API_KEY"]) >= 32 and len(values["SECRET_KEY"]) >= 32 and values["FLASK_PORT"] == "5000"
    assert len(values["DASHBOARD_PASSWORD"]) >= 16  # a newcomer's make run has a dashboard to log in to
    assert len({values["API_KEY"], values["SECRET_KEY"], values["DASHBOARD_PASSWORD"]}) == 3
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0
    printed = capsys.readouterr().out
    assert values["SECRET_KEY"] not in printed and values["DASHBOARD_PASSWORD"] not in printed


def test_make_env_gives_an_older_env_a_secret_key_and_changes_nothing_else(tmp_path):
    env = tmp_path / ".env"
    env.write_text("API_KEY=mine-0123456789abcdef\nFLASK_PORT=5050", encoding="utf-8")  # no final newline
    make_env.main(tmp_path)
    values = dotenv_values(env)
    assert values["API_KEY"] == "mine-0123456789abcdef" and values["FLASK_PORT"] == "5050"
    assert len(values["SECRET_KEY"]) >= 32
    assert "DASHBOARD_PASSWORD" not in values  # an upgrade never turns an older install's dashboard on
    before = env.read_text(encoding="utf-8")
    make_env.main(tmp_path)  # a second run: the key stays
    assert env.read_text(encoding="utf-8") == before
