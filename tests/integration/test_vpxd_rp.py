"""Resource pools in vpxd with sim hosts (docs/resource-pools.md): nested
pools over REST with vSphere's share values, bad input refused, power-on
admission control (a fixed reservation refuses, an expandable pool borrows
from its parent), pool reservation changes the parent cannot cover, moving
a VM between pools, and the tree as the host keeps it."""
import pytest

from kvctest import wait_for
from hostd_util import rpc_missing_reason
from drs_util import Env
from test_vpxd_util import check_error

reason = rpc_missing_reason()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")

# A sim host: 16 cores at 2400 MHz, 64 GiB.
CPU_CAP = 16 * 2400
MEM_CAP = 64 * 1024


@pytest.fixture(scope="module")
def env():
    e = Env()
    yield e
    assert e.close() == 0


@pytest.fixture(scope="module")
def site(env):
    cl = env.cluster("RP")
    hd = env.hostd(1, "rp")
    hosts = env.add_hosts(hd, cl)
    env.datastore()
    st, c, _ = env.req("GET", "/api/vcenter/cluster/" + cl)
    assert st == 200, c
    return {"cluster": cl, "host": hosts[0], "root": c["resource_pool"], "hd": hd}


def alloc(res=0, exp=True, limit=-1, level="NORMAL", shares=None):
    a = {"reservation": res, "expandable_reservation": exp, "limit": limit,
         "shares": {"level": level}}
    if shares is not None:
        a["shares"]["shares"] = shares
    return a


def pool(env, name, parent, cpu=None, mem=None):
    body = {"name": name, "parent": parent}
    if cpu:
        body["cpu_allocation"] = cpu
    if mem:
        body["memory_allocation"] = mem
    st, rp, _ = env.req("POST", "/api/vcenter/resource-pool", body)
    assert st == 201, rp
    return rp


def vm_in(env, site, name, rp, cpu_res=0, mem_res=0, mib=256):
    st, vm, _ = env.req("POST", "/api/vcenter/vm", {
        "guest_OS": "OTHER_LINUX_64", "name": name, "memory": {"size_MiB": mib},
        "placement": {"folder": env.vm_folder, "resource_pool": rp}})
    assert st == 201, vm
    st, js, _ = env.req("PATCH", "/api/kvc/vm/%s/resource-allocation" % vm, {
        "cpu_allocation": {"reservation": cpu_res},
        "memory_allocation": {"reservation": mem_res}})
    assert st == 204, js
    return vm


def power_on(env, vm):
    return env.req("POST", "/api/vcenter/vm/%s/power?action=start" % vm)


def power_state(env, vm):
    st, js, _ = env.req("GET", "/api/vcenter/vm/%s/power" % vm)
    assert st == 200, js
    return js["state"]


def host_tree(env, site):
    st, t, _ = env.req("GET", "/api/kvc/host/%s/resource-pools" % site["host"])
    assert st == 200, t
    return t


