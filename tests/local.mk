# tests/: one fragment per area, each owned by the area's code.
EXTRA_DIST += tests/integration/pytest-tap tests/integration/conftest.py \
	tests/integration/kvctest.py tests/bench/run-bench tests/summary
include $(srcdir)/tests/unit/local.mk
include $(srcdir)/tests/integration/local.mk
include $(srcdir)/tests/fuzz/local.mk
include $(srcdir)/tests/bench/local.mk
include $(srcdir)/tests/e2e/local.mk
