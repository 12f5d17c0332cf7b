"""Create .env from .env.example with a fresh API_KEY and SECRET_KEY (used by `make run`); never overwrites a value.

An existing .env without a SECRET_KEY gains one (the dashboard's session key, SPEC §12), appended.
"""

import secrets
import sys
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("API_KEY", "SECRET_KEY")


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
    print("created .env with a new random API_KEY and SECRET_KEY (edit it for Telegram or the dashboard's "
          "DASHBOARD_PASSWORD; your sites go in targets.yaml)")
    return 0


def _filled(line: str) -> str:
    """The line with a generated value when it is an empty API_KEY= or SECRET_KEY= line."""
    for key in GENERATED:
        if line.startswith(f"{key}="):
            return f"{key}={secrets.token_urlsafe(32)}"
    return line


if __name__ == "__main__":
    sys.exit(main())
