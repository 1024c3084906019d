# tests/fuzz: libFuzzer targets, built with clang by `make fuzz`; each
# target's corpus is replayed (same code, a plain main()) by `make check`.
#
# Adding a target NAME (see docs/development.md, "Fuzzing"):
#   - tests/fuzz/fuzz_NAME.c defines LLVMFuzzerTestOneInput();
#   - seeds go in tests/fuzz/corpus/NAME/ (committed, small);
#   - in your folder's local.mk:
#       KVC_FUZZ_TARGETS += tests/fuzz/fuzz_NAME
#       tests/fuzz/fuzz_NAME: $(srcdir)/tests/fuzz/fuzz_NAME.c $(BUILT_SOURCES)
#       	$(KVC_FUZZ_CC) -o $@ $(srcdir)/tests/fuzz/fuzz_NAME.c <sources under test> <libs>
#       check_PROGRAMS += tests/fuzz/replay_NAME
#       TESTS += tests/fuzz/replay_NAME
#       tests_fuzz_replay_NAME_SOURCES = tests/fuzz/fuzz_NAME.c tests/fuzz/replay-main.c
#       tests_fuzz_replay_NAME_CPPFLAGS = $(AM_CPPFLAGS) -DKVC_FUZZ_NAME='"NAME"'
#       tests_fuzz_replay_NAME_LDADD = <libs under test>
#       EXTRA_DIST += tests/fuzz/corpus/NAME
#   The sources under test are compiled into the fuzz binary with clang (so
#   libFuzzer sees their coverage), not taken from the gcc-built archives.
#   Run one: tests/fuzz/fuzz_NAME -max_total_time=60 $(srcdir)/tests/fuzz/corpus/NAME

KVC_FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-std=gnu11 -Wall -Wno-unused-parameter
KVC_FUZZ_CC = $(CLANG) $(KVC_FUZZ_CFLAGS) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS)

if HAVE_CLANG
fuzz: $(KVC_FUZZ_TARGETS)
	@for t in $(KVC_FUZZ_TARGETS); do echo "built $$t"; done
else
fuzz:
	@echo "make fuzz needs clang (apt-get install clang); configure did not find it" >&2; exit 1
endif
CLEANFILES += $(KVC_FUZZ_TARGETS)

# ---- rpc_frame: the RPC frame decoder and dispatch (lib/rpc*.c) ---------
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_rpc_frame
KVC_FUZZ_RPC_SRCS = lib/rpc.c lib/rpc-frame.c lib/rpc-server.c lib/rpc-client.c \
	lib/tls.c lib/log.c
tests/fuzz/fuzz_rpc_frame: $(srcdir)/tests/fuzz/fuzz_rpc_frame.c $(KVC_FUZZ_RPC_SRCS) \
		$(BUILT_SOURCES)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)srcs=; for f in $(KVC_FUZZ_RPC_SRCS); do srcs="$$srcs $(srcdir)/$$f"; done; \
	$(KVC_FUZZ_CC) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS) -o $@ \
	  $(srcdir)/tests/fuzz/fuzz_rpc_frame.c $$srcs $(KVC_PROTO_C) \
	  $(LIBEVENT_LIBS) $(GNUTLS_LIBS) $(PROTOBUF_C_LIBS)

check_PROGRAMS += tests/fuzz/replay_rpc_frame
TESTS += tests/fuzz/replay_rpc_frame
tests_fuzz_replay_rpc_frame_SOURCES = tests/fuzz/fuzz_rpc_frame.c tests/fuzz/replay-main.c
tests_fuzz_replay_rpc_frame_CPPFLAGS = $(AM_CPPFLAGS) -DKVC_FUZZ_NAME='"rpc_frame"'
tests_fuzz_replay_rpc_frame_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) \
	$(PROTOBUF_C_CFLAGS)
tests_fuzz_replay_rpc_frame_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a \
	$(KVC_RPC_LIBS)
EXTRA_DIST += tests/fuzz/corpus/rpc_frame tests/fuzz/make-rpc-frame-corpus.py

# ---- virtio_blk: virtio-blk requests and the disk's metadata parsers -----
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_virtio_blk
KVC_FUZZ_BLK_SRCS = vmkernel-kvm/devices/virtio_blk.c vmkernel-kvm/disk.c \
	vmkernel-kvm/devices/virtio_mmio.c vmkernel-kvm/devices/virtq.c \
	vmkernel-kvm/devices/bus.c vmkernel-kvm/memory.c vmkernel-kvm/vmx_state.c lib/log.c
tests/fuzz/fuzz_virtio_blk: $(srcdir)/tests/fuzz/fuzz_virtio_blk.c $(KVC_FUZZ_BLK_SRCS:%=$(srcdir)/%) \
		$(BUILT_SOURCES)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(KVC_FUZZ_CC) -o $@ $(srcdir)/tests/fuzz/fuzz_virtio_blk.c \
	  $(KVC_FUZZ_BLK_SRCS:%=$(srcdir)/%)

check_PROGRAMS += tests/fuzz/replay_virtio_blk
TESTS += tests/fuzz/replay_virtio_blk
tests_fuzz_replay_virtio_blk_SOURCES = tests/fuzz/fuzz_virtio_blk.c tests/fuzz/replay-main.c
tests_fuzz_replay_virtio_blk_CPPFLAGS = $(AM_CPPFLAGS) -DKVC_FUZZ_NAME='"virtio_blk"'
tests_fuzz_replay_virtio_blk_LDADD = $(VMX_LIBS)
EXTRA_DIST += tests/fuzz/corpus/virtio_blk

# ---- migrate_disk: the disk records of a migration that carries the disk --
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_migrate_disk
KVC_FUZZ_XMIG_SRCS = vmkernel-kvm/migrate_disk.c vmkernel-kvm/disk.c vmkernel-kvm/vmx_state.c lib/log.c
tests/fuzz/fuzz_migrate_disk: $(srcdir)/tests/fuzz/fuzz_migrate_disk.c $(KVC_FUZZ_XMIG_SRCS:%=$(srcdir)/%) \
		$(BUILT_SOURCES)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(KVC_FUZZ_CC) $(LIBEVENT_CFLAGS) $(PROTOBUF_C_CFLAGS) -o $@ \
	  $(srcdir)/tests/fuzz/fuzz_migrate_disk.c $(KVC_FUZZ_XMIG_SRCS:%=$(srcdir)/%) -lpthread

check_PROGRAMS += tests/fuzz/replay_migrate_disk
TESTS += tests/fuzz/replay_migrate_disk
tests_fuzz_replay_migrate_disk_SOURCES = tests/fuzz/fuzz_migrate_disk.c tests/fuzz/replay-main.c
tests_fuzz_replay_migrate_disk_CPPFLAGS = $(AM_CPPFLAGS) -DKVC_FUZZ_NAME='"migrate_disk"'
tests_fuzz_replay_migrate_disk_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(PROTOBUF_C_CFLAGS)
tests_fuzz_replay_migrate_disk_LDADD = $(VMX_LIBS)
EXTRA_DIST += tests/fuzz/corpus/migrate_disk tests/fuzz/make-migrate-disk-corpus.py
