"""BENCH rp-shares-2to1: CPU isolation by resource pool shares.

Two CPU-burning VMs (vmkd's vmx test double, one spinning thread each)
pinned to the same host CPU, each alone in a resource pool; the pools'
shares are 4000:2000 (NORMAL:LOW) and the VMs' own shares inverted
(500:4000), so only the pool hierarchy can give the first VM more.  Ours:
the ratio of the two pools' CPU time (from their cgroups) over a window of
KVC_BENCH_RP_NS of CPU (default 2 s); peer: the ideal 2.0 that the share
ratio asks for.  Needs root (cgroups).
"""
import os
import statistics
import sys
import tempfile
import time

SRCDIR = os.environ.get("KVC_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))

NAME = "rp-shares-2to1"
RUNS = int(os.environ.get("KVC_BENCH_RUNS", "3"))
WINDOW_NS = int(os.environ.get("KVC_BENCH_RP_NS", "2000000000"))


def skip(reason):
    print("BENCH-SKIP %s %s" % (NAME, reason))
    sys.exit(0)


def main():
    if os.geteuid() != 0:
        skip("needs root (cgroups)")
    from kvctest import binpath
    for p in ("vmkernel-kvm/vmkd", "vmkernel-kvm/vmkdctl", "tests/integration/test_vmkd_fake_vmx"):
        if not os.path.exists(binpath(p)):
            skip("%s is not built (make check builds the vmx test double)" % p)
    from test_vmkd import Vmkd, kv, vm_config
    ratios = []
    for _ in range(RUNS):
        tmp = tempfile.mkdtemp(prefix="bench-rp-")
        os.chmod(tmp, 0o755)
        v = Vmkd(tmp).start()
        try:
            v.ctl("pools-set", "resgroup-1::", "resgroup-2:resgroup-1:4000",
                  "resgroup-3:resgroup-1:2000", "--vm", "hi=resgroup-2", "--vm", "lo=resgroup-3")
            for name, shares in (("hi", 500), ("lo", 4000)):
                v.ctl("power-on", name, vm_config(tmp, name, workload="burn"), "--shares", shares,
                      "--affinity", 0)

            def cpu():
                p = v.ctl("pools").stdout.splitlines()
                return {kv(l)["id"]: int(kv(l)["cpu_ns"]) for l in p if l.startswith("pool ")}
            time.sleep(0.2)     # past start-up, before the window
            c0 = cpu()
            while True:
                time.sleep(0.1)
                c = cpu()
                hi, lo = c["resgroup-2"] - c0["resgroup-2"], c["resgroup-3"] - c0["resgroup-3"]
                if hi + lo >= WINDOW_NS:
                    break
            ratios.append(hi / max(lo, 1))
            v.ctl("power-off", "hi", "--force")
            v.ctl("power-off", "lo", "--force")
        finally:
            v.stop()
    med = statistics.median(ratios)
    print("BENCH %s ours=%.2f ideal=2.00 unit=cpu-time-ratio ratio=%.2f median=%.2f spread=%.2f"
          " runs=%d" % (NAME, med, med / 2.0, med, max(ratios) - min(ratios), len(ratios)))


if __name__ == "__main__":
    main()
