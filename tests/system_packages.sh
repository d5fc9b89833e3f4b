#!/bin/sh
# Debian packages the test suite runs for real: redis-server (tests start
# their own on free ports) and Chromium with its driver (the admin's browser
# test). Distribution packages, so that nothing downloads a browser or driver
# build of its own. On a machine that has them all, this does nothing.
set -eu

missing=""
[ -x "$(command -v redis-server || true)" ] || missing="$missing redis-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
[ -z "$missing" ] && exit 0

echo "Installing$missing for the tests (apt-get, needs root)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
