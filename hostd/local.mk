# hostd/: see ARCHITECTURE.md
include $(srcdir)/hostd/cim/local.mk
