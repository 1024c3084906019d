# vmkernel-kvm/: see ARCHITECTURE.md

# --- vSwitch: rules in its own fragment ---
include $(srcdir)/vmkernel-kvm/vswitch/local.mk

# ---- vmkd: the per-host VMkernel shim (docs/vmkd.md) ----
# libvmkd.a: cgroup placement and resource policy, shared by vmkd and its tests.
noinst_LIBRARIES += vmkernel-kvm/libvmkd.a
vmkernel_kvm_libvmkd_a_SOURCES = \
	vmkernel-kvm/cgroup.c vmkernel-kvm/cgroup.h \
	vmkernel-kvm/sched.c vmkernel-kvm/sched.h

check_PROGRAMS += tests/unit/test_vmkd_sched tests/unit/test_vmkd_cgroup
TESTS += tests/unit/test_vmkd_sched tests/unit/test_vmkd_cgroup
tests_unit_test_vmkd_sched_SOURCES = tests/unit/test_vmkd_sched.c
tests_unit_test_vmkd_sched_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmkd_sched_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(CMOCKA_LIBS)
tests_unit_test_vmkd_cgroup_SOURCES = tests/unit/test_vmkd_cgroup.c
tests_unit_test_vmkd_cgroup_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmkd_cgroup_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/test_vmkd_pool_cgroup
TESTS += tests/unit/test_vmkd_pool_cgroup
tests_unit_test_vmkd_pool_cgroup_SOURCES = tests/unit/test_vmkd_pool_cgroup.c
tests_unit_test_vmkd_pool_cgroup_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmkd_pool_cgroup_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(CMOCKA_LIBS)
vmkernel_kvm_libvmkd_a_SOURCES += vmkernel-kvm/vmkd_vm.c vmkernel-kvm/vmkd.h
vmkernel_kvm_libvmkd_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS)

# The daemon and its control-socket client (vmkdctl: operators and tests).
sbin_PROGRAMS += vmkernel-kvm/vmkd
vmkernel_kvm_vmkd_SOURCES = vmkernel-kvm/vmkd.c vmkernel-kvm/vmkd_ctl.c vmkernel-kvm/vmkd_ctl.h \
	vmkernel-kvm/vmkd_net.c vmkernel-kvm/vmkd_net.h vmkernel-kvm/vmkd_vswitch_ctl.c \
	vmkernel-kvm/vmkd_pool.c vmkernel-kvm/vmkd_port.c
vmkernel_kvm_vmkd_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
vmkernel_kvm_vmkd_LDADD = vmkernel-kvm/libvmkd.a vmkernel-kvm/libkvcvswitch.a lib/libkvcrpc.a proto/libkvcproto.a \
	lib/libkvcutil.a $(KVC_RPC_LIBS)
# vmkd's live vSwitch configuration (vmkd_net.c, no daemon).
check_PROGRAMS += tests/unit/test_vmkd_vswitch
TESTS += tests/unit/test_vmkd_vswitch
tests_unit_test_vmkd_vswitch_SOURCES = tests/unit/test_vmkd_vswitch.c vmkernel-kvm/vmkd_net.c
tests_unit_test_vmkd_vswitch_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/vmkernel-kvm
tests_unit_test_vmkd_vswitch_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmkd_vswitch_LDADD = vmkernel-kvm/libkvcvswitch.a lib/libkvcutil.a $(CMOCKA_LIBS)
noinst_PROGRAMS += vmkernel-kvm/vmkdctl
vmkernel_kvm_vmkdctl_SOURCES = vmkernel-kvm/vmkdctl.c
vmkernel_kvm_vmkdctl_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(GNUTLS_CFLAGS) $(PROTOBUF_C_CFLAGS)
vmkernel_kvm_vmkdctl_LDADD = lib/libkvcrpc.a proto/libkvcproto.a lib/libkvcutil.a $(KVC_RPC_LIBS)

# A vmx test double (tests only): obeys vmx's process contract, runs threads
# instead of a guest.
check_PROGRAMS += tests/integration/test_vmkd_fake_vmx
tests_integration_test_vmkd_fake_vmx_SOURCES = tests/integration/test_vmkd_fake_vmx.c

