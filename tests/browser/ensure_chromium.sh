#!/bin/sh
# Make sure Debian's Chromium and its driver are installed for the admin's browser test.
# We use the distribution's packages so that nothing downloads a browser build of its own
# (selenium-manager, webdriver-manager); on a machine that has both, this does nothing.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
echo "Installing chromium and chromium-driver for the browser test (apt-get, needs root)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends chromium chromium-driver
