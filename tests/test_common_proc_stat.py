"""/proc/<pid>/stat read one way: a command name with spaces and parentheses does not shift the fields."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common.proc_stat import PARENT, STATE, stat_fields
from tests.support.procs import stop


def test_fields_count_from_after_the_last_parenthesis(tmp_path):
    odd = tmp_path / "x) 1 2 (y"  # the kernel takes the command name from the program's file name
    odd.symlink_to(sys.executable)
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(60)"])
    try:
        fields = stat_fields(child.pid)
        assert fields[PARENT] == str(os.getpid())
        assert fields[STATE] in ("R", "S", "D")
    finally:
        stop(child)
    with pytest.raises(FileNotFoundError):
        stat_fields(child.pid)
