"""BENCH net-udp-echo-rtt: guest-to-guest UDP echo round trip.

Two test-guest VMs on one host: one runs the UDP echo server (port 7), the
other sends N echo requests one at a time (64-byte payload) and times each
round trip with the TSC inside the guest (guest/net.c, mode udping); the
guest prints min/p25/median/p75/max.

Ours: vmkd hosting the vSwitch, two vmx with virtio-net, their ports on one
port group (shared-memory rings, eventfd kicks).  Peer: two QEMU 7.2 microvm
processes booting the same guest image with virtio-net-device (virtio-mmio,
the same polled driver), their tap backends on a Linux bridge, in a network
namespace this benchmark creates (nothing leaves it).  vmkd puts each vmx in
a cgroup of its own (cpu.shares 1024), so each QEMU gets one too, under a
parent cgroup like vmkd's: on a loaded machine a VM's threads then compete
for one group's share on both sides.  Runs alternate ours and the peer; each
run boots fresh VMs.  ours=/qemu= are the medians of the
runs' median round trips, spread= (max - min of those) per side.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("KVC_BUILDDIR", SRCDIR)

NAME = "net-udp-echo-rtt"
RUNS = int(os.environ.get("KVC_BENCH_RUNS", "5"))
COUNT = int(os.environ.get("KVC_BENCH_NET_COUNT", "2000"))
SIZE = 64
QEMU = shutil.which("qemu-system-x86_64")
NS = "kvcbench-net-%d" % os.getpid()


def b(rel):
    return os.path.join(BUILDDIR, rel)


VMKD, VMKDCTL = b("vmkernel-kvm/vmkd"), b("vmkernel-kvm/vmkdctl")
VMX, GUEST = b("vmkernel-kvm/vmx"), b("vmkernel-kvm/guest/kvc-guest.elf")
DONE = re.compile(r"net udping done sent=(\d+) received=(\d+) min_us10=(\d+) p25_us10=(\d+) "
                  r"med_us10=(\d+) p75_us10=(\d+) max_us10=(\d+)")


def skip(reason):
    print("BENCH-SKIP %s %s" % (NAME, reason))
    sys.exit(0)


def wait_file(path, rx, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                m = rx.search(f.read().decode("ascii", "replace"))
            if m:
                return m
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


def result(m):
    if not m or int(m.group(2)) < int(m.group(1)) * 9 // 10:
        return None
    return [int(m.group(i)) / 10.0 for i in range(3, 8)]   # min p25 med p75 max (us)


class Ours:
    def __init__(self, tmp):
        self.tmp = tmp
        self.sock = os.path.join(tmp, "vmkd.sock")
        conf = os.path.join(tmp, "vmkd.conf")
        with open(conf, "w") as f:
            f.write('[vmkd]\nstate-dir = "%s/state"\nsocket = "%s"\nvmx = "%s"\n'
                    'stop-vms-on-exit = true\n[cgroup]\nparent = "kvcbench-net-%d"\n'
                    'remove-parent-on-exit = true\n[portgroup "Bench"]\nvlan = 0\n'
                    % (tmp, self.sock, VMX, os.getpid()))
        self.log = open(os.path.join(tmp, "vmkd.log"), "wb")
        self.p = subprocess.Popen([VMKD, "-f", conf], stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not os.path.exists(self.sock):
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vmkd did not start")
            time.sleep(0.02)
        self.seq = 0

    def ctl(self, *args):
        return subprocess.run([VMKDCTL, "-s", self.sock] + list(args), capture_output=True,
                              text=True, timeout=60)

    def vm(self, name, mac, text):
        conf = os.path.join(self.tmp, name + ".vmx")
        serial = os.path.join(self.tmp, name + ".serial")
        if os.path.exists(serial):
            os.unlink(serial)
        with open(conf, "w") as f:
            f.write('name = "%s"\nmemory_mb = 32\nguest.image = "%s"\nserial.log = "%s"\n'
                    'net.enabled = true\nnet.mac = "%s"\nnet.portgroup = "Bench"\n%s'
                    % (name, GUEST, serial, mac, text))
        r = self.ctl("power-on", name, conf, "--nic", "Bench,%s" % mac)
        if r.returncode != 0:
            raise RuntimeError("power-on %s: %s" % (name, r.stderr))
        return serial

    def run(self):
        self.seq += 1
        e, c = "echo%d" % self.seq, "cli%d" % self.seq
        es = self.vm(e, "00:50:56:00:aa:02", "guest.net_mode = echo\nguest.ip = 10.99.0.2\n")
        wait_file(es, re.compile(r"net up "), 20)
        cs = self.vm(c, "00:50:56:00:aa:01", "guest.net_mode = udping\nguest.ip = 10.99.0.1\n"
                     "guest.peer = 10.99.0.2\nguest.net_count = %d\nguest.net_size = %d\n"
                     % (COUNT, SIZE))
        m = wait_file(cs, DONE, 120)
        for vm in (c, e):
            self.ctl("power-off", vm, "--force")
        return result(m)

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.log.close()


CG_ROOT = "/sys/fs/cgroup/cpu"


class Qemu:
    def __init__(self, tmp):
        self.tmp = tmp
        # One cgroup per QEMU, as vmkd does for vmx (cgroup v1 cpu, or v2).
        self.cg = None
        for root in (CG_ROOT, "/sys/fs/cgroup"):
            if os.path.exists(os.path.join(root, "cgroup.procs")) and (
                    root == CG_ROOT or os.path.exists(os.path.join(root, "cgroup.controllers"))):
                self.cg = os.path.join(root, "kvcbench-qemu-%d" % os.getpid())
                break
        if self.cg:
            try:
                os.mkdir(self.cg)
            except OSError:
                self.cg = None
        cmds = ["ip netns add %s" % NS,
                "ip -n %s link set lo up" % NS,
                "ip -n %s link add br0 type bridge" % NS,
                "ip -n %s link set br0 up" % NS]
        for t in ("tap0", "tap1"):
            cmds += ["ip -n %s tuntap add dev %s mode tap" % (NS, t),
                     "ip -n %s link set %s master br0" % (NS, t),
                     "ip -n %s link set %s up" % (NS, t)]
        for c in cmds:
            subprocess.run(c.split(), check=True, capture_output=True)
        self.seq = 0

    def guest(self, tap, mac, append, serial):
        argv = ["ip", "netns", "exec", NS, QEMU, "-M", "microvm,x-option-roms=off,rtc=off",
                "-accel", "kvm", "-cpu", "host,-arch-capabilities", "-m", "32", "-nodefaults",
                "-no-user-config", "-nographic", "-serial", "file:" + serial, "-display", "none",
                "-kernel", GUEST, "-append", append, "-global", "virtio-mmio.force-legacy=false",
                "-netdev", "tap,id=n0,ifname=%s,script=no,downscript=no" % tap,
                "-device", "virtio-net-device,netdev=n0,mac=%s" % mac, "-device", "isa-debug-exit"]
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        if self.cg:
            d = os.path.join(self.cg, "vm%d" % p.pid)
            try:
                os.mkdir(d)
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write("%d\n" % p.pid)   # moves every thread it has so far
            except OSError:
                pass
        return p

    def run(self):
        self.seq += 1
        es = os.path.join(self.tmp, "q-echo%d.serial" % self.seq)
        cs = os.path.join(self.tmp, "q-cli%d.serial" % self.seq)
        pe = self.guest("tap0", "00:50:56:00:bb:02", "net_mode=echo ip=10.99.0.2", es)
        pc = None
        try:
            if not wait_file(es, re.compile(r"net up "), 20, pe):
                return None
            pc = self.guest("tap1", "00:50:56:00:bb:01",
                            "net_mode=udping ip=10.99.0.1 peer=10.99.0.2 net_count=%d net_size=%d"
                            % (COUNT, SIZE), cs)
            return result(wait_file(cs, DONE, 120, pc))
        finally:
            for p in (pc, pe):
                if p:
                    p.terminate()
                    try:
                        p.wait(10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()

    def stop(self):
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        if self.cg:
            for d in os.listdir(self.cg):
                if os.path.isdir(os.path.join(self.cg, d)):
                    try:
                        os.rmdir(os.path.join(self.cg, d))
                    except OSError:
                        pass
            try:
                os.rmdir(self.cg)
            except OSError:
                pass


def main():
    if os.geteuid() != 0:
        skip("needs root (vmkd cgroups, network namespace)")
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip("/dev/kvm not usable: %s" % e.strerror)
    for p in (VMKD, VMKDCTL, VMX, GUEST):
        if not os.path.exists(p):
            skip("%s not built" % p)
    if not QEMU:
        skip("qemu-system-x86_64 not installed (the peer)")
    tmp = tempfile.mkdtemp(prefix="bench_vmx_net-")
    ours = qemu = None
    try:
        ours, qemu = Ours(tmp), Qemu(tmp)
        ours.run()              # warm-up (page cache, first VM start)
        qemu.run()
        o, q = [], []
        for _ in range(RUNS):
            r = ours.run()
            if r:
                o.append(r)
            r = qemu.run()
            if r:
                q.append(r)
        if len(o) < 3 or len(q) < 3:
            skip("too few complete runs (ours %d, qemu %d of %d)" % (len(o), len(q), RUNS))
        med = lambda v: sorted(v)[len(v) // 2]
        om, qm = med([r[2] for r in o]), med([r[2] for r in q])
        print("BENCH %s ours=%.1f qemu=%.1f unit=us ratio=%.2f median=%.1f spread=%.1f "
              "qemu-spread=%.1f ours-p25=%.1f ours-p75=%.1f qemu-p25=%.1f qemu-p75=%.1f "
              "ours-min=%.1f qemu-min=%.1f runs=%d count=%d size=%d"
              % (NAME, om, qm, om / qm if qm else 0, om,
                 max(r[2] for r in o) - min(r[2] for r in o),
                 max(r[2] for r in q) - min(r[2] for r in q),
                 med([r[1] for r in o]), med([r[3] for r in o]),
                 med([r[1] for r in q]), med([r[3] for r in q]),
                 min(r[0] for r in o), min(r[0] for r in q), len(o), COUNT, SIZE))
    finally:
        if ours:
            ours.stop()
        if qemu:
            qemu.stop()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
