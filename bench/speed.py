"""Issue 8's speed goal, side by side in one run: one agent with 10,000 targets every 10 s, and blackbox_exporter.

One local nginx (keep-alive off, every path answers 200 "ok") serves both. The agent pulls its
10,000 targets from a targets file through the real backend under gunicorn (TARGET_URL unset), for
three rounds (bench/agent_load.py's `measure`: planned checks made and stored, lag, CPU per check,
peak RSS, the backend's CPU per 1,000 checks stored), recorded by py-spy meanwhile (the profile).
blackbox_exporter probes the same nginx at the agent's rate (1,000 probes/s) right before and right
after the agent, its own process CPU only; the ratio of the agent's CPU per check to the mean of the
two is the figure the issue sets (<= 0.5x), robust to a busy machine, since both see the same load.
Then the stretch: 50,000 targets every 10 s. Skipped, with a line, when nginx is not installed.

    python -m bench.speed [--quick] [--targets N] [--stretch N] [--profile STACKS.txt]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import agent_load, agent_profile, nginx, peers
from bench.common import Row, log, print_table

TARGETS, STRETCH, INTERVAL_S, ROUNDS = 10_000, 50_000, 10.0, 3
QUICK = {"targets": 200, "interval_s": 2.0, "rounds": 2, "stretch": 0}
RSS_GOAL_MB = 200
RATIO_GOAL = 0.5


def run(quick: bool = False, targets: int = TARGETS, stretch: int = STRETCH, stacks: Path | None = None) -> list[Row]:
    """The side-by-side run (200 targets every 2 s for 2 rounds, no stretch, when quick); its summary rows."""
    binary = nginx.find()
    if binary is None:
        log("speed: nginx is not installed (apt-get install nginx-light): the 10,000-target benchmark is skipped")
        return []
    interval_s, rounds = INTERVAL_S, ROUNDS
    if quick:
        targets, interval_s, rounds, stretch = QUICK["targets"], QUICK["interval_s"], QUICK["rounds"], QUICK["stretch"]
    rate = targets / interval_s
    probe_s = 1.0 if quick else 10.0
    exporter_binary = peers.find(peers.BLACKBOX)
    if exporter_binary is None:
        log("speed: blackbox_exporter is not installed (apt-get install prometheus-blackbox-exporter): "
            "the agent runs alone, without the ratio")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as name:
        tmp = Path(name)
        profile = stacks or (tmp / "agent-stacks.txt" if agent_load.py_spy_binary() else None)
        with nginx.Nginx(binary, tmp) as site:
            log(f"speed: nginx {site.url} (keep-alive off)")
            probes = []
            exporter = peers.BlackboxExporter(exporter_binary, tmp) if exporter_binary else None
            if exporter is not None:
                with exporter:
                    probes.append(exporter.paced_cpu(f"{site.url}/t/probe", rate, probe_s))
                    m = agent_load.measure(site, targets, interval_s, rounds, profile, from_file=True)
                    probes.append(exporter.paced_cpu(f"{site.url}/t/probe", rate, probe_s))
            else:
                m = agent_load.measure(site, targets, interval_s, rounds, profile, from_file=True)
            rows += agent_load.rows_of(m, "speed", RSS_GOAL_MB)
            if probes:
                rows += _ratio_rows(m, probes, rate)
            if profile is not None and profile.exists():
                rows += _profile_rows(profile, m)
            if stretch:
                # The stretch: what happens, whatever it is, is the figure.
                rows += agent_load.rows_of(agent_load.measure(site, stretch, interval_s, rounds, from_file=True),
                                           "speed (stretch)", RSS_GOAL_MB)
    return rows


def _ratio_rows(m: dict, probes: list[tuple[int, float, float]], rate: float) -> list[Row]:
    """blackbox_exporter's CPU per probe (before and after the agent) and the agent's CPU per check against it."""
    for (ok, made_rate, ms), when in zip(probes, ("before", "after")):
        log(f"  blackbox_exporter {when} the agent: {ok} probes at {made_rate:.0f}/s (asked {rate:g}/s), "
            f"{ms:.3f} ms CPU each")
    peer_ms = sum(ms for _, _, ms in probes) / len(probes)
    made = ", ".join(f"{made_rate:.0f}/s" for _, made_rate, _ in probes)
    label = f"{m['targets']:,} targets @ {m['interval_s']:g}s"
    agent_ms = m["cpu_per_check_ms"]
    return [
        Row("speed", f"blackbox_exporter @ {rate:g} probes/s on the same nginx: CPU per probe "
                     f"(mean of before and after the agent, {made} made)", peer_ms, "ms"),
        Row("speed", f"{label}: agent CPU per check vs blackbox_exporter's per probe", agent_ms, "ms", peer_ms,
            "blackbox_exporter, same run", f"<= {RATIO_GOAL}x", agent_ms <= RATIO_GOAL * peer_ms),
    ]


def _profile_rows(stacks: Path, m: dict) -> list[Row]:
    """The profile's groups, as CPU ms per check (the group's share of the agent's CPU x CPU per check)."""
    shares = agent_profile.summarize(stacks, m["thread_cpu_s"])
    log("  profile: " + ", ".join(f"{group} {share:.0%}" for group, share in shares.items()))
    return [Row("speed", f"profile: {group} ({share:.0%} of the agent's CPU)", share * m["cpu_per_check_ms"],
                "ms/check") for group, share in sorted(shares.items(), key=lambda item: -item[1])]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (200 targets every 2 s, 2 rounds)")
    parser.add_argument("--targets", type=int, default=TARGETS, help=f"targets (default {TARGETS:,})")
    parser.add_argument("--stretch", type=int, default=STRETCH, help=f"the stretch's targets, 0: none (default {STRETCH:,})")
    parser.add_argument("--profile", type=Path, metavar="STACKS",
                        help="keep py-spy's collapsed stacks of the agent in STACKS (summed up by bench.agent_profile)")
    args = parser.parse_args()
    print_table(run(args.quick, args.targets, args.stretch, args.profile))
