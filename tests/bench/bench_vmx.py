"""vmx beside QEMU: BENCH vm-power-on and vmx-rss-overhead.

vm-power-on: from the request to the guest's first serial line
"KVC-GUEST: ready", in ms (lower is better).
  - ours: `vmx -c CONF -s SOCK` spawned directly, its serial console on
    stdout (serial.log = /dev/stdout): process start to the marker on the
    pipe.  A second line, vm-power-on-vmkd, gives the same through vmkd's
    PowerOn (vmkdctl power-on: RPC, cgroup, fork/exec, VMX-READY), marker
    seen in the serial log file (root only).
  - peer: QEMU 7.2 `qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=off
    -accel kvm -cpu host,-arch-capabilities -m 64 -nodefaults -no-user-config
    -nographic -serial stdio -kernel kvc-guest.elf -append workload=idle`,
    process start to the marker on its stdout.
vmx-rss-overhead: once the guest is up and idle (0.5 s after the marker),
the process's RSS (smaps_rollup) minus the resident pages of the guest RAM
mapping (the memfd for vmx, QEMU's anonymous RAM block: the 64 MiB mapping
in smaps), in KiB (lower is better).

Same guest image, same 64 MiB, one vCPU, the idle workload; KVC_BENCH_RUNS
runs (default 7) after one warm-up each, ours and QEMU alternating.
"""
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("KVC_BUILDDIR", SRCDIR)
RUNS = max(5, int(os.environ.get("KVC_BENCH_RUNS", "7")))
MEM_MB = 64
MARK = b"KVC-GUEST: ready"
QEMU = shutil.which("qemu-system-x86_64")


def b(rel):
    return os.path.join(BUILDDIR, rel)


VMX, GUEST = b("vmkernel-kvm/vmx"), b("vmkernel-kvm/guest/kvc-guest.elf")
VMKD, VMKDCTL = b("vmkernel-kvm/vmkd"), b("vmkernel-kvm/vmkdctl")
NAMES = ("vm-power-on", "vmx-rss-overhead")


def skip_all(reason):
    for n in NAMES:
        print("BENCH-SKIP %s %s" % (n, reason))
    sys.exit(0)


def wait_marker(p, deadline_s=30.0):
    """Read P's stdout until MARK; the time it arrived (monotonic), or None."""
    buf = b""
    fd = p.stdout.fileno()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            if p.poll() is not None:
                return None
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buf += chunk
        if MARK in buf:
            return time.monotonic()
    return None


def guest_ram_rss_kb(pid):
    """Rss of the guest RAM mapping: the one mapping of MEM_MB (up to 4 MiB
    more for alignment), from /proc/PID/smaps."""
    best = None
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                size = int(m.group(2), 16) - int(m.group(1), 16)
                cur = [size, line.strip(), 0]
                if MEM_MB << 20 <= size <= (MEM_MB + 4) << 20:
                    if best is None or cur[2] >= best[2]:
                        best = cur
                continue
            if cur is not None and line.startswith("Rss:"):
                cur[2] = int(line.split()[1])
    return (best[2], best[1]) if best else (0, "none")


def rss_total_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Rss:"):
                return int(line.split()[1])
    return 0


def overhead_kb(pid):
    ram, what = guest_ram_rss_kb(pid)
    return rss_total_kb(pid) - ram, ram, what


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def run_ours(tmp, i):
    conf = os.path.join(tmp, "vm%d.conf" % i)
    with open(conf, "w") as f:
        f.write('name = bench\nmemory_mb = %d\nvcpus = 1\nguest.image = "%s"\n'
                'guest.workload = idle\nserial.log = "/dev/stdout"\n' % (MEM_MB, GUEST))
    argv = [VMX, "-c", conf, "-s", os.path.join(tmp, "vmx%d.sock" % i),
            "-l", os.path.join(tmp, "vmx%d.log" % i)]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    t1 = wait_marker(p)
    try:
        if t1 is None:
            raise RuntimeError("vmx: no guest marker; log:\n" + open(argv[-1]).read()[-2000:])
        time.sleep(0.5)
        ov = overhead_kb(p.pid)
    finally:
        stop(p)
    return (t1 - t0) * 1000.0, ov


def run_qemu(tmp):
    argv = [QEMU, "-M", "microvm,x-option-roms=off,rtc=off", "-accel", "kvm",
            "-cpu", "host,-arch-capabilities", "-m", str(MEM_MB), "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-kernel", GUEST,
            "-append", "workload=idle"]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    t1 = wait_marker(p)
    try:
        if t1 is None:
            raise RuntimeError("qemu: no guest marker")
        time.sleep(0.5)
        ov = overhead_kb(p.pid)
    finally:
        stop(p, signal.SIGKILL)
    return (t1 - t0) * 1000.0, ov


