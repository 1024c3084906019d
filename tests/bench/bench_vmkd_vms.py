"""BENCH vms-per-host: idle VMs running at once on this machine.

Ours: vmkd powers on idle test-guest VMs (16 MiB, 1 vCPU) one after another
through its control socket; a VM counts once its guest printed
"KVC-GUEST: ready" on its serial console and it is still running after all
are up.  Peer: QEMU (microvm, -accel kvm) booting the same guest image with
the same memory, started the same way (one process each, counted the same
way).  Both stop at a cap (KVC_BENCH_VMS_MAX, default 64) so that a shared
2-core build machine stays usable, or earlier if a start fails or
MemAvailable drops below 2 GiB.  Alongside the count, the line gives each
side's memory (RSS) and idle CPU per VM and what those project for the whole
machine, since at the cap the counts alone are equal.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("KVC_BUILDDIR", SRCDIR)
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

NAME = "vms-per-host"
CAP = int(os.environ.get("KVC_BENCH_VMS_MAX", "64"))
RUNS = int(os.environ.get("KVC_BENCH_RUNS", "3"))
MEM_MB = 16
SETTLE_S = 2.0
QEMU = shutil.which("qemu-system-x86_64")
HZ = os.sysconf("SC_CLK_TCK")


def b(rel):
    return os.path.join(BUILDDIR, rel)


VMKD, VMKDCTL = b("vmkernel-kvm/vmkd"), b("vmkernel-kvm/vmkdctl")
VMX, GUEST = b("vmkernel-kvm/vmx"), b("vmkernel-kvm/guest/kvc-guest.elf")


def skip(reason):
    print("BENCH-SKIP %s %s" % (NAME, reason))
    sys.exit(0)


def mem_available_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError):
        return 0


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_file(path, text, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, "rb") as f:
                if text in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def measure(pids):
    """(alive count, RSS kB per VM, idle CPU % of one CPU per VM) over SETTLE_S."""
    t0 = {p: cpu_ticks(p) for p in pids}
    time.sleep(SETTLE_S)
    live = [p for p in pids if alive(p)]
    if not live:
        return 0, 0, 0.0
    rss = sum(rss_kb(p) for p in live) / len(live)
    cpu = sum(cpu_ticks(p) - t0[p] for p in live) / HZ / SETTLE_S * 100 / len(live)
    return len(live), rss, cpu


def run_ours(tmp):
    state = os.path.join(tmp, "state")
    sock = os.path.join(tmp, "vmkd.sock")
    conf = os.path.join(tmp, "vmkd.conf")
    with open(conf, "w") as f:
        f.write('[vmkd]\nstate-dir = "%s"\nsocket = "%s"\nvmx = "%s"\nstop-vms-on-exit = true\n'
                'log-level = warn\n[cgroup]\nparent = "kvcenter-bench-%d"\n'
                'remove-parent-on-exit = true\n' % (state, sock, VMX, os.getpid()))
    log = open(os.path.join(tmp, "vmkd.log"), "wb")
    d = subprocess.Popen([VMKD, "-f", conf], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    pids = []
    try:
        end = time.monotonic() + 10
        while not os.path.exists(sock):
            if d.poll() is not None or time.monotonic() > end:
                with open(os.path.join(tmp, "vmkd.log")) as f:
                    txt = f.read()
                if "not implemented" in txt.lower():
                    skip("the RPC transport (lib/rpc.c) is not implemented in this build")
                raise RuntimeError("vmkd did not start: " + txt[-500:])
            time.sleep(0.01)
        t_start = time.monotonic()
        for i in range(CAP):
            if mem_available_kb() < 2 * 1024 * 1024:
                break
            serial = os.path.join(tmp, "vm%d.serial" % i)
            vmconf = os.path.join(tmp, "vm%d.vmx" % i)
            with open(vmconf, "w") as f:
                f.write('name = "vm%d"\nmemory_mb = %d\nvcpus = 1\nguest.image = "%s"\n'
                        'guest.workload = idle\nserial.log = "%s"\n' % (i, MEM_MB, GUEST, serial))
            p = subprocess.run([VMKDCTL, "-s", sock, "power-on", "vm%d" % i, vmconf],
                               capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                print("# ours: VM %d did not start: %s" % (i, p.stderr.strip()), file=sys.stderr)
                break
            pid = int(re.search(r"pid=(\d+)", p.stdout).group(1))
            pids.append(pid)
            if not wait_file(serial, b"KVC-GUEST: ready", 30):
                print("# ours: VM %d: guest not ready" % i, file=sys.stderr)
                break
        t_up = time.monotonic() - t_start
        n, rss, cpu = measure(pids)
        return n, rss, cpu, t_up
    finally:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(60)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def run_qemu(tmp):
    procs = []
    try:
        t_start = time.monotonic()
        for i in range(CAP):
            if mem_available_kb() < 2 * 1024 * 1024:
                break
            serial = os.path.join(tmp, "q%d.serial" % i)
            p = subprocess.Popen([QEMU, "-M", "microvm,x-option-roms=off,rtc=off", "-accel", "kvm",
                                  "-cpu", "host,-arch-capabilities", "-m", str(MEM_MB),
                                  "-nodefaults", "-no-user-config", "-display", "none",
                                  "-serial", "file:" + serial, "-kernel", GUEST,
                                  "-append", "workload=idle", "-device", "isa-debug-exit"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            procs.append(p)
            if not wait_file(serial, b"KVC-GUEST: ready", 30) or p.poll() is not None:
                print("# qemu: VM %d did not start" % i, file=sys.stderr)
                break
        t_up = time.monotonic() - t_start
        n, rss, cpu = measure([p.pid for p in procs])
        return n, rss, cpu, t_up
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def main():
    if os.geteuid() != 0:
        skip("needs root (vmkd creates cgroups)")
    for path in (VMKD, VMKDCTL, VMX, GUEST):
        if not os.path.exists(path):
            skip("%s is not built in this tree" % os.path.relpath(path, BUILDDIR))
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip("/dev/kvm not usable here: %s" % e.strerror)
    if not QEMU:
        skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    ours, qemu = [], []
    for _ in range(RUNS):
        tmp = tempfile.mkdtemp(prefix="bench_vmkd-")
        try:
            ours.append(run_ours(tmp))
            qemu.append(run_qemu(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    on = sorted(r[0] for r in ours)
    qn = sorted(r[0] for r in qemu)
    med = lambda xs: sorted(xs)[len(xs) // 2]
    o, q = med(on), med(qn)
    o_rss, q_rss = med([r[1] for r in ours]), med([r[1] for r in qemu])
    o_cpu, q_cpu = med([r[2] for r in ours]), med([r[2] for r in qemu])
    o_up, q_up = med([r[3] for r in ours]), med([r[3] for r in qemu])
    avail_kb = mem_available_kb()
    ncpu = os.cpu_count() or 1

    def projected(rss, cpu):
        by_mem = avail_kb / rss if rss else 0
        by_cpu = ncpu * 100 / cpu if cpu else by_mem
        return int(min(by_mem, by_cpu))
    print("BENCH %s ours=%d qemu=%d unit=vms ratio=%.2f median=%d spread=%d runs=%d cap=%d "
          "mem_mb=%d ours_rss_kb_per_vm=%d qemu_rss_kb_per_vm=%d "
          "ours_idle_cpu_pct_per_vm=%.2f qemu_idle_cpu_pct_per_vm=%.2f "
          "ours_startup_s=%.1f qemu_startup_s=%.1f ours_projected=%d qemu_projected=%d"
          % (NAME, o, q, o / q if q else 0.0, o, on[-1] - on[0], RUNS, CAP, MEM_MB, o_rss, q_rss,
             o_cpu, q_cpu, o_up, q_up, projected(o_rss, o_cpu), projected(q_rss, q_cpu)))


if __name__ == "__main__":
    main()
