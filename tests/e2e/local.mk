# tests/e2e: the dashboard in a real browser (Debian's chromium, headless,
# driven by playwright-core from web/node_modules) against kvcenter-up.
# Screenshots land in $(builddir)/tests/e2e/screenshots/.
TESTS += tests/e2e/test_dashboard.sh
EXTRA_DIST += tests/e2e/test_dashboard.sh tests/e2e/dashboard.mjs
CLEANFILES += tests/e2e/kvcenter-up.out tests/e2e/kvcenter-up.err
