# proto/: every message between kvcenter processes, compiled at build time
# by protoc-c into $(builddir)/proto/*.pb-c.[ch] (never committed) and
# archived in proto/libkvcproto.a.
#
# To add messages: put proto/NAME.proto in the tree and add ONE line here:
#     KVC_PROTO_FILES += proto/NAME.proto
# then `#include "NAME.pb-c.h"` and link proto/libkvcproto.a $(PROTOBUF_C_LIBS).
# Imports between files are written `import "rpc.proto";`.
KVC_PROTO_FILES = proto/rpc.proto
KVC_PROTO_FILES += proto/vmkd.proto
KVC_PROTO_FILES += proto/host.proto
KVC_PROTO_FILES += proto/vmx.proto

KVC_PROTO_C = $(KVC_PROTO_FILES:.proto=.pb-c.c)
KVC_PROTO_H = $(KVC_PROTO_FILES:.proto=.pb-c.h)

noinst_LIBRARIES += proto/libkvcproto.a
nodist_proto_libkvcproto_a_SOURCES = $(KVC_PROTO_C) $(KVC_PROTO_H)
proto_libkvcproto_a_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)

# Generated headers must exist before anything that includes them compiles.
BUILT_SOURCES += $(KVC_PROTO_C) $(KVC_PROTO_H)
CLEANFILES += $(KVC_PROTO_C) $(KVC_PROTO_H) proto/protoc-c.stamp
EXTRA_DIST += $(KVC_PROTO_FILES)

# One protoc-c run compiles all files (cheap), so imports always resolve.
proto/protoc-c.stamp: $(KVC_PROTO_FILES)
	@$(MKDIR_P) proto
	$(AM_V_GEN)cd $(srcdir) && $(PROTOC_C) --proto_path=proto \
	  --c_out=$(abs_top_builddir)/proto $(KVC_PROTO_FILES)
	@touch $@

$(KVC_PROTO_C) $(KVC_PROTO_H): proto/protoc-c.stamp
	@test -f $@ || { rm -f proto/protoc-c.stamp; \
	  $(MAKE) $(AM_MAKEFLAGS) proto/protoc-c.stamp; }
