#!/bin/sh
# Install what `make bench` drives when it is missing (Debian/Ubuntu: apt-get, as root or through sudo):
# wrk, and the peers measured beside us, blackbox_exporter and Alertmanager (each package's command
# has the package's name). A package the registry does not offer (no candidate in `apt-cache policy`,
# even after `apt-get update`) is left out; the benchmarks then say what they skipped and go on.
PACKAGES="wrk prometheus-blackbox-exporter prometheus-alertmanager"
missing=""
for package in $PACKAGES; do
    command -v "$package" >/dev/null 2>&1 || missing="$missing $package"
done
[ -z "$missing" ] && exit 0

offered() {  # the missing packages apt-get can install now
    for package in $missing; do
        apt-cache policy "$package" 2>/dev/null | grep -q 'Candidate: [0-9]' && printf ' %s' "$package"
    done
}

if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" != none ]; then
        install=$(offered)
        [ "$install" = "$missing" ] || { $SUDO apt-get update >/dev/null 2>&1; install=$(offered); }
        # shellcheck disable=SC2086  # one word per package
        [ -n "$install" ] && $SUDO apt-get install -y $install >/dev/null 2>&1
    fi
fi
for package in $missing; do
    command -v "$package" >/dev/null 2>&1 && continue
    case $package in
        wrk) echo "bench: wrk is not installed (apt-get install wrk): the Python load generator stands in," \
                  "and its own CPU use lowers the figures" >&2 ;;
        *) echo "bench: $package is not installed (apt-get install $package): its rows are skipped" >&2 ;;
    esac
done
exit 0
