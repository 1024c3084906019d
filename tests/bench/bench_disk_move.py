"""Storage migration: BENCH disk-move-mbps, vmx moving a running VM's disk
(VMX_DISK_MOVE) beside `cp --sparse=always` + fsync of the same files (what
an administrator would do with the VM off).  A 64 MiB base fully written
with random data; the guest idle (no dirty passes: this measures the copy
path).  KVC_BENCH_RUNS runs (default 5), median and spread (max-min)/median
of each."""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("KVC_SRCDIR", ".")
BUILD = os.environ.get("KVC_BUILDDIR", ".")
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
RUNS = max(3, int(os.environ.get("KVC_BENCH_RUNS", "5")))
MB = 64


def b(rel):
    return os.path.join(BUILD, rel)


def skip(reason):
    print("BENCH-SKIP disk-move-mbps %s" % reason)
    sys.exit(0)


def main():
    from kvctest import Daemon, kvm_usable
    ok, why = kvm_usable()
    if not ok:
        skip(why or "no /dev/kvm")
    for p in ("vmkernel-kvm/vmx", "vmkernel-kvm/vmxctl", "vmkernel-kvm/guest/kvc-guest.elf"):
        if not os.path.exists(b(p)):
            skip("%s not built" % p)
    ours, cps = [], []
    data = os.urandom(MB << 20)
    for _ in range(RUNS):
        d = tempfile.mkdtemp(prefix="bench-dmove-")
        try:
            a, t, c = (os.path.join(d, x) for x in ("a", "b", "c"))
            for x in (a, t, c):
                os.makedirs(x)
            with open(os.path.join(a, "t.img"), "wb") as f:
                f.write(data)
                os.fsync(f.fileno())
            with open(os.path.join(a, "vm.conf"), "w") as f:
                f.write("name = b\nuuid = 4c4c4544-0000-0000-0000-0000000000e1\nmemory_mb = 32\n"
                        "guest.image = %s\ndisk.path = t.img\n" % b("vmkernel-kvm/guest/kvc-guest.elf"))
            sock = os.path.join(a, "vmx.sock")
            v = Daemon([b("vmkernel-kvm/vmx"), "-c", os.path.join(a, "vm.conf"), "-s", sock])
            try:
                v.wait_log(r"VMX-READY pid=\d+", timeout=20)
                p = subprocess.run([b("vmkernel-kvm/vmxctl"), "-s", sock, "disk-move", t, "wait"],
                                   capture_output=True, text=True, timeout=120)
                if p.returncode:
                    print("disk-move failed: %s" % p.stderr, file=sys.stderr)
                    sys.exit(1)
                ms = int(re.search(r"^total_ms=(\d+)$", p.stdout, re.M).group(1))
                ours.append(MB / max(ms, 1) * 1000.0)
            finally:
                v.stop()
            # the peer: the same file, copied sparse and made durable
            t0 = time.monotonic()
            subprocess.run(["cp", "--sparse=always", os.path.join(t, "t.img"),
                            os.path.join(c, "t.img")], check=True)
            fd = os.open(os.path.join(c, "t.img"), os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            dfd = os.open(c, os.O_RDONLY)
            os.fsync(dfd)
            os.close(dfd)
            cps.append(MB / (time.monotonic() - t0))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    mo, mc = statistics.median(ours), statistics.median(cps)
    print("BENCH disk-move-mbps ours=%.1f cp=%.1f unit=MB/s ratio=%.2f median=%.1f spread=%.2f"
          % (mo, mc, mo / mc, mo, (max(ours) - min(ours)) / mo))


if __name__ == "__main__":
    main()
