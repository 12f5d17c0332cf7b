#!/bin/sh
# Install Debian's chromium and chromium-driver when missing (apt-get, as root or through sudo): the
# dashboard's browser test (tests/test_dashboard_browser.py) drives them; no browser is downloaded
# at run time. Without apt-get or root, say so; the test then skips (or fails, under CI=true).
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else SUDO=none; fi
    if [ "$SUDO" != none ]; then
        $SUDO apt-get install -y chromium chromium-driver >/dev/null 2>&1 ||
            { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y chromium chromium-driver >/dev/null 2>&1; }
    fi
fi
command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && exit 0
echo "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver):" \
     "the dashboard's browser test is skipped" >&2
exit 0