# vmkd's supervision core driven directly (no RPC): start/stop/reap, crash
# reports, admission control, shares, limits, re-adoption.
check_PROGRAMS += tests/unit/test_vmkd_core
TESTS += tests/unit/test_vmkd_core
tests_unit_test_vmkd_core_SOURCES = tests/unit/test_vmkd_core.c
tests_unit_test_vmkd_core_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(LIBEVENT_CFLAGS)
tests_unit_test_vmkd_core_LDADD = vmkernel-kvm/libvmkd.a lib/libkvcutil.a $(LIBEVENT_LIBS) $(CMOCKA_LIBS)

# vmkd as a daemon through its control socket (pytest; needs root).
TESTS += tests/integration/test_vmkd.py tests/integration/test_vmkd_migrate.py
EXTRA_DIST += tests/integration/test_vmkd.py tests/integration/test_vmkd_migrate.py
TESTS += tests/integration/test_vmkd_pools.py
EXTRA_DIST += tests/integration/test_vmkd_pools.py

# BENCH vms-per-host: idle VMs at once through vmkd, QEMU beside it.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmkd_vms.py
EXTRA_DIST += tests/bench/bench_vmkd_vms.py
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_rp_shares.py
EXTRA_DIST += tests/bench/bench_rp_shares.py

# BENCH vm-power-on, vm-power-on-vmkd, vmx-rss-overhead: vmx beside QEMU.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmx.py
EXTRA_DIST += tests/bench/bench_vmx.py

# ---- vmx: the per-VM process, its devices and the test guest (docs/vmx.md) ----
noinst_LIBRARIES += vmkernel-kvm/libvmx.a
vmkernel_kvm_libvmx_a_SOURCES = \
	vmkernel-kvm/vmx.h vmkernel-kvm/vmx_state.h vmkernel-kvm/vmx_state.c \
	vmkernel-kvm/memory.h vmkernel-kvm/memory.c \
	vmkernel-kvm/boot.h vmkernel-kvm/boot.c \
	vmkernel-kvm/kvm.c vmkernel-kvm/vmx_vm.c vmkernel-kvm/vmx_config.c \
	vmkernel-kvm/snapshot.c vmkernel-kvm/vmx_seccomp.c \
	vmkernel-kvm/vmx_ctl.h vmkernel-kvm/vmx_ctl.c vmkernel-kvm/vmx_ctl_server.c \
	vmkernel-kvm/devices/device.h vmkernel-kvm/devices/bus.c \
	vmkernel-kvm/devices/serial.h vmkernel-kvm/devices/serial.c \
	vmkernel-kvm/devices/virtq.h vmkernel-kvm/devices/virtq.c \
	vmkernel-kvm/devices/virtio_mmio.h vmkernel-kvm/devices/virtio_mmio.c \
	vmkernel-kvm/devices/tools.h vmkernel-kvm/devices/tools.c \
	vmkernel-kvm/devices/balloon.h vmkernel-kvm/devices/balloon.c \
	vmkernel-kvm/devices/virtio_net.h vmkernel-kvm/devices/virtio_net.c vmkernel-kvm/vmx_net_ctl.c \
	vmkernel-kvm/disk.h vmkernel-kvm/disk.c vmkernel-kvm/vmx_disk_ctl.c \
	vmkernel-kvm/disk_mirror.h vmkernel-kvm/disk_mirror.c vmkernel-kvm/vmx_fs.h vmkernel-kvm/vmx_fs.c \
	vmkernel-kvm/devices/virtio_blk.h vmkernel-kvm/devices/virtio_blk.c \
	vmkernel-kvm/guest/kvc_guest_abi.h
vmkernel_kvm_libvmx_a_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(PROTOBUF_C_CFLAGS) $(SECCOMP_CFLAGS)
VMX_LIBS = vmkernel-kvm/libvmx.a vmkernel-kvm/libkvcvswitch.a proto/libkvcproto.a lib/libkvcrpc.a lib/libkvcutil.a \
	$(LIBEVENT_LIBS) $(PROTOBUF_C_LIBS) $(SECCOMP_LIBS)

vmxlibexecdir = $(libexecdir)/kvcenter
vmxlibexec_PROGRAMS = vmkernel-kvm/vmx vmkernel-kvm/vmxctl
vmkernel_kvm_vmx_SOURCES = vmkernel-kvm/vmx_main.c
vmkernel_kvm_vmx_CFLAGS = $(AM_CFLAGS) $(LIBEVENT_CFLAGS) $(PROTOBUF_C_CFLAGS)
vmkernel_kvm_vmx_LDADD = $(VMX_LIBS)
vmkernel_kvm_vmxctl_SOURCES = vmkernel-kvm/vmxctl.c
vmkernel_kvm_vmxctl_CFLAGS = $(AM_CFLAGS) $(PROTOBUF_C_CFLAGS)
vmkernel_kvm_vmxctl_LDADD = $(VMX_LIBS)

