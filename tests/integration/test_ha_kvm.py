"""vSphere HA with real guests: a kvcenter-up cluster on the kvm backend
(hostd, vmkd and a vmx per VM in each host's process group).  kill -9 of a
whole host brings its VMs back on the survivor exactly once (one vmx per VM
at every moment, real guests booting and heartbeating there); a guest that
stops heartbeating (its vmx paused: the hung guest of VM monitoring) is
reset."""
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

from kvctest import binpath, wait_for
from test_kvcenter_up_kvm import Cluster, group_members, skip_reason

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def vmx_by_uuid():
    """uuid -> [pids] of every live vmx on this machine (the uuid is read from
    the runtime config each was started with)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/stat" % d) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"/vmx") or b"-c" not in argv:
            continue
        conf = argv[argv.index(b"-c") + 1].decode()
        try:
            with open(conf) as f:
                m = re.search(r'^uuid = "([^"]+)"', f.read(), re.M)
        except OSError:
            continue
        if m:
            out.setdefault(m.group(1), []).append(int(d))
    return out


@pytest.fixture
def cluster():
    with tempfile.TemporaryDirectory(prefix="kvc-ha-kvm-") as tmp:
        c = Cluster(tmp, 2, 2)
        try:
            c.wait_ready()
            yield c
        finally:
            c.stop()


def set_ha(c, body):
    st, cl = c.api("GET", "/api/vcenter/cluster")
    st, js = c.api("PATCH", "/api/kvc/cluster/%s/ha" % cl[0]["cluster"], body)
    assert st in (200, 204), (st, js)


def tools(c, vm):
    return c.api("GET", "/api/vcenter/vm/%s/tools" % vm)[1]["run_state"]


def test_kill9_of_a_kvm_host_restarts_its_vms_once_on_the_survivor(cluster):
    c = cluster
    set_ha(c, {"enabled": True, "failure_detection_time_ms": 1000})
    st, vms = c.api("GET", "/api/vcenter/vm")
    ids = [v["vm"] for v in vms]
    uuids = {v["vm"]: c.api("GET", "/api/vcenter/vm/%s" % v["vm"])[1]["identity"]["instance_uuid"]
             for v in vms}
    for vm in ids:
        wait_for(lambda: tools(c, vm) == "RUNNING", 30, "tools RUNNING on %s" % vm)
    hosts = [(l.split()[0], int(l.split()[1])) for l in c.get("HOST")]
    # The host that runs a VM (kvcenter-up spreads them: take the first's).
    victim = next((h, pg) for h, pg in hosts if "vmx" in [x for _, x in group_members(pg)])
    survivor = [(h, pg) for h, pg in hosts if h != victim[0]][0]
    on_victim = [vm for vm in ids
                 if [v["vm"] for v in c.api("GET", "/api/vcenter/vm?hosts=" + victim[0])[1]]
                 .count(vm)]
    assert on_victim
    os.killpg(victim[1], signal.SIGKILL)
    # Never two vmx for one VM, while HA works.
    deadline = time.monotonic() + 90
    while True:
        running = vmx_by_uuid()
        assert all(len(running.get(uuids[vm], [])) <= 1 for vm in ids), running
        if all(len(running.get(uuids[vm], [])) == 1 for vm in ids) and \
                all(tools(c, vm) == "RUNNING" for vm in ids):
            break
        assert time.monotonic() < deadline, "the VMs did not all run again: %s" % running
        time.sleep(0.2)
    # All on the survivor, each once, in its process group (the inventory
    # may follow the hosts' reports a moment after the guests run).
    wait_for(lambda: sorted(v["vm"] for v in c.api("GET", "/api/vcenter/vm?hosts=" +
                                                      survivor[0])[1]) == sorted(ids), 20,
             "the inventory places every VM on the survivor")
    # Each VM's one vmx is in the survivor's group: read both at one moment,
    # and again until they agree (a config read mid-rewrite, or a vmx reaped
    # between two /proc scans, is no verdict); the logs say why if not.
    def placed():
        by = vmx_by_uuid()
        if not all(len(by.get(uuids[vm], [])) == 1 for vm in ids):
            return None
        surv = sorted(p for p, x in group_members(survivor[1]) if x == "vmx")
        return surv == sorted(by[uuids[vm]][0] for vm in ids) or None
    try:
        wait_for(placed, 20, "each VM's one vmx in the survivor's process group")
    except Exception:
        for root, _, files in os.walk(os.path.join(c.dir, "hosts")):
            for f in files:
                if f in ("hostd.log", "vmkd.log"):
                    with open(os.path.join(root, f), errors="replace") as fh:
                        print("==== %s\n%s" % (os.path.join(root, f), fh.read()[-4000:]))
        print("vmx now:", vmx_by_uuid(), "uuids:", uuids)
        raise
    st, ev = c.api("GET", "/api/kvc/events?limit=1000")
    assert any("HA" in e.get("type", "") or "Das" in e.get("type", "") for e in ev)


def test_hung_kvm_guest_is_reset(cluster):
    c = cluster
    set_ha(c, {"enabled": True, "vm_monitoring": {"enabled": True, "failure_interval_s": 2,
                                                  "min_uptime_s": 1}})
    st, vms = c.api("GET", "/api/vcenter/vm")
    vm = vms[0]["vm"]
    uuid = c.api("GET", "/api/vcenter/vm/%s" % vm)[1]["identity"]["instance_uuid"]
    wait_for(lambda: tools(c, vm) == "RUNNING", 30, "tools RUNNING")
    old = vmx_by_uuid()[uuid][0]
    sock = [a for a in open("/proc/%d/cmdline" % old, "rb").read().split(b"\0")]
    sock = sock[sock.index(b"-s") + 1].decode()
    # Paused, the guest stops heartbeating: what a hung guest looks like.
    p = subprocess.run([binpath("vmkernel-kvm/vmxctl"), "-s", sock, "pause"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: tools(c, vm) != "RUNNING", 20, "tools no longer RUNNING")
    # HA resets it: a new vmx, the guest boots and beats again.
    wait_for(lambda: vmx_by_uuid().get(uuid, [old]) not in ([old], []), 60, "the VM reset")
    wait_for(lambda: tools(c, vm) == "RUNNING", 30, "tools RUNNING after the reset")
    assert len(vmx_by_uuid()[uuid]) == 1
