"""Wording shared by the agent's messages."""


def plural(count: int, noun: str) -> str:
    """`1 result`, `2 results`: the count with its noun, plural unless the count is one."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
