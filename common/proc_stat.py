"""A process's /proc/<pid>/stat (Linux), split one way for the backend, the tests and the benchmarks."""

from __future__ import annotations

# Indexes into stat_fields(): proc(5)'s field number minus 3.
STATE, PARENT, UTIME, STIME, THREADS, START_TIME = 0, 1, 11, 12, 17, 19


def stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (proc(5) field 3 on); OSError when unreadable."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read().decode("ascii", "replace")
    # The command name (field 2) may hold spaces and parentheses: count fields after the last ")".
    return text.rpartition(")")[2].split()
