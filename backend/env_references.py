"""`${NAME}` in the targets file: the pattern, and a value with each reference replaced from the environment.

Shared by the targets file's loader (which checks every reference) and the named channels (which
resolve their secrets in each backend process, from its own environment).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

REFERENCE = re.compile(r"\$\{([^}]*)\}")


def resolve_secrets(value: Any, environ: Mapping[str, str]) -> Any:
    """`value` with every `${NAME}` replaced by the environment's value; KeyError names a missing one."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: environ[m.group(1)], value) if "${" in value else value
    if isinstance(value, dict):
        return {k: resolve_secrets(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_secrets(item, environ) for item in value]
    return value