# The test guest: freestanding, built with the system gcc and its own flags
# (never the sanitizers), so the same image boots in vmx and in QEMU (PVH).
VMX_GUEST_CC = gcc
VMX_GUEST_CFLAGS = -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-builtin \
	-nostdlib -mgeneral-regs-only -march=x86-64 -mtune=generic -mno-red-zone \
	-fno-pic -fno-pie -no-pie -fno-stack-protector -fno-asynchronous-unwind-tables \
	-fcf-protection=none -mcmodel=small -static -Wl,--build-id=none \
	-Wl,-z,noexecstack -Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments
VMX_GUEST_SRC = vmkernel-kvm/guest/start.S vmkernel-kvm/guest/kernel.c \
	vmkernel-kvm/guest/lib.c vmkernel-kvm/guest/user.c vmkernel-kvm/guest/net.c \
	vmkernel-kvm/guest/blk.c
VMX_GUEST_DEPS = $(VMX_GUEST_SRC) vmkernel-kvm/guest/guest.ld vmkernel-kvm/guest/guest.h \
	vmkernel-kvm/guest/kvc_guest_abi.h
vmxguestdir = $(pkgdatadir)/guest
vmxguest_DATA = vmkernel-kvm/guest/kvc-guest.elf
CLEANFILES += vmkernel-kvm/guest/kvc-guest.elf
EXTRA_DIST += $(VMX_GUEST_DEPS)
vmkernel-kvm/guest/kvc-guest.elf: $(VMX_GUEST_DEPS:%=$(srcdir)/%)
	@$(MKDIR_P) vmkernel-kvm/guest
	$(AM_V_GEN)$(VMX_GUEST_CC) $(VMX_GUEST_CFLAGS) -I$(srcdir) \
	  -T $(srcdir)/vmkernel-kvm/guest/guest.ld -o $@ $(VMX_GUEST_SRC:%=$(srcdir)/%)

# vmx unit tests: devices and virtqueues on a fake guest RAM; boot structures
# and the config file.
check_PROGRAMS += tests/unit/test_vmx_virtq tests/unit/test_vmx_boot
TESTS += tests/unit/test_vmx_virtq tests/unit/test_vmx_boot
tests_unit_test_vmx_virtq_SOURCES = tests/unit/test_vmx_virtq.c
tests_unit_test_vmx_virtq_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmx_virtq_LDADD = $(VMX_LIBS) $(CMOCKA_LIBS)
tests_unit_test_vmx_boot_SOURCES = tests/unit/test_vmx_boot.c
tests_unit_test_vmx_boot_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmx_boot_LDADD = $(VMX_LIBS) $(CMOCKA_LIBS)

# virtio-blk and the disk's delta layers (hostile requests, snapshots,
# consolidation, corrupt metadata).
check_PROGRAMS += tests/unit/test_vmx_blk
TESTS += tests/unit/test_vmx_blk
tests_unit_test_vmx_blk_SOURCES = tests/unit/test_vmx_blk.c
tests_unit_test_vmx_blk_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmx_blk_LDADD = $(VMX_LIBS) $(CMOCKA_LIBS)
# Guest disk data across power cycles, snapshot/restore, consolidation (pytest).
TESTS += tests/integration/test_vmx_blk.py
EXTRA_DIST += tests/integration/test_vmx_blk.py
# Storage migration: the disk moves under a writing guest (disk_mirror.c).
TESTS += tests/integration/test_vmx_disk_move.py
EXTRA_DIST += tests/integration/test_vmx_disk_move.py
# BENCH disk-move-mbps: vmx's disk move beside cp --sparse + fsync.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_disk_move.py
EXTRA_DIST += tests/bench/bench_disk_move.py
# BENCH vmx-blk-seq-write, vmx-blk-seq-read: guest disk MB/s beside host dd.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmx_blk.py
EXTRA_DIST += tests/bench/bench_vmx_blk.py

# vmx integration: the real test guest under /dev/kvm (skips without it).
TESTS += tests/integration/test_vmx.py
EXTRA_DIST += tests/integration/test_vmx.py

