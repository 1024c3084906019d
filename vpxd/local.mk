# vpxd/: see ARCHITECTURE.md

# vpxd's host manager (owned by the hosts area): a library vpxd links with
# `vpxd/libhostmgr.a $(GNUTLS_LIBS) $(LIBEVENT_LIBS) $(PROTOBUF_C_LIBS)`.
noinst_LIBRARIES += vpxd/libhostmgr.a
vpxd_libhostmgr_a_SOURCES = vpxd/hostmgr.c vpxd/hostmgr.h
vpxd_libhostmgr_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
