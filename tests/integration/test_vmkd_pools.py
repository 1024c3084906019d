"""vmkd resource pools (vmkernel-kvm/vmkd_pool.c, docs/resource-pools.md):
the pool tree becomes nested cgroups with the pools' CPU weight, CFS quota
and memory limit; a VM's cgroup sits inside its pool's and moves when its
pool changes; a bad tree is refused and changes nothing.  Needs root."""
import os
import re

import pytest

from test_vmkd import Vmkd, kv, tmp, vm_config  # noqa: F401 (tmp is a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="vmkd tests need root (cgroups)")


@pytest.fixture
def vmkd(tmp):  # noqa: F811
    v = Vmkd(tmp).start()
    yield v
    v.stop()


def pools(vmkd, *args, check=True):
    p = vmkd.ctl("pools-set", *args, check=check)
    return p, {kv(l)["id"]: kv(l) for l in p.stdout.splitlines() if l.startswith("pool ")}


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def cpu_file(d, v2, v1name, v2name):
    return read(d, v2name if v2 else v1name)


def proc_cpu_cgroup(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            hid, ctl, path = line.rstrip("\n").split(":", 2)
            if hid == "0" or "cpu" in ctl.split(","):
                return path
    return ""


def test_pool_cgroups(vmkd, tmp):  # noqa: F811
    h = kv(vmkd.ctl("host-info").stdout)
    v2 = h["cgroup_version"] == "2"
    mhz = int(h["cpu_mhz"])
    _, got = pools(vmkd, "resgroup-1::", "resgroup-2:resgroup-1:8000", "resgroup-3:resgroup-1:2000:%d:256" % mhz,
                   "resgroup-4:resgroup-3:4000")
    assert set(got) == {"resgroup-1", "resgroup-2", "resgroup-3", "resgroup-4"}
    # The root pool is vmkd's parent cgroup; the others nest as the pools do.
    gold, silver, leaf = got["resgroup-2"]["cgroup"], got["resgroup-3"]["cgroup"], got["resgroup-4"]["cgroup"]
    assert gold.endswith(vmkd.parent + "/resgroup-2")
    assert leaf.endswith(vmkd.parent + "/resgroup-3/resgroup-4")
    for d in (gold, silver, leaf):
        assert os.path.isdir(d), d
    # Shares on the VMs' scale: 8000 = 8 normal vCPUs.
    assert int(cpu_file(gold, v2, "cpu.shares", "cpu.weight")) == (800 if v2 else 8192)
    assert int(cpu_file(silver, v2, "cpu.shares", "cpu.weight")) == (200 if v2 else 2048)
    # A limit of one CPU's MHz is one CFS period of quota.
    period = 100000
    if v2:
        assert read(silver, "cpu.max") == "%d %d" % (period, period)
        assert read(gold, "cpu.max").startswith("max")
    else:
        assert int(read(silver, "cpu.cfs_quota_us")) == period
        assert int(read(gold, "cpu.cfs_quota_us")) == -1
    assert got["resgroup-3"]["quota_us"] == str(period)
    # Memory limit 256 MiB (when the memory controller is there).
    mem = silver if v2 else silver.replace("/cpu,cpuacct/", "/memory/").replace("/cpu/", "/memory/")
    if os.path.exists(os.path.join(mem, "memory.max" if v2 else "memory.limit_in_bytes")):
        assert int(read(mem, "memory.max" if v2 else "memory.limit_in_bytes")) == 256 << 20


def test_vm_inside_pool_and_moved(vmkd, tmp):  # noqa: F811
    tree = ["resgroup-1::", "resgroup-2:resgroup-1:8000", "resgroup-3:resgroup-1:2000"]
    pools(vmkd, *tree, "--vm", "vm1=resgroup-2")
    on = kv(vmkd.ctl("power-on", "vm1", vm_config(tmp, "vm1")).stdout)
    pid = int(on["pid"])
    assert on["cgroup"].endswith("/resgroup-2/vm1"), on
    assert proc_cpu_cgroup(pid).endswith(vmkd.parent + "/resgroup-2/vm1")
    # PATCH-like change: the pool's weight follows, the VM stays inside.
    _, got = pools(vmkd, "resgroup-1::", "resgroup-2:resgroup-1:4000", "resgroup-3:resgroup-1:2000",
                   "--vm", "vm1=resgroup-2")
    assert got["resgroup-2"]["weight"] in ("400", "4096")
    assert proc_cpu_cgroup(pid).endswith("/resgroup-2/vm1")
    # Moving the VM to another pool moves the running process.
    pools(vmkd, *tree, "--vm", "vm1=resgroup-3")
    assert proc_cpu_cgroup(pid).endswith(vmkd.parent + "/resgroup-3/vm1")
    assert not os.path.exists(os.path.join(os.path.dirname(on["cgroup"]), "vm1"))
    # A pool that goes while a VM is in it: the VM goes back to the top first.
    _, got = pools(vmkd, "resgroup-1::")
    assert list(got) == ["resgroup-1"]
    assert proc_cpu_cgroup(pid).endswith(vmkd.parent + "/vm1")
    assert not os.path.exists(os.path.dirname(on["cgroup"]))
    vmkd.ctl("power-off", "vm1", "--force")


def test_bad_tree_changes_nothing(vmkd):
    _, before = pools(vmkd, "resgroup-1::", "resgroup-2:resgroup-1:8000")
    for bad in (["resgroup-1::", "resgroup-2:resgroup-9"],             # unknown parent
                ["resgroup-1::", "a:b", "b:a"],                        # a cycle
                ["resgroup-1::", "resgroup-1::"],                      # twice
                ["../x::"],                                            # bad id
                ["resgroup-1::", "resgroup-2:resgroup-1:-5"],          # negative shares
                ["resgroup-1::", "--vm", "vm1=nowhere"]):              # VM in no pool
        p, _ = pools(vmkd, *bad, check=False)
        assert p.returncode == 1 and "INVALID_ARGUMENT" in p.stderr, (bad, p.stderr)
    p = vmkd.ctl("pools")
    after = {kv(l)["id"]: kv(l) for l in p.stdout.splitlines() if l.startswith("pool ")}
    assert after.keys() == before.keys()
    assert after["resgroup-2"]["weight"] == before["resgroup-2"]["weight"]
    assert os.path.isdir(after["resgroup-2"]["cgroup"])


def test_pools_removed_with_vmkd(tmp):  # noqa: F811
    """remove-parent-on-exit: the pools' cgroups go first, then the parent."""
    v = Vmkd(tmp).start()
    try:
        desc = kv(v.ctl("host-info").stdout)["cgroup"]
        parent = re.search(r"cpu=(\S+)", desc.strip('"')).group(1).rstrip('"')
        _, got = pools(v, "resgroup-1::", "resgroup-2:resgroup-1", "resgroup-3:resgroup-2")
        assert os.path.isdir(got["resgroup-3"]["cgroup"])
    finally:
        v.stop()
    assert not os.path.exists(parent), os.listdir(parent)


def test_pool_shares_order_cpu_time(vmkd, tmp):  # noqa: F811
    """Two CPU-burning VMs pinned to one CPU, in pools with shares 2:1 (the
    VMs' own shares inverted, 500 against 4000): the pools' weights decide,
    so the VM in the bigger pool gets more CPU time.  A loose ordering check
    on the pools' cgroup CPU accounting, waited for by amount, not by time."""
    from kvctest import wait_for
    pools(vmkd, "resgroup-1::", "resgroup-2:resgroup-1:4000", "resgroup-3:resgroup-1:2000",
          "--vm", "hi=resgroup-2", "--vm", "lo=resgroup-3")
    for name, shares in (("hi", 500), ("lo", 4000)):
        vmkd.ctl("power-on", name, vm_config(tmp, name, workload="burn"), "--shares", shares,
                 "--affinity", 0)

    def cpu():
        p = vmkd.ctl("pools").stdout.splitlines()
        return {kv(l)["id"]: int(kv(l)["cpu_ns"]) for l in p if l.startswith("pool ")}
    c0 = cpu()

    def enough():
        c = cpu()
        d = {k: c[k] - c0[k] for k in ("resgroup-2", "resgroup-3")}
        return d if d["resgroup-2"] + d["resgroup-3"] >= 600000000 else None
    d = wait_for(enough, 60, "0.6 s of CPU in the two pools", interval=0.1)
    print("pool shares 4000:2000 -> %d ms : %d ms" % (d["resgroup-2"] // 1000000,
                                                     d["resgroup-3"] // 1000000))
    assert d["resgroup-2"] > d["resgroup-3"]
    vmkd.ctl("power-off", "hi", "--force")
    vmkd.ctl("power-off", "lo", "--force")
