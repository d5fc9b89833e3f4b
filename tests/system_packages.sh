#!/bin/sh
# Debian packages the test suite and `make cluster` run for real: redis-server
# (tests start their own on free ports), Chromium with its driver (the admin's
# browser test), valgrind (the benchmark's instruction counts) and Prometheus
# (the cluster's metrics; its promtool checks the alert rules). Distribution
# packages, so that nothing downloads a browser, driver or Prometheus build of
# its own. On a machine that has them all, this does nothing.
set -eu

missing=""
[ -x "$(command -v redis-server || true)" ] || missing="$missing redis-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
[ -x /usr/bin/chromedriver ] || missing="$missing chromium-driver"
[ -x /usr/bin/prometheus ] || missing="$missing prometheus"
# The benchmark's instruction counts (bench/instructions.py) run servers under callgrind.
[ -x "$(command -v valgrind || true)" ] || missing="$missing valgrind"
# The front page's curl snippet is run as a reader would run it.
[ -x "$(command -v curl || true)" ] || missing="$missing curl"
[ -z "$missing" ] && exit 0

echo "Installing$missing for the tests (apt-get, needs root)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $missing
