"""Reliability figures: each fault-injection test records what was sent, stored, doubled and lost.

The records are JSON lines in the file named by RELIABILITY_FIGURES (default
`<repo>/.pytest_cache/reliability.jsonl`); tests/conftest.py clears it when the session starts and
prints the "Reliability figures" table at the end of the run. Each line carries the pytest process
id, so two runs at once in one checkout neither wipe nor show each other's figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ("scenario", "sent", "stored", "duplicated", "lost", "note")


def figures_path() -> Path:
    """Where this run's figures go."""
    return Path(os.environ.get("RELIABILITY_FIGURES") or ROOT / ".pytest_cache" / "reliability.jsonl")


def record(scenario: str, sent: int, stored: int, duplicated: int, lost: int, note: str = "") -> None:
    """Append one scenario's numbers: `sent` attempts or checks, how many `stored`, `duplicated`, `lost`."""
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"scenario": scenario, "sent": sent, "stored": stored, "duplicated": duplicated,
                       "lost": lost, "note": note, "pid": os.getpid()}, ensure_ascii=False)
    with open(path, "a", encoding="utf-8") as out:
        out.write(line + "\n")


def clear() -> None:
    """Forget the figures of earlier runs; keep those of other pytest runs still going."""
    path = figures_path()
    if not path.exists():
        return
    kept = [row for row in _rows(path) if row.get("pid") != os.getpid() and _is_running(row.get("pid"))]
    if not kept:
        path.unlink(missing_ok=True)
        return
    spare = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    spare.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept), encoding="utf-8")
    os.replace(spare, path)


def read_all() -> list[dict]:
    """Every figure this pytest run recorded, in the order recorded."""
    path = figures_path()
    return [row for row in _rows(path) if row.get("pid") == os.getpid()] if path.exists() else []


def _rows(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut short by a killed run
            continue
    return rows


def _is_running(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def table(rows: list[dict]) -> list[str]:
    """The rows as aligned text lines, a header first."""
    cells = [list(COLUMNS)] + [[str(row.get(column, "")) for column in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
