"""BENCH migration-downtime-idle, migration-downtime-dirty, migration-total-vs-floor.

Live migration of the test guest between two processes on this machine over
loopback TCP, ours (two vmx, vmxctl migrate) against QEMU (two
qemu-system-x86_64 -M microvm processes, -incoming tcp:, QMP migrate) booting
the very same kvc-guest.elf with the same RAM and workload.

- migration-downtime-idle: an idle 64 MiB guest.  Ours: from the source's
  "VMX-MIGRATE vcpus-stopped mono_ns=" to the destination's
  "VMX-MIGRATE running mono_ns=" (CLOCK_MONOTONIC, same host).  QEMU: the
  downtime query-migrate reports.  Both with a 100 ms downtime target and
  no bandwidth cap.
- migration-downtime-dirty: the guest dirties 50 MiB/s over a 64 MiB working
  set (128 MiB of RAM), the same for both.
- migration-total-vs-floor: a guest whose RAM holds non-zero data
  (workload=dirty dirty_mb=0 fills its working set once: 240 of 256 MiB),
  idle otherwise.  Ours: total migration time; the floor: guest RAM over
  the loopback TCP bandwidth measured in the same run (one stream, 1 MiB
  writes, like the migration's); ratio = ours / floor, target <= 1.3.  QEMU's
  total time for the same guest is printed beside it.

Each figure is the median of KVC_BENCH_RUNS (default 5) runs, with the
spread (max - min).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("KVC_BUILDDIR", SRCDIR)
RUNS = max(int(os.environ.get("KVC_BENCH_RUNS", "5")), 5)
QEMU = shutil.which("qemu-system-x86_64")


def b(rel):
    return os.path.join(BUILDDIR, rel)


VMX, VMXCTL, GUEST = b("vmkernel-kvm/vmx"), b("vmkernel-kvm/vmxctl"), b("vmkernel-kvm/guest/kvc-guest.elf")
NAMES = ("migration-downtime-idle", "migration-downtime-dirty", "migration-total-vs-floor")


def skip_all(reason):
    for n in NAMES:
        print("BENCH-SKIP %s %s" % (n, reason))
    sys.exit(0)


def wait(cond, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.005)
    raise RuntimeError("timed out waiting for " + what)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


# ---- loopback TCP bandwidth (the floor) ----

def loopback_bandwidth(total=512 << 20, chunk=1 << 20):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    got = [0]

    def sink():
        c, _ = ls.accept()
        buf = bytearray(chunk)
        while True:
            n = c.recv_into(buf)
            if not n:
                break
            got[0] += n
        c.close()
    t = threading.Thread(target=sink)
    t.start()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    data = os.urandom(chunk)
    t0 = time.monotonic()
    sent = 0
    while sent < total:
        s.sendall(data)
        sent += chunk
    s.shutdown(socket.SHUT_WR)
    t.join()
    dt = time.monotonic() - t0
    s.close()
    ls.close()
    return got[0] / dt


# ---- ours ----

def vm_dir(tmp, name, mem_mb, workload, dirty_mb, ws_mb):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    with open(os.path.join(d, "vm.conf"), "w") as f:
        f.write("name = %s\nmemory_mb = %d\nvcpus = 1\nguest.image = %s\nguest.workload = %s\n"
                "guest.dirty_mb_per_s = %d\nguest.working_set_mb = %d\nserial.log = serial.log\n"
                % (name, mem_mb, GUEST, workload, dirty_mb, ws_mb))
    return d


def spawn(argv, log):
    return subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def stop(p):
    if p.poll() is None:
        p.kill()
    p.wait()


def ours_once(tmp, mem_mb, workload, dirty_mb, ws_mb, settle_s):
    s = vm_dir(tmp, "src", mem_mb, workload, dirty_mb, ws_mb)
    d = vm_dir(tmp, "dst", mem_mb, workload, dirty_mb, ws_mb)
    slog, dlog = os.path.join(s, "log"), os.path.join(d, "log")
    src = spawn([VMX, "-c", os.path.join(s, "vm.conf"), "-s", os.path.join(s, "sock")], slog)
    dst = None
    try:
        wait(lambda: "KVC-GUEST: ready" in read(os.path.join(s, "serial.log")), 30, "our source guest")
        time.sleep(settle_s)      # let the workload fill / dirty its working set
        dst = spawn([VMX, "-c", os.path.join(d, "vm.conf"), "-s", os.path.join(d, "sock"),
                     "--incoming", "tcp:127.0.0.1:0"], dlog)
        m = wait(lambda: re.search(r"VMX-INCOMING pid=\d+ listen=(\S+)", read(dlog)), 30, "our destination")
        p = subprocess.run([VMXCTL, "-s", os.path.join(s, "sock"), "migrate", m.group(1), "downtime_ms=100",
                            "wait"], capture_output=True, text=True, timeout=300)
        st = dict(l.partition("=")[::2] for l in p.stdout.splitlines())
        if st.get("phase") != "MIGRATE_COMPLETED":
            raise RuntimeError("our migration failed: %s %s" % (st.get("error"), p.stderr))
        t_stop = int(wait(lambda: re.search(r"vcpus-stopped mono_ns=(\d+)", read(slog)), 10, "stop line").group(1))
        t_run = int(wait(lambda: re.search(r"VMX-MIGRATE running mono_ns=(\d+)", read(dlog)), 10, "run line").group(1))
        t_start = int(re.search(r"VMX-MIGRATE start to=\S+ mono_ns=(\d+)", read(slog)).group(1))
        # total: from the source starting to the guest running on the destination
        return (t_run - t_stop) / 1e6, (t_run - t_start) / 1e6, int(st["ram_bytes"])
    finally:
        stop(src)
        if dst:
            stop(dst)


# ---- QEMU ----

class Qmp:
    def __init__(self, path):
        self.s = wait(lambda: self._connect(path), 20, "QMP socket")
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    @staticmethod
    def _connect(path):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            return s
        except OSError:
            return None

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError("QMP %s: %s" % (name, r["error"]))

    def close(self):
        self.s.close()


def qemu_argv(mem_mb, append, serial, qmp, incoming=None):
    a = [QEMU, "-M", "microvm,x-option-roms=off,rtc=off", "-accel", "kvm", "-cpu", "host,-arch-capabilities",
         "-m", str(mem_mb), "-nodefaults", "-no-user-config", "-display", "none",
         "-serial", "file:" + serial, "-kernel", GUEST, "-append", append, "-device", "isa-debug-exit",
         "-qmp", "unix:%s,server=on,wait=off" % qmp]
    if incoming:
        a += ["-incoming", incoming]
    return a


def qemu_once(tmp, mem_mb, append, settle_s):
    port = free_port()
    sser, dser = os.path.join(tmp, "qs.serial"), os.path.join(tmp, "qd.serial")
    sq, dq = os.path.join(tmp, "qs.qmp"), os.path.join(tmp, "qd.qmp")
    src = spawn(qemu_argv(mem_mb, append, sser, sq), os.path.join(tmp, "qs.log"))
    dst = spawn(qemu_argv(mem_mb, append, dser, dq, "tcp:127.0.0.1:%d" % port), os.path.join(tmp, "qd.log"))
    q = None
    try:
        wait(lambda: "KVC-GUEST: ready" in read(sser), 30, "QEMU source guest")
        time.sleep(settle_s)
        wait(lambda: Qmp._connect(dq), 20, "QEMU destination")
        q = Qmp(sq)
        q.cmd("migrate-set-parameters", **{"downtime-limit": 100, "max-bandwidth": 100 << 30})
        q.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
        r = wait(lambda: (lambda x: x if x.get("status") in ("completed", "failed") else None)(
            q.cmd("query-migrate")), 300, "QEMU migration")
        if r["status"] != "completed":
            raise RuntimeError("QEMU migration failed: %s" % r)
        return float(r["downtime"]), float(r["total-time"])
    finally:
        if q:
            q.close()
        stop(src)
        stop(dst)


def report(name, ours, peer_name, peer, unit, extra=""):
    o, p = median(ours), median(peer)
    print("BENCH %s ours=%.2f %s=%.2f unit=%s ratio=%.2f median=%.2f spread=%.2f runs=%d%s"
          % (name, o, peer_name, p, unit, o / p if p else 0.0, o, max(ours) - min(ours), len(ours), extra))
    sys.stdout.flush()


def main():
    for path in (VMX, VMXCTL, GUEST):
        if not os.path.exists(path):
            skip_all("%s is not built in this tree" % os.path.relpath(path, BUILDDIR))
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip_all("/dev/kvm not usable here: %s" % e.strerror)
    if not QEMU:
        skip_all("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")

    cases = [
        ("migration-downtime-idle", 64, "idle", 16, 16, "workload=idle", 0.3),
        ("migration-downtime-dirty", 128, "dirty", 50, 64, "workload=dirty dirty_mb=50 ws_mb=64", 1.6),
    ]
    for name, mem, wl, dmb, ws, append, settle in cases:
        ours, qemu, o_tot, q_tot = [], [], [], []
        try:
            for _ in range(RUNS):
                tmp = tempfile.mkdtemp(prefix="bench_mig-")
                try:
                    dt, tot, _ = ours_once(tmp, mem, wl, dmb, ws, settle)
                    ours.append(dt)
                    o_tot.append(tot)
                    qd, qt = qemu_once(tmp, mem, append, settle)
                    qemu.append(qd)
                    q_tot.append(qt)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
        except RuntimeError as e:
            print("BENCH-SKIP %s %s" % (name, e))
            continue
        report(name, ours, "qemu", qemu, "ms",
               " mem_mb=%d qemu_spread=%.2f ours_total_ms=%.1f qemu_total_ms=%.1f"
               % (mem, max(qemu) - min(qemu), median(o_tot), median(q_tot)))

    # total vs floor: RAM full of data
    name, mem, ws = "migration-total-vs-floor", 256, 240
    ours, floor, qemu_t, bws = [], [], [], []
    try:
        for _ in range(RUNS):
            tmp = tempfile.mkdtemp(prefix="bench_mig-")
            try:
                bw = loopback_bandwidth()
                _, tot, ram = ours_once(tmp, mem, "dirty", 0, ws, 0.5)
                ours.append(tot)
                floor.append(ram / bw * 1000)
                bws.append(bw)
                _, qt = qemu_once(tmp, mem, "workload=dirty dirty_mb=0 ws_mb=%d" % ws, 1.0)
                qemu_t.append(qt)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    except RuntimeError as e:
        print("BENCH-SKIP %s %s" % (name, e))
        return
    report(name, ours, "floor", floor, "ms",
           " mem_mb=%d nonzero_mb=%d loopback_mb_per_s=%.0f qemu_total_ms=%.1f qemu_ratio_to_floor=%.2f"
           % (mem, ws, median(bws) / (1 << 20), median(qemu_t), median(qemu_t) / median(floor)))


if __name__ == "__main__":
    main()
