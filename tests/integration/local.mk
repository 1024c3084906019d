# tests/integration: pytest modules, each run through pytest-tap.
# Areas list their own modules in their folder's local.mk.
TESTS += tests/integration/test_harness.py
EXTRA_DIST += tests/integration/test_harness.py
