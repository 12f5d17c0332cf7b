#!/bin/sh
# Install what `make bench` drives when it is missing (Debian/Ubuntu: apt-get, as root or through sudo):
# wrk, the peers measured beside us (blackbox_exporter and Alertmanager), nginx, the target of the
# 10,000-target benchmark, promtool (the prometheus package), which the metrics tests run, and
# systemd-analyze, which checks the systemd units (tests/test_deploy_files.py).
# Each entry is "command:package[|other package]": the first package the registry offers (a
# candidate in `apt-cache policy`, even after `apt-get update`) is installed; one it offers none of
# is left out, and the benchmarks then say what they skipped and go on.
TOOLS="wrk:wrk prometheus-blackbox-exporter:prometheus-blackbox-exporter
prometheus-alertmanager:prometheus-alertmanager nginx:nginx-light|nginx promtool:prometheus systemd-analyze:systemd"
missing=""
for tool in $TOOLS; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing="$missing $tool"
done
[ -z "$missing" ] && exit 0

offered() {  # for each missing command, the first of its packages apt-get can install now
    for tool in $missing; do
        for package in $(echo "${tool#*:}" | tr '|' ' '); do
            if apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
                printf ' %s' "$package"
                break
            fi
        done
    done
}

if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" != none ]; then
        install=$(offered)
        [ "$(echo $install | wc -w)" = "$(echo $missing | wc -w)" ] || { $SUDO apt-get update >/dev/null 2>&1; install=$(offered); }
        # shellcheck disable=SC2086  # one word per package
        [ -n "$install" ] && $SUDO apt-get install -y $install >/dev/null 2>&1
    fi
fi
for tool in $missing; do
    command=${tool%%:*}
    command -v "$command" >/dev/null 2>&1 || [ -x "/usr/sbin/$command" ] && continue
    case $command in
        wrk) echo "bench: wrk is not installed (apt-get install wrk): the Python load generator stands in," \
                  "and its own CPU use lowers the figures" >&2 ;;
        nginx) echo "bench: nginx is not installed (apt-get install nginx-light): the 10,000-target" \
                    "benchmark is skipped" >&2 ;;
        promtool) echo "bench: promtool is not installed (apt-get install prometheus): the metrics tests" \
                       "skip their format check (and fail under CI=true)" >&2 ;;
        *) echo "bench: $command is not installed (apt-get install $(echo "${tool#*:}" | sed 's/|/ or /g')):" \
                "its rows are skipped" >&2 ;;
    esac
done
exit 0