# The virtqueue fuzz target; its corpus runs in `make check` through a plain
# main() (tests/fuzz/fuzz_virtq_corpus.c), libFuzzer runs it in `make fuzz`.
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_virtq
check_PROGRAMS += tests/fuzz/fuzz_virtq_corpus
TESTS += tests/fuzz/fuzz_virtq_corpus
tests_fuzz_fuzz_virtq_corpus_SOURCES = tests/fuzz/fuzz_virtq.c tests/fuzz/fuzz_virtq_corpus.c
tests_fuzz_fuzz_virtq_corpus_LDADD = $(VMX_LIBS)
EXTRA_DIST += tests/fuzz/corpus/virtq

# ---- VM networking: virtio-net in vmx, its port on vmkd's vSwitch, the guest's
# network workloads (docs/vmx.md "Network", docs/vswitch.md) ----
TESTS += tests/integration/test_vmx_net.py
EXTRA_DIST += tests/integration/test_vmx_net.py
check_PROGRAMS += tests/unit/test_vmx_net
TESTS += tests/unit/test_vmx_net
tests_unit_test_vmx_net_SOURCES = tests/unit/test_vmx_net.c
tests_unit_test_vmx_net_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vmx_net_LDADD = $(VMX_LIBS) $(CMOCKA_LIBS)
# Fuzz target virtio_net (tests/fuzz/local.mk's convention): a hostile driver
# and a hostile switch ring; `make check` replays its corpus.
KVC_FUZZ_TARGETS += tests/fuzz/fuzz_virtio_net
KVC_FUZZ_NET_SRCS = vmkernel-kvm/devices/virtio_net.c vmkernel-kvm/devices/virtio_mmio.c \
	vmkernel-kvm/devices/virtq.c vmkernel-kvm/memory.c vmkernel-kvm/vmx_state.c \
	vmkernel-kvm/devices/bus.c vmkernel-kvm/vswitch/ring.c lib/log.c
tests/fuzz/fuzz_virtio_net: $(srcdir)/tests/fuzz/fuzz_virtio_net.c $(KVC_FUZZ_NET_SRCS:%=$(srcdir)/%) \
		$(BUILT_SOURCES)
	@$(MKDIR_P) tests/fuzz
	$(AM_V_CCLD)$(KVC_FUZZ_CC) -o $@ $(srcdir)/tests/fuzz/fuzz_virtio_net.c \
	  $(KVC_FUZZ_NET_SRCS:%=$(srcdir)/%) -lpthread
check_PROGRAMS += tests/fuzz/replay_virtio_net
TESTS += tests/fuzz/replay_virtio_net
tests_fuzz_replay_virtio_net_SOURCES = tests/fuzz/fuzz_virtio_net.c tests/fuzz/replay-main.c
tests_fuzz_replay_virtio_net_CPPFLAGS = $(AM_CPPFLAGS) -DKVC_FUZZ_NAME='"virtio_net"'
tests_fuzz_replay_virtio_net_LDADD = $(VMX_LIBS)
EXTRA_DIST += tests/fuzz/corpus/virtio_net tests/fuzz/make-virtio-net-corpus.py
# BENCH net-udp-echo-rtt: guest-to-guest UDP echo, QEMU microvm + Linux bridge beside it.
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmx_net.py
EXTRA_DIST += tests/bench/bench_vmx_net.py

# ---- vmx live migration (vmkernel-kvm/migrate.[ch], docs/vmx.md "Live migration") ----
vmkernel_kvm_libvmx_a_SOURCES += vmkernel-kvm/migrate.h vmkernel-kvm/migrate.c vmkernel-kvm/migrate_disk.h vmkernel-kvm/migrate_disk.c
TESTS += tests/integration/test_vmx_migrate_disk.py
EXTRA_DIST += tests/integration/test_vmx_migrate_disk.py
vmkernel_kvm_libvmx_a_CFLAGS += $(GNUTLS_CFLAGS)
VMX_LIBS += $(GNUTLS_LIBS)
TESTS += tests/integration/test_vmx_migrate.py
EXTRA_DIST += tests/integration/test_vmx_migrate.py
# BENCH migration-downtime-idle, migration-downtime-dirty, migration-total-vs-floor
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmx_migrate.py
EXTRA_DIST += tests/bench/bench_vmx_migrate.py
KVC_BENCH_SCRIPT_LIST += tests/bench/bench_vmx_migrate_disk.py
EXTRA_DIST += tests/bench/bench_vmx_migrate_disk.py
