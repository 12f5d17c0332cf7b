#!/bin/sh
# Install wrk for `make bench` when it is missing (Debian/Ubuntu: apt-get, as root or through sudo).
# Without it the benchmarks still run, with the bounded Python load generator (bench/loadgen.py).
command -v wrk >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" != none ]; then
        $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y wrk >/dev/null 2>&1; }
    fi
fi
command -v wrk >/dev/null 2>&1 && exit 0
echo "bench: wrk is not installed (apt-get install wrk); using the Python load generator, whose own CPU use lowers the figures" >&2
exit 0