def test_pools_rest_and_bad_input(env, site):
    gold = pool(env, "gold", site["root"], cpu=alloc(1000, False, 4000, "HIGH"),
                mem=alloc(512, True, -1, "LOW"))
    st, js, _ = env.req("GET", "/api/vcenter/resource-pool/" + gold)
    assert st == 200, js
    # vSphere's values for the levels: pools 2000/4000/8000 (CPU),
    # 81920/163840/327680 (memory).
    assert js["cpu_allocation"] == {"reservation": 1000, "expandable_reservation": False,
                                    "limit": 4000, "shares": {"level": "HIGH", "shares": 8000}}
    assert js["memory_allocation"]["shares"] == {"level": "LOW", "shares": 81920}
    st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + gold,
                        {"cpu_allocation": {"shares": {"level": "CUSTOM", "shares": 1234}}})
    assert st == 204, js
    st, js, _ = env.req("GET", "/api/vcenter/resource-pool/" + gold)
    assert js["cpu_allocation"]["shares"] == {"level": "CUSTOM", "shares": 1234}
    assert js["cpu_allocation"]["reservation"] == 1000          # untouched
    inner = pool(env, "gold-inner", gold, cpu=alloc(600, False))
    st, js, _ = env.req("GET", "/api/vcenter/resource-pool/" + gold)
    assert js["resource_pools"] == [inner]
    st, l, _ = env.req("GET", "/api/vcenter/resource-pool?parent_resource_pools=" + gold)
    assert [p["resource_pool"] for p in l] == [inner]
    # Bad input: 400 and nothing changes.
    for body, want in (({"cpu_allocation": {"reservation": 100, "limit": 50}}, "below"),
                       ({"cpu_allocation": {"limit": 500}}, "below"),      # under 1000
                       ({"cpu_allocation": {"shares": {"level": "HUGE"}}}, "must be one of"),
                       ({"memory_allocation": {"reservation": -1}}, "between"),
                       ({"cpu_allocation": {"colour": 1}}, "unknown field")):
        st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + gold, body)
        msg = check_error(st, js, 400, "INVALID_ARGUMENT")
        assert want in msg, (body, msg)
    # A child reservation the fixed parent cannot cover (1000 - 600 left).
    st, js, _ = env.req("POST", "/api/vcenter/resource-pool",
                        {"name": "greedy", "parent": gold, "cpu_allocation": alloc(401, False)})
    msg = check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    assert gold in msg
    # A fixed reservation below what the children hold.
    st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + gold,
                        {"cpu_allocation": {"reservation": 500}})
    check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    # More than the cluster has.
    st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + gold,
                        {"cpu_allocation": {"reservation": CPU_CAP + 1, "limit": -1}})
    check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    # The root pool is the cluster's capacity.
    st, js, _ = env.req("GET", "/api/vcenter/resource-pool/" + site["root"])
    assert js["cpu_allocation"]["reservation"] == CPU_CAP == js["cpu_allocation"]["limit"]
    assert js["memory_allocation"]["reservation"] == MEM_CAP
    assert js["cpu_allocation"]["expandable_reservation"] is False
    st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + site["root"],
                        {"cpu_allocation": {"reservation": 10}})
    check_error(st, js, 400, "UNSUPPORTED")
    st, js, _ = env.req("GET", "/api/vcenter/resource-pool/" + gold)
    assert js["cpu_allocation"]["reservation"] == 1000 and js["cpu_allocation"]["limit"] == 4000
    st, l, _ = env.req("GET", "/api/vcenter/resource-pool?names=greedy")
    assert l == []
    for p in (inner, gold):
        st, js, _ = env.req("DELETE", "/api/vcenter/resource-pool/" + p)
        assert st == 204, js


