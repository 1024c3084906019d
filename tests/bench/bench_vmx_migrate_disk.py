"""BENCH migration-with-disk-total, migration-with-disk-downtime.

Live migration that carries the disk (no shared storage) between two
processes on this machine over loopback TCP: an idle 64 MiB test guest whose
virtio-blk disk is a 64 MiB raw file full of random data; the destination
has an empty file of the same size.

- Ours: two vmx, the destination `--incoming tcp:127.0.0.1:0 --incoming-disk`,
  `vmxctl migrate ADDR disk downtime_ms=100 wait`.  Total: from the source's
  "VMX-MIGRATE start" to the destination's "VMX-MIGRATE running"; downtime:
  source vCPU stop to destination vCPU run (CLOCK_MONOTONIC, same host).
- Peer: QEMU (qemu-system-x86_64 -M microvm, the same kvc-guest.elf, the same
  file as a virtio-blk-device drive) with block migration: QMP `migrate`
  with `blk: true` (the whole disk copied with the RAM), downtime-limit 100,
  no bandwidth cap; its total-time and downtime from query-migrate.  Both
  count in QEMU's favour: its source reports them when it has sent
  everything, before its destination has loaded the last of it (the bench
  waits for the destination to run before it compares the disk); ours run
  until the destination's vCPUs run.  Both destinations' disks are compared
  with the source's data after each run.

Median of KVC_BENCH_RUNS (default 5) runs, ours and QEMU alternating, with
the spread (max - min)."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_vmx_migrate as bm  # noqa: E402

DISK_MB = 64
MEM_MB = 64
NAMES = ("migration-with-disk-total", "migration-with-disk-downtime")


def skip_all(reason):
    for n in NAMES:
        print("BENCH-SKIP %s %s" % (n, reason))
    sys.exit(0)


def random_disk(path, data):
    with open(path, "wb") as f:
        if data is None:
            f.truncate(DISK_MB << 20)       # holes only
        else:
            f.write(data)
        os.fsync(f.fileno())


def empty_disk(path):
    with open(path, "wb") as f:
        f.truncate(DISK_MB << 20)


def vm_dir(tmp, name):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    with open(os.path.join(d, "vm.conf"), "w") as f:
        f.write("name = t\nmemory_mb = %d\nvcpus = 1\nguest.image = %s\nguest.workload = idle\n"
                "serial.log = serial.log\ndisk.path = t.img\n" % (MEM_MB, bm.GUEST))
    return d


def ours_once(tmp, data):
    s, d = vm_dir(tmp, "src"), vm_dir(tmp, "dst")
    random_disk(os.path.join(s, "t.img"), data)
    empty_disk(os.path.join(d, "t.img"))
    slog, dlog = os.path.join(s, "log"), os.path.join(d, "log")
    src = bm.spawn([bm.VMX, "-c", os.path.join(s, "vm.conf"), "-s", os.path.join(s, "sock")], slog)
    dst = None
    try:
        bm.wait(lambda: "KVC-GUEST: ready" in bm.read(os.path.join(s, "serial.log")), 30, "our source guest")
        dst = bm.spawn([bm.VMX, "-c", os.path.join(d, "vm.conf"), "-s", os.path.join(d, "sock"),
                        "--incoming", "tcp:127.0.0.1:0", "--incoming-disk"], dlog)
        m = bm.wait(lambda: re.search(r"VMX-INCOMING pid=\d+ listen=(\S+)", bm.read(dlog)), 30, "our destination")
        p = subprocess.run([bm.VMXCTL, "-s", os.path.join(s, "sock"), "migrate", m.group(1), "disk",
                            "downtime_ms=100", "wait"], capture_output=True, text=True, timeout=300)
        st = dict(l.partition("=")[::2] for l in p.stdout.splitlines())
        if st.get("phase") != "MIGRATE_COMPLETED":
            raise RuntimeError("our migration failed: %s %s" % (st.get("error"), p.stderr))
        t_start = int(re.search(r"VMX-MIGRATE start to=\S+ mono_ns=(\d+)", bm.read(slog)).group(1))
        t_stop = int(bm.wait(lambda: re.search(r"vcpus-stopped mono_ns=(\d+)", bm.read(slog)), 10,
                             "stop line").group(1))
        t_run = int(bm.wait(lambda: re.search(r"VMX-MIGRATE running mono_ns=(\d+)", bm.read(dlog)), 10,
                            "run line").group(1))
        with open(os.path.join(d, "t.img"), "rb") as f:
            if f.read() != (data if data is not None else bytes(DISK_MB << 20)):
                raise RuntimeError("our destination's disk differs from the source's")
        return (t_run - t_start) / 1e6, (t_run - t_stop) / 1e6
    finally:
        bm.stop(src)
        if dst:
            bm.stop(dst)


def qemu_argv(disk, serial, qmp, incoming=None):
    a = bm.qemu_argv(MEM_MB, "workload=idle", serial, qmp, incoming)
    return a + ["-drive", "file=%s,if=none,id=d0,format=raw,cache=writeback" % disk,
                "-device", "virtio-blk-device,drive=d0"]


def qemu_once(tmp, data):
    port = bm.free_port()
    sd, dd = os.path.join(tmp, "qs.img"), os.path.join(tmp, "qd.img")
    random_disk(sd, data)
    empty_disk(dd)
    sser, dser = os.path.join(tmp, "qs.serial"), os.path.join(tmp, "qd.serial")
    sq, dq = os.path.join(tmp, "qs.qmp"), os.path.join(tmp, "qd.qmp")
    src = bm.spawn(qemu_argv(sd, sser, sq), os.path.join(tmp, "qs.log"))
    dst = bm.spawn(qemu_argv(dd, dser, dq, "tcp:127.0.0.1:%d" % port), os.path.join(tmp, "qd.log"))
    q = None
    try:
        bm.wait(lambda: "KVC-GUEST: ready" in bm.read(sser), 30, "QEMU source guest")
        bm.wait(lambda: bm.Qmp._connect(dq), 20, "QEMU destination")
        q = bm.Qmp(sq)
        q.cmd("migrate-set-parameters", **{"downtime-limit": 100, "max-bandwidth": 100 << 30})
        q.cmd("migrate", uri="tcp:127.0.0.1:%d" % port, blk=True)
        r = bm.wait(lambda: (lambda x: x if x.get("status") in ("completed", "failed") else None)(
            q.cmd("query-migrate")), 300, "QEMU migration")
        if r["status"] != "completed":
            raise RuntimeError("QEMU migration failed: %s" % r)
        q.close()
        q = None
        # QEMU's source reports "completed" before its destination has loaded
        # everything (and written the disk): wait until it runs, then let it
        # quit (its writes flushed) before the disk is compared
        qd = bm.Qmp(dq)
        bm.wait(lambda: qd.cmd("query-status").get("status") == "running", 60, "QEMU destination to run")
        qd.f.write('{"execute": "quit"}\n')
        qd.f.flush()
        bm.wait(lambda: dst.poll() is not None, 20, "QEMU destination to quit")
        qd.close()
        with open(dd, "rb") as f:
            got = f.read()
        if got != data:
            same = sum(1 for i in range(0, len(data), 4096) if got[i:i + 4096] == data[i:i + 4096])
            raise RuntimeError("QEMU's destination disk differs from the source's (%d of %d blocks "
                               "equal)" % (same, len(data) // 4096))
        return float(r["total-time"]), float(r["downtime"])
    finally:
        if q:
            q.close()
        bm.stop(src)
        bm.stop(dst)


def qemu_retry(tmp, data):
    """QEMU's destination may open its port after its QMP socket: a refused
    connection is tried again (a new pair of processes), up to 3 times."""
    for attempt in range(3):
        try:
            return qemu_once(tmp, data)
        except RuntimeError as e:
            if "Connection refused" not in str(e) or attempt == 2:
                raise
            for f in os.listdir(tmp):
                if f.startswith("q"):
                    os.unlink(os.path.join(tmp, f))


def main():
    for path in (bm.VMX, bm.VMXCTL, bm.GUEST):
        if not os.path.exists(path):
            skip_all("%s is not built in this tree" % os.path.relpath(path, bm.BUILDDIR))
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip_all("/dev/kvm not usable here: %s" % e.strerror)
    if not bm.QEMU:
        skip_all("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    data = os.urandom(DISK_MB << 20)
    o_tot, o_dt, q_tot, q_dt = [], [], [], []
    try:
        for _ in range(bm.RUNS):
            tmp = tempfile.mkdtemp(prefix="bench_xmig-")
            try:
                t, d = ours_once(tmp, data)
                o_tot.append(t)
                o_dt.append(d)
                t, d = qemu_retry(tmp, data)
                q_tot.append(t)
                q_dt.append(d)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except RuntimeError as e:
        skip_all(str(e))
    extra = " mem_mb=%d disk_mb=%d" % (MEM_MB, DISK_MB)
    bm.report("migration-with-disk-total", o_tot, "qemu", q_tot, "ms",
              extra + " qemu_spread=%.2f" % (max(q_tot) - min(q_tot)))
    bm.report("migration-with-disk-downtime", o_dt, "qemu", q_dt, "ms",
              extra + " qemu_spread=%.2f" % (max(q_dt) - min(q_dt)))


if __name__ == "__main__":
    main()