def run_vmkd(tmp, n):
    """vm-power-on through vmkd: vmkdctl power-on -> marker in the serial log."""
    conf = os.path.join(tmp, "vmkd.conf")
    sock = os.path.join(tmp, "vmkd.sock")
    with open(conf, "w") as f:
        f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\nstop-vms-on-exit = true\n'
                '[cgroup]\nparent = "kvcenter-bench-%d"\nremove-parent-on-exit = true\n'
                % (os.path.join(tmp, "vmkd-state"), sock, VMX, os.getpid()))
    log = open(os.path.join(tmp, "vmkd.log"), "wb")
    d = subprocess.Popen([VMKD, "-f", conf], stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    out = []
    try:
        end = time.monotonic() + 15
        while not os.path.exists(sock):
            if time.monotonic() > end or d.poll() is not None:
                raise RuntimeError("vmkd did not start")
            time.sleep(0.01)
        for i in range(n + 1):
            vdir = os.path.join(tmp, "k%d" % i)
            os.makedirs(vdir)
            serial = os.path.join(vdir, "serial.log")
            vconf = os.path.join(vdir, "k.conf")
            with open(vconf, "w") as f:
                f.write('name = k%d\nmemory_mb = %d\nguest.image = "%s"\nserial.log = serial.log\n'
                        % (i, MEM_MB, GUEST))
            t0 = time.monotonic()
            subprocess.run([VMKDCTL, "-s", sock, "power-on", "k%d" % i, vconf],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                           timeout=60)
            while True:
                try:
                    with open(serial, "rb") as f:
                        if MARK in f.read():
                            break
                except FileNotFoundError:
                    pass
                if time.monotonic() - t0 > 30:
                    raise RuntimeError("vmkd: no guest marker")
                time.sleep(0.0005)
            t1 = time.monotonic()
            subprocess.run([VMKDCTL, "-s", sock, "power-off", "k%d" % i, "--force"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            if i:                   # the first one is the warm-up
                out.append((t1 - t0) * 1000.0)
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(15)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait(5)
        log.close()
    return out


def fmt(name, unit, ours, peer, extra=""):
    om, pm = statistics.median(ours), statistics.median(peer)
    print("BENCH %s ours=%.1f qemu=%.1f unit=%s ratio=%.3f median=%.1f spread=%.1f "
          "qemu-spread=%.1f runs=%d%s" % (name, om, pm, unit, om / pm if pm else 0.0, om,
                                           max(ours) - min(ours), max(peer) - min(peer),
                                           len(ours), extra))


def main():
    if not os.path.exists(VMX) or not os.path.exists(GUEST):
        skip_all("vmx or the test guest is not built")
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip_all("/dev/kvm not usable: %s" % e.strerror)
    if not QEMU:
        skip_all("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    ours_t, qemu_t, ours_o, qemu_o = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="kvc-bench-vmx-") as tmp:
        run_ours(tmp, 0)            # warm-up: page cache, KVM module state
        run_qemu(tmp)
        for i in range(RUNS):
            t, (ov, ram, what) = run_ours(tmp, i + 1)
            ours_t.append(t)
            ours_o.append(ov)
            t, (qov, qram, qwhat) = run_qemu(tmp)
            qemu_t.append(t)
            qemu_o.append(qov)
            if os.environ.get("KVC_BENCH_DEBUG"):
                print("# run %d: ours %.1f ms overhead %d KiB (ram %d KiB: %s); qemu %.1f ms "
                      "overhead %d KiB (ram %d KiB: %s)" % (i, ours_t[-1], ov, ram, what,
                                                            t, qov, qram, qwhat),
                      file=sys.stderr)
        fmt("vm-power-on", "ms", ours_t, qemu_t, " mem_mb=%d" % MEM_MB)
        fmt("vmx-rss-overhead", "KiB", ours_o, qemu_o, " mem_mb=%d" % MEM_MB)
        if os.geteuid() != 0 or not os.path.exists(VMKD):
            print("BENCH-SKIP vm-power-on-vmkd vmkd needs root (cgroups) and a built vmkd")
            return
        try:
            vk = run_vmkd(tmp, RUNS)
        except (RuntimeError, subprocess.SubprocessError) as e:
            print("BENCH-SKIP vm-power-on-vmkd %s" % e)
            return
        fmt("vm-power-on-vmkd", "ms", vk, qemu_t, " mem_mb=%d path=vmkdctl-power-on" % MEM_MB)


if __name__ == "__main__":
    main()
