"""Create .env from .env.example with a freshly generated API_KEY (used by `make run`); never overwrites."""

import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Write ROOT/.env unless it already exists."""
    env_file = ROOT / ".env"
    if env_file.exists():
        return 0
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    key = secrets.token_urlsafe(32)
    text = "\n".join(f"API_KEY={key}" if line.startswith("API_KEY=") else line for line in lines) + "\n"
    env_file.touch(mode=0o600)
    env_file.write_text(text, encoding="utf-8")
    print("created .env with a new random API_KEY (edit it for Telegram; your sites go in targets.yaml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