def test_admission(env, site):
    fixed = pool(env, "fixed", site["root"], cpu=alloc(2000, False), mem=alloc(1024, False))
    nested = pool(env, "nested", fixed, cpu=alloc(0, True), mem=alloc(0, True))
    exp = pool(env, "exp", site["root"], cpu=alloc(0, True), mem=alloc(0, True))
    a = vm_in(env, site, "rp-a", fixed, cpu_res=1500)
    b = vm_in(env, site, "rp-b", nested, cpu_res=400)
    c = vm_in(env, site, "rp-c", nested, cpu_res=200)
    d = vm_in(env, site, "rp-d", exp, cpu_res=5000, mem_res=2048, mib=2048)
    big = vm_in(env, site, "rp-big", exp, mem_res=MEM_CAP, mib=MEM_CAP)
    st, js, _ = env.req("GET", "/api/kvc/vm/%s/resource-allocation" % a)
    assert st == 200, js
    assert js["resource_pool"] == fixed and js["cpu_allocation"]["reservation"] == 1500
    assert js["cpu_allocation"]["shares"] == {"level": "NORMAL", "shares": 1000}
    assert js["memory_allocation"]["shares"] == {"level": "NORMAL", "shares": 2560}
    st, js = power_on(env, a)[:2]
    assert st == 204, js
    # nested is expandable: it borrows 400 of the 500 fixed has left.
    st, js = power_on(env, b)[:2]
    assert st == 204, js
    # 1500 + 400 + 200 > 2000: refused, and nothing changes.
    st, js = power_on(env, c)[:2]
    msg = check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    assert fixed in msg, msg
    assert power_state(env, c) == "POWERED_OFF"
    # exp borrows from the root (the cluster's 38400 MHz).
    st, js = power_on(env, d)[:2]
    assert st == 204, js
    # The memory of the whole cluster is more than is left.
    st, js = power_on(env, big)[:2]
    check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    assert power_state(env, big) == "POWERED_OFF"
    # fixed may not shrink below what its children hold (1500 + 400) ...
    st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + fixed,
                        {"cpu_allocation": {"reservation": 1899}})
    check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + fixed,
                        {"cpu_allocation": {"reservation": 1900}})
    assert st == 204, js
    # ... nor may a running VM's reservation grow past it.
    st, js, _ = env.req("PATCH", "/api/kvc/vm/%s/resource-allocation" % a,
                        {"cpu_allocation": {"reservation": 1501}})
    check_error(st, js, 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    # A pool holding VMs is not deleted.
    st, js, _ = env.req("DELETE", "/api/vcenter/resource-pool/" + nested)
    check_error(st, js, 400, "RESOURCE_IN_USE")
    # Moving the running VM a to exp frees fixed: c fits now.
    st, js, _ = env.req("PATCH", "/api/kvc/vm/%s/resource-allocation" % a,
                        {"resource_pool": exp})
    assert st == 204, js
    st, l, _ = env.req("GET", "/api/vcenter/vm?resource_pools=" + exp)
    assert a in [v["vm"] for v in l]
    st, js = power_on(env, c)[:2]
    assert st == 204, js
    for vm in (a, b, c, d):
        assert power_state(env, vm) == "POWERED_ON"
    # The host keeps the cluster's tree, with the VMs placed and the sim's usage.
    def placed():
        t = host_tree(env, site)
        pools = {p["resource_pool"]: p for p in t["resource_pools"]}
        where = {v["resource_pool"] for v in t["vms"]}
        return pools if {fixed, nested, exp} <= set(pools) and exp in where else None
    pools = wait_for(placed, 10, "the host's pool tree")
    assert pools[fixed]["parent"] == site["root"] and pools[nested]["parent"] == fixed
    assert pools[site["root"]]["parent"] is None
    assert pools[fixed]["cpu_reservation"] == 1900 and pools[exp]["cpu_limit"] == -1
    assert pools[nested]["memory_bytes"] == 2 * 256 << 20      # b and c, on


def test_vm_allocation_bad_input(env, site):
    cl2 = env.cluster("RP2")
    st, c2, _ = env.req("GET", "/api/vcenter/cluster/" + cl2)
    vm = vm_in(env, site, "rp-bad", site["root"])
    for body, status, err in (
            ({"cpu_allocation": {"reservation": 10, "limit": 5}}, 400, "INVALID_ARGUMENT"),
            ({"cpu_allocation": {"reservation": "x"}}, 400, "INVALID_ARGUMENT"),
            ({"memory_allocation": {"shares": {"level": "CUSTOM"}}}, 400, "INVALID_ARGUMENT"),
            ({"memory_allocation": {"reservation": 257}}, 400, "INVALID_ARGUMENT"),  # > 256 MB
            ({"colour": "red"}, 400, "INVALID_ARGUMENT"),
            ({"resource_pool": "resgroup-424242"}, 404, "NOT_FOUND"),
            ({"resource_pool": c2["resource_pool"]}, 400, "INVALID_ARGUMENT")):
        st, js, _ = env.req("PATCH", "/api/kvc/vm/%s/resource-allocation" % vm, body)
        check_error(st, js, status, err)
    st, js, _ = env.req("GET", "/api/kvc/vm/%s/resource-allocation" % vm)
    assert js["resource_pool"] == site["root"]
    assert js["cpu_allocation"] == {"reservation": 0, "limit": -1,
                                    "shares": {"level": "NORMAL", "shares": 1000}}
    st, js, _ = env.req("GET", "/api/kvc/vm/vm-424242/resource-allocation")
    check_error(st, js, 404, "NOT_FOUND")


# ---- kvm: vpxd -> hostd (kvm backend) -> vmkd cgroups ----

def kvm_skip_reason():
    import os
    from kvctest import binpath
    if os.geteuid() != 0:
        return "vmkd needs root (cgroups)"
    for p in ("vmkernel-kvm/vmkd", "tests/integration/test_vmkd_fake_vmx"):
        if not os.path.exists(binpath(p)):
            return "%s is not built in this tree" % p
    return None


def proc_cpu_cgroup(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            hid, ctl, path = line.rstrip("\n").split(":", 2)
            if hid == "0" or "cpu" in ctl.split(","):
                return path
    return ""


def cpu_weight(cg):
    import os
    for name in ("cpu.shares", "cpu.weight"):
        p = os.path.join(cg, name)
        if os.path.exists(p):
            with open(p) as f:
                return name, int(f.read())
    return None, None


@pytest.mark.skipif(kvm_skip_reason() is not None, reason=kvm_skip_reason() or "")
def test_kvm_pool_cgroups_follow_patch(env):
    import os
    from hostd_util import Hostd
    from kvctest import binpath
    from test_hostd_kvm import Vmkd
    fake_vmx = binpath("tests/integration/test_vmkd_fake_vmx")
    vmkd_dir = os.path.join(env.tmp, "vmkd-rp")
    os.makedirs(vmkd_dir)
    vk = Vmkd(vmkd_dir)
    try:
        hd = Hostd(env.tmp, name="rpkvm", backend="kvm",
                   datastores=["kvmds=%s:shared" % os.path.join(env.tmp, "kvmds")],
                   extra=["--vmkd-socket", vk.sock, "--guest-image", fake_vmx])
        env.hostds.append(hd)
        cl = env.cluster("RPK")
        host = env.add_hosts(hd, cl)[0]
        env.datastore("kvmds")
        st, c, _ = env.req("GET", "/api/vcenter/cluster/" + cl)
        root = c["resource_pool"]
        hi = pool(env, "hi", root, cpu=alloc(0, True, -1, "HIGH"))
        lo = pool(env, "lo", root, cpu=alloc(0, True, -1, "LOW"))
        st, vm, _ = env.req("POST", "/api/vcenter/vm", {
            "guest_OS": "OTHER_LINUX_64", "name": "rpk1", "memory": {"size_MiB": 64},
            "placement": {"folder": env.vm_folder, "resource_pool": hi}})
        assert st == 201, vm
        st, js = power_on(env, vm)[:2]
        assert st == 204, js
        site_ = {"host": host}

        def tree():
            t = host_tree(env, site_)
            return {p["resource_pool"]: p for p in t["resource_pools"]}

        pools = wait_for(lambda: (lambda p: p if p.get(hi, {}).get("cgroup") else None)(tree()),
                         10, "vmkd's pool cgroups")
        hi_cg, lo_cg = pools[hi]["cgroup"], pools[lo]["cgroup"]
        assert hi_cg.endswith("/" + hi) and os.path.isdir(hi_cg) and os.path.isdir(lo_cg)
        name, w = cpu_weight(hi_cg)
        assert w == (8192 if name == "cpu.shares" else 800), (name, w)
        assert cpu_weight(lo_cg)[1] == (2048 if name == "cpu.shares" else 200)
        # The VM's vmx runs inside its pool's cgroup.
        pid = wait_for(lambda: _vm_pid(hi_cg), 10, "the VM's cgroup in the pool")
        assert ("/%s/" % hi) in proc_cpu_cgroup(pid)
        # PATCH: shares and a limit follow on the host.
        st, js, _ = env.req("PATCH", "/api/vcenter/resource-pool/" + hi, {
            "cpu_allocation": {"shares": {"level": "CUSTOM", "shares": 3000}, "limit": 1000}})
        assert st == 204, js
        wait_for(lambda: cpu_weight(hi_cg)[1] == (3072 if name == "cpu.shares" else 300), 10,
                 "the pool's weight after PATCH")
        q = tree()[hi]["cpu_quota_us"]
        assert q > 0
        if name == "cpu.shares":
            with open(os.path.join(hi_cg, "cpu.cfs_quota_us")) as f:
                assert int(f.read()) == q
        else:
            with open(os.path.join(hi_cg, "cpu.max")) as f:
                assert f.read().split()[0] == str(q)
        # A restarted vmkd gets the tree again from hostd (VMs stopped with it).
        vk.stop()
        assert not os.path.exists(hi_cg)
        vk = Vmkd(vmkd_dir)
        wait_for(lambda: os.path.isdir(hi_cg), 15, "the pool cgroups after vmkd restarted")
        assert cpu_weight(hi_cg)[1] == (3072 if name == "cpu.shares" else 300)
        wait_for(lambda: power_state(env, vm) == "POWERED_OFF", 15, "the VM seen off")
        st, js = power_on(env, vm)[:2]
        assert st == 204, js
        pid = wait_for(lambda: _vm_pid(hi_cg), 10, "the VM's cgroup in the pool again")
        # Moving the VM to the other pool moves its process.
        st, js, _ = env.req("PATCH", "/api/kvc/vm/%s/resource-allocation" % vm,
                            {"resource_pool": lo})
        assert st == 204, js
        wait_for(lambda: ("/%s/" % lo) in proc_cpu_cgroup(pid), 10, "the vmx in the new pool")
        st, js, _ = env.req("POST", "/api/vcenter/vm/%s/power?action=stop" % vm)
        assert st == 204, js
    finally:
        for h in [h for h in env.hostds if h.argv and "kvm" in h.argv]:
            h.stop()
            env.hostds.remove(h)
        vk.stop()


def _vm_pid(pool_cg):
    import os
    for d in os.listdir(pool_cg):
        sub = os.path.join(pool_cg, d)
        if os.path.isdir(sub):
            try:
                with open(os.path.join(sub, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            if pids:
                return pids[0]
    return None


def test_concurrent_power_ons_take_the_last_reservation_once(env, site):
    """Power-ons on their way count: of two started at once into a pool with
    room for one, exactly one is admitted, whichever vpxd reads first."""
    import threading
    tight = pool(env, "tight", site["root"], cpu=alloc(1000, False))
    vms = [vm_in(env, site, "rp-race%d" % i, tight, cpu_res=600) for i in range(2)]
    out = {}

    def start(vm):
        out[vm] = env.vx.request("POST", "/api/vcenter/vm/%s/power?action=start" % vm,
                                 token=env.token)[:2]
    ts = [threading.Thread(target=start, args=(vm,)) for vm in vms]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    codes = sorted(out[vm][0] for vm in vms)
    assert codes == [204, 500], out
    loser = [vm for vm in vms if out[vm][0] == 500][0]
    check_error(out[loser][0], out[loser][1], 500, "UNABLE_TO_ALLOCATE_RESOURCE")
    assert sorted(power_state(env, vm) for vm in vms) == ["POWERED_OFF", "POWERED_ON"]


def test_reconnected_host_gets_the_tree(env, site):
    """A host that comes back (hostd restarted, the tree not kept on disk)
    gets its cluster's tree from vpxd when it reconnects."""
    from hostd_util import Hostd
    hd = site["hd"]
    port = hd.hosts[0]["port"]
    hd.stop()
    env.hostds.remove(hd)
    hd2 = Hostd(env.tmp, name="rp", state=hd.state, extra=["--port", str(port)],
                datastores=["shared=%s:shared" % env.shared])
    env.hostds.append(hd2)
    site["hd"] = hd2

    def back():
        st, t, _ = env.req("GET", "/api/kvc/host/%s/resource-pools" % site["host"])
        return t if st == 200 and t["resource_pools"] else None
    t = wait_for(back, 20, "the tree on the reconnected host")
    assert site["root"] in [p["resource_pool"] for p in t["resource_pools"]]
