"""Small server-drawn charts for the dashboard: pure functions from numbers to SVG coordinates."""

from __future__ import annotations

SPARK_WIDTH, SPARK_HEIGHT = 120, 28


def sparkline_points(values: list[float], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """An SVG polyline's `points` for values left to right, the highest at the top; "" for none."""
    if not values:
        return ""
    if len(values) == 1:
        values = values * 2  # a flat line rather than a dot
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - 1 - (v - low) / span * (height - 2):.1f}" for i, v in enumerate(values))
