"""BENCH vmx-blk-seq-write, vmx-blk-seq-read: guest disk throughput.

Ours: the test guest's disk bench (guest.disk_test = bench, guest/blk.c)
on virtio-blk: 64 MiB of sequential 1 MiB writes then a FLUSH (vmx:
pwritev into the raw file, then fdatasync), timed in the guest with the TSC;
then the same 64 MiB read back in 1 MiB requests.  One request in flight,
completions polled from the used ring at CPL3.
Peer: dd on the host, on the same file system (a sparse file in the same
folder): `dd if=/dev/zero of=F bs=1M count=64 conv=fdatasync,notrunc` for
writes (the fdatasync is inside dd's timing, as the guest's FLUSH is inside
ours) and `dd if=F of=/dev/null bs=1M` for reads.  Both sides write into a
fresh sparse file each run, and both read right after writing, so reads come
from the host page cache on both sides (no cache dropping: the machine is
shared).  KVC_BENCH_RUNS runs (default 5), ours and dd alternating.
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILDDIR = os.environ.get("KVC_BUILDDIR", SRCDIR)
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

RUNS = int(os.environ.get("KVC_BENCH_RUNS", "5"))
MB = 64


def b(rel):
    return os.path.join(BUILDDIR, rel)


VMX, VMXCTL, GUEST = b("vmkernel-kvm/vmx"), b("vmkernel-kvm/vmxctl"), b("vmkernel-kvm/guest/kvc-guest.elf")


def skip(reason):
    for n in ("vmx-blk-seq-write", "vmx-blk-seq-read"):
        print("BENCH-SKIP %s %s" % (n, reason))
    sys.exit(0)


def fresh_disk(path):
    if os.path.exists(path):
        os.unlink(path)
    with open(path, "wb") as f:
        f.truncate((MB + 16) << 20)


def ours(d):
    disk = os.path.join(d, "g.img")
    fresh_disk(disk)
    conf = os.path.join(d, "vm.conf")
    serial = os.path.join(d, "serial.log")
    if os.path.exists(serial):
        os.unlink(serial)
    with open(conf, "w") as f:
        f.write("name = bench\nmemory_mb = 32\nguest.image = %s\nserial.log = serial.log\n"
                "disk.path = g.img\nguest.disk_test = bench\nguest.disk_mb = %d\n" % (GUEST, MB))
    sock = os.path.join(d, "vmx.sock")
    p = subprocess.Popen([VMX, "-c", conf, "-s", sock, "-l", os.path.join(d, "vmx.log")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        rx = re.compile(r"KVC-GUEST: disk bench bytes=(\d+) write_us=(\d+) read_us=(\d+) errors=(\d+)")
        while time.monotonic() < deadline:
            try:
                with open(serial) as f:
                    m = rx.search(f.read())
            except FileNotFoundError:
                m = None
            if m:
                break
            if p.poll() is not None:
                raise RuntimeError("vmx exited %s" % p.returncode)
            time.sleep(0.05)
        else:
            raise RuntimeError("no bench line from the guest")
        nbytes, wus, rus, errs = (int(x) for x in m.groups())
        if errs or nbytes != MB << 20 or not wus or not rus:
            raise RuntimeError("guest bench failed: %s" % m.group(0))
        return nbytes / wus, nbytes / rus      # bytes/us = MB/s
    finally:
        subprocess.run([VMXCTL, "-s", sock, "poweroff"], capture_output=True, timeout=30)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def dd(d):
    f = os.path.join(d, "h.img")
    fresh_disk(f)
    t0 = time.monotonic()
    subprocess.run(["dd", "if=/dev/zero", "of=" + f, "bs=1M", "count=%d" % MB, "conv=fdatasync,notrunc"],
                   check=True, capture_output=True)
    t1 = time.monotonic()
    subprocess.run(["dd", "if=" + f, "of=/dev/null", "bs=1M", "count=%d" % MB], check=True, capture_output=True)
    t2 = time.monotonic()
    n = MB << 20
    return n / ((t1 - t0) * 1e6), n / ((t2 - t1) * 1e6)


def line(name, o, p):
    mo, mp = statistics.median(o), statistics.median(p)
    print("BENCH %s ours=%.1f dd=%.1f unit=MB/s ratio=%.2f median=%.1f spread=%.1f dd-spread=%.1f runs=%d "
          "size_mb=%d" % (name, mo, mp, mo / mp, mo, max(o) - min(o), max(p) - min(p), len(o), MB))


def main():
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        skip("no usable /dev/kvm (%s)" % e.strerror)
    for x in (VMX, VMXCTL, GUEST):
        if not os.path.exists(x):
            skip("%s not built" % x)
    # Same file system for both: a folder in the build tree (not a tmpfs).
    with tempfile.TemporaryDirectory(prefix="bench-blk-", dir=BUILDDIR) as d:
        ours(d)     # warm-up
        dd(d)
        ow, orr, pw, pr = [], [], [], []
        for _ in range(RUNS):
            w, r = ours(d)
            ow.append(w)
            orr.append(r)
            w, r = dd(d)
            pw.append(w)
            pr.append(r)
        line("vmx-blk-seq-write", ow, pw)
        line("vmx-blk-seq-read", orr, pr)


if __name__ == "__main__":
    main()
