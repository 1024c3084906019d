#!/bin/sh
# The dashboard in a real browser (tests/e2e/dashboard.mjs prints TAP).
node=$(command -v node) || { echo "1..0 # SKIP node not installed"; exit 0; }
exec "$node" "${KVC_SRCDIR:-$(dirname "$0")/../..}/tests/e2e/dashboard.mjs"
