"""Create .env from .env.example with a fresh API_KEY, SECRET_KEY and DASHBOARD_PASSWORD (used by `make run`).

Never overwrites a value; the dashboard password is generated only into a new .env (never printed), so a
newcomer's `make run` has a dashboard to log in to, and an older install is not opened by an upgrade.

An existing .env without a SECRET_KEY gains one (the dashboard's session key, SPEC §12), appended.
"""

import secrets
import sys
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
GENERATED = {"API_KEY": 32, "SECRET_KEY": 32, "DASHBOARD_PASSWORD": 12}  # bytes of randomness


def main(root: Path = ROOT) -> int:
    """Write root/.env unless it exists; give an existing one a SECRET_KEY when it has none."""
    env_file = root / ".env"
    if env_file.exists():
        if (dotenv_values(env_file).get("SECRET_KEY") or "").strip():
            return 0
        text = env_file.read_text(encoding="utf-8")
        separator = "" if not text or text.endswith("\n") else "\n"
        with env_file.open("a", encoding="utf-8") as out:
            out.write(f"{separator}# Signs the dashboard's session cookie (added by make run).\n"
                      f"SECRET_KEY={secrets.token_urlsafe(32)}\n")
        print("added a new random SECRET_KEY to .env (the dashboard's session key)")
        return 0
    lines = (root / ".env.example").read_text(encoding="utf-8").splitlines()
    text = "\n".join(_filled(line) for line in lines) + "\n"
    env_file.touch(mode=0o600)
    env_file.write_text(text, encoding="utf-8")
    print("created .env with a new random API_KEY, SECRET_KEY and DASHBOARD_PASSWORD (the dashboard's login: "
          "read it in .env; edit .env for Telegram and the other channels; your sites go in targets.yaml)")
    return 0


def _filled(line: str) -> str:
    """The line with a generated value when it is an empty API_KEY=, SECRET_KEY= or DASHBOARD_PASSWORD= line."""
    for key, size in GENERATED.items():
        if line == f"{key}=":
            return f"{key}={secrets.token_urlsafe(size)}"
    return line


if __name__ == "__main__":
    sys.exit(main())
